"""TFR-Net's feature reconstruction blocks (Yuan et al., ACM MM 2021), as MMSA's TFR_NET has them
(models/missingTask/TFR_NET/{alignment,generator,model}.py, data_loader.py `generate_m`).

* `MissingView`: the incomplete training view. Each real step of a modality is kept where its
  uniform number is above the modality's missing rate (MMSA: `uniform > missing_rate`); on token
  ids the first and the last real token ([CLS], [SEP]) are always kept, and a dropped token
  becomes [UNK]. "per_sample": every sample's numbers are fixed for the whole run, drawn from
  numpy's `default_rng([seed, row index])` (MMSA draws the view once in its data loader);
  "per_batch": fresh numbers from a torch generator for every batch.
* `MMSATransformer`: MulT's encoder (common/transformer.py) with MMSA's initialisation and
  position rule.
* `CrossModalAlignment`: MMSA's CM_ATTN. Conv1d projections to d (kernel k, padding (k - 1) / 2,
  no bias; none where the width already is d), per target modality a self-attention memory
  Transformer and two cross-modal Transformers (MulT's, with sinusoidal positions), concatenated
  to (B, T, 3d): the aligned sequence the fusion reads. Its "temporal" Transformers (embedding
  width T_m, positions off) give the generator's input.
* `reconstruction_terms`: MMSA's RECLoss over the dropped steps only.

B = batch, T = T_m, the dataset's padded length of modality m (every sequence is padded to it:
the temporal Transformers' width is T_m), D_m = its feature width, d = model_dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.data.types import MODALITIES, TokenBatch
from methods.common.transformer import CrossModalTransformer, sinusoidal_positions

MISSING_VIEWS = ("per_sample", "per_batch")
TEMPORAL_AXES = ("batch", "channels")
RECONSTRUCTION_LOSSES = ("combine", "smooth_l1", "mse", "cmd")
COUNT_EPS = 1e-4  # MMSA's RECLoss: loss / (sum(mask) + 1e-4)


class MissingView:
    """Keep-masks of the incomplete training view. steps: {m: T_m}; rates: {m: missing rate}."""

    def __init__(self, seed: int, steps: dict[str, int], rates: dict[str, float], mode: str):
        if mode not in MISSING_VIEWS:
            raise ValueError(f"missing view: expected one of {MISSING_VIEWS}, got {mode!r}")
        self.seed, self.steps, self.rates, self.mode = seed, steps, rates, mode
        self.generator = torch.Generator().manual_seed(seed)  # per_batch only

    def uniforms(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """{m: (B, T_m) float32 in [0, 1)} for the rows `index` (B,)."""
        if self.mode == "per_batch":
            size = int(index.shape[0])
            return {
                m: torch.rand(size, self.steps[m], generator=self.generator) for m in MODALITIES
            }
        rows = [
            np.random.default_rng([self.seed, int(i)]).random(sum(self.steps.values()))
            for i in index.tolist()
        ]
        table = torch.from_numpy(np.stack(rows).astype(np.float32))
        parts = table.split([self.steps[m] for m in MODALITIES], dim=1)
        return dict(zip(MODALITIES, parts, strict=True))

    def keep(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """{m: (B, T_m) bool}: True where a step survives (its uniform > the modality's rate)."""
        return {m: u > self.rates[m] for m, u in self.uniforms(index).items()}


def dropped_steps(keep: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps) bool: the real steps (t < lengths) that `keep` (B, >= steps) drops."""
    positions = torch.arange(steps, device=lengths.device).unsqueeze(0)
    return (positions < lengths.unsqueeze(1)) & ~keep[:, :steps].to(lengths.device)


def dropped_tokens(keep: torch.Tensor, tokens: TokenBatch) -> torch.Tensor:
    """(B, L') bool: the real tokens `keep` drops, never the first or the last real one ([CLS],
    [SEP]: MMSA's generate_m keeps them)."""
    steps = tokens.ids.shape[1]
    positions = torch.arange(steps, device=tokens.ids.device).unsqueeze(0)
    last = (tokens.lengths - 1).unsqueeze(1)
    real = tokens.mask == 1
    return real & ~keep[:, :steps].to(real.device) & (positions > 0) & (positions != last)


def with_unknown_tokens(tokens: TokenBatch, dropped: torch.Tensor) -> TokenBatch:
    """The token ids with every dropped position (B, L') replaced by [UNK] (MMSA: id 100)."""
    ids = torch.where(dropped, torch.full_like(tokens.ids, tokens.unk_id), tokens.ids)
    return TokenBatch(ids, tokens.mask, tokens.segments, tokens.unk_id)


class MMSATransformer(CrossModalTransformer):
    """MulT's encoder as MMSA's fairseq code has it: attention output projections initialised
    xavier-uniform (MMSA's MultiheadAttention.reset_parameters; torch's keeps Linear's default),
    and its position rule as a switch: with `skip_zero_steps`, a step whose first input channel
    is exactly 0 (fairseq's padding symbol) gets no position embedding (MMSA's
    SinusoidalPositionalEmbedding reads x[..., 0] as token ids); otherwise every step gets
    positions 1..T. Shapes as CrossModalTransformer."""

    def __init__(self, *args, skip_zero_steps: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skip_zero_steps = skip_zero_steps
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.attention.out_proj.weight)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if not (self.positions and self.skip_zero_steps):
            return super().embed(x, mask)
        table = sinusoidal_positions(x.shape[1], self.dim, x.device).to(x.dtype)
        embedded = math.sqrt(self.dim) * x + table * (x[..., :1] != 0).to(x.dtype)
        if mask is not None:
            embedded = embedded * mask.unsqueeze(-1).to(x.dtype)
        return F.dropout(embedded, self.embed_dropout, self.training)


@dataclass(frozen=True)
class AlignmentConfig:
    """CM_ATTN's settings (MMSA's config keys in brackets)."""

    model_dim: int  # d [dst_feature_dim_nheads[0]]
    num_heads: int  # [dst_feature_dim_nheads[1]]
    levels: int  # cross-modal layers [nlevels]
    memory_levels: int  # memory and temporal: max(levels, memory_levels) (MMSA: 3)
    kernels: dict[str, int]  # [conv1d_kernel_size_l/a/v]
    attn_dropout: dict[str, float]  # [attn_dropout, attn_dropout_a, attn_dropout_v]
    text_dropout: float
    relu_dropout: float
    res_dropout: float
    embed_dropout: float
    temporal_heads: int  # the most heads of a temporal Transformer [num_temporal_head]
    masking: str = "future"  # CrossModalTransformer's: MMSA's attn_mask true is "future"
    skip_zero_steps: bool = True
    temporal_axis: str = "batch"  # TEMPORAL_AXES


def divisor_heads(width: int, most: int) -> int:
    """The largest divisor of `width` that is at most `most` (= `most` where it divides)."""
    return max(h for h in range(1, min(width, most) + 1) if width % h == 0)


def mmsa_network(
    cfg: AlignmentConfig, dim: int, heads: int, layers: int, attn: float, positions: bool
) -> MMSATransformer:
    """One of CM_ATTN's Transformers (MMSA's get_network) at width `dim`."""
    return MMSATransformer(
        dim,
        heads,
        layers,
        attn,
        cfg.relu_dropout,
        cfg.res_dropout,
        cfg.embed_dropout,
        positions=positions,
        masking=cfg.masking,
        separate_kv_dropout=True,
        skip_zero_steps=cfg.skip_zero_steps,
    )


class CrossModalAlignment(nn.Module):
    """MMSA's CM_ATTN. forward(inputs {m: (B, T_m, D_m)}, masks {m: (B, T_m) bool}, temporal)
    -> (aligned {m: (B, T_m, 3d)}, temporal {m: (B, T_m, 3d)} or None). Concatenation order per
    target: [memory, from the first other modality, from the second] (MODALITIES order)."""

    def __init__(self, in_dims: dict[str, int], steps: dict[str, int], cfg: AlignmentConfig):
        super().__init__()
        d, self.cfg = cfg.model_dim, cfg
        for m, k in cfg.kernels.items():
            if k < 1 or k % 2 == 0:  # MMSA's padding (k - 1) // 2 shortens even kernels' output
                raise ValueError(f"{m} kernel: expected an odd positive size, got {k}")
        self.projections = nn.ModuleDict(
            {
                m: nn.Conv1d(in_dims[m], d, cfg.kernels[m], padding=cfg.kernels[m] // 2, bias=False)
                for m in MODALITIES
                if in_dims[m] != d  # MMSA projects only a width other than d
            }
        )
        deep, text_attn = max(cfg.levels, cfg.memory_levels), cfg.attn_dropout["text"]
        self.crossmodal = nn.ModuleDict(
            {
                f"{t}_from_{s}": mmsa_network(
                    cfg, d, cfg.num_heads, cfg.levels, cfg.attn_dropout[s], True
                )
                for t in MODALITIES
                for s in MODALITIES
                if s != t
            }
        )
        self.memory = nn.ModuleDict(
            {m: mmsa_network(cfg, d, cfg.num_heads, deep, text_attn, True) for m in MODALITIES}
        )
        self.temporal = nn.ModuleDict(
            {
                m: mmsa_network(
                    cfg,
                    steps[m],
                    divisor_heads(steps[m], cfg.temporal_heads),
                    deep,
                    text_attn,
                    False,
                )
                for m in MODALITIES
            }
        )

    def project(self, inputs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict:
        """Text dropout on the text input, then the Conv1d projections: {m: (B, T_m, d)}; zero
        at padding under "padding" masking."""
        projected = {}
        for m in MODALITIES:
            x = inputs[m]
            if m == "text":
                x = F.dropout(x, self.cfg.text_dropout, self.training)
            if m in self.projections:
                x = self.projections[m](x.transpose(1, 2)).transpose(1, 2)
            if self.cfg.masking == "padding":
                x = x * masks[m].unsqueeze(-1).to(x.dtype)
            projected[m] = x
        return projected

    def forward(self, inputs: dict, masks: dict, temporal: bool = True) -> tuple[dict, dict | None]:
        projected = self.project(inputs, masks)
        aligned = {}
        for t in MODALITIES:
            x, mask = projected[t], masks[t]
            views = [self.memory[t](x, mask)] + [
                self.crossmodal[f"{t}_from_{s}"](x, mask, projected[s], masks[s])
                for s in MODALITIES
                if s != t
            ]
            aligned[t] = torch.cat(views, dim=-1)
        if not temporal:
            return aligned, None
        return aligned, {m: self.run_temporal(m, h) for m, h in aligned.items()}

    def run_temporal(self, modality: str, aligned: torch.Tensor) -> torch.Tensor:
        """The temporal Transformer over (B, T, 3d) -> (B, T, 3d). Its embedding is the T steps
        of one channel. "batch" (MMSA's code: its (T, B, 3d) -> (B, 3d, T) permute makes the
        batch the sequence axis, so a sample attends to the batch's other samples, the earlier
        ones under the future mask, channel by channel); "channels": each sample's 3d channels
        are the sequence."""
        network = self.temporal[modality]
        if self.cfg.temporal_axis == "batch":
            sequence = aligned.permute(2, 0, 1)  # (3d, B, T): 3d sequences of B steps
            out = network(
                sequence, torch.ones(sequence.shape[:2], dtype=torch.bool, device=aligned.device)
            )
            return out.permute(1, 2, 0)
        sequence = aligned.transpose(1, 2)  # (B, 3d, T)
        mask = torch.ones(sequence.shape[:2], dtype=torch.bool, device=aligned.device)
        return network(sequence, mask).transpose(1, 2)


def _match_norm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MMSA's CMD.matchnorm: sqrt(sum((x - y)^2) + 1e-12)."""
    return ((x - y).pow(2).sum() + 1e-12).sqrt()


def mmsa_cmd(x: torch.Tensor, y: torch.Tensor, moments: int) -> torch.Tensor:
    """MMSA's TFR_NET CMD: rows (N, D) of x and y (flattened from (B, T, D), every step
    included); ||mean difference|| + sum over k = 2..moments of ||k-th central moment
    difference||, each norm sqrt(. + 1e-12). Scalar."""
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    mean_x, mean_y = x.mean(dim=0), y.mean(dim=0)
    total = _match_norm(mean_x, mean_y)
    for k in range(2, moments + 1):
        total = total + _match_norm((x - mean_x).pow(k).mean(0), (y - mean_y).pow(k).mean(0))
    return total


def reconstruction_terms(
    generated: torch.Tensor, target: torch.Tensor, dropped: torch.Tensor, kind: str, moments: int
) -> dict[str, torch.Tensor]:
    """MMSA's RECLoss over the dropped steps: generated and target (B, T, D), dropped (B, T)
    bool. Both are multiplied by the mask and the sums divided by (mask elements + 1e-4), the
    element count of the dropped steps (B-T-D mask). {"rec": SmoothL1 ("combine", "smooth_l1"),
    MSE ("mse") or CMD ("cmd") sum / count} and, for "combine", {"sim": CMD / count} (weighted
    by weight_sim_loss outside). Zero when nothing is dropped."""
    if kind not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"reconstruction loss: expected one of {RECONSTRUCTION_LOSSES}")
    generated, target = generated.float(), target.float()  # float32 also under autocast
    mask = dropped.unsqueeze(-1).to(generated.dtype).expand_as(generated)
    generated, target = generated * mask, target * mask
    count = mask.sum() + COUNT_EPS
    if kind == "cmd":
        return {"rec": mmsa_cmd(generated, target, moments) / count}
    distance = F.mse_loss if kind == "mse" else F.smooth_l1_loss
    terms = {"rec": distance(generated, target, reduction="sum") / count}
    if kind == "combine":
        terms["sim"] = mmsa_cmd(generated, target, moments) / count
    return terms
