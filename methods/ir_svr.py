"""IR-SVR: Invariant Representation guided multimodal sentiment decoding with Sequential Variation
Regularization (Xu, Song, Xue, Liu, Wang & Zhang, arXiv 2409.00143 v3; v1 was titled SATI, public
code X-G-Y/SATI, read for reference). Built from ../shared/reference/methods.md and v1's code;
the table "IR-SVR: choices" in methods/README.md lists every choice and its source.

B = batch, T_m = padded steps of modality m (T_t for text), D_m = its features, H = hidden_size,
M = 3 modalities in MODALITIES order (text, audio, vision). A modality with no real step (T_m = 0
or length 0) is read as one zero step (`safe_mask`), so a missing modality never gives NaN.

1. Encoders: per modality Linear(D_m, H), then a self-attention Transformer over the real steps
   (`CrossModalTransformer` without a source: sinusoidal positions, padding masks, pre-norm,
   final LayerNorm): the utterance sequence u_m (B, T_m, H), zero at padding.
2. Modality-invariant fusion (MISA-style factorisation, per step):
   shared s_m = Sigmoid(Linear(u_m)) with one encoder for all modalities, private
   p_m = Sigmoid(Linear_m(u_m)), both (B, T_m, H); their masked means over real steps are the
   outputs shared_<m> / private_<m> (B, H).
   * domain: an adversarial modality discriminator (Linear H->H, ReLU, dropout, Linear H->3) on
     each pooled shared_<m> behind a gradient reversal layer (lambda = reversal_lambda); the term
     is the mean over modalities of the cross-entropy with the modality's index, so the
     discriminator learns to tell modalities apart while the shared encoder learns to hide them.
   * cmd: mean over the three modality pairs of CMD(shared_i, shared_j), 5 moments.
   * recon: a decoder per modality rebuilds u_m from s_m + p_m at every real step; MSE over the
     real steps, mean over modalities.
   * invariant gating (fusion): text private steps P_t (plus sinusoidal positions, as v1) attend
     to the audio and to the vision private sequences (plus positions; multi-head
     cross-attention, padding masked): a_t, v_t
     (B, T_t, H). Gates g_a = sigmoid(Linear(FBP(mean shared_audio, s_t))) (B, T_t, 1), FBP =
     factorized bilinear pooling (hidden 32, factor 2; methods/common/bilinear.py), and likewise
     g_v; at = LayerNorm(a_t * g_a + P_t), vt = LayerNorm(v_t * g_v + P_t). Without gating g = 1.
     [at; vt] (B, T_t, 2H) goes through a Transformer encoder layer (PyTorch's post-norm layer,
     as v1) with a padding mask: the fused sequence f (B, T_t, 2H); its masked mean feeds
     Linear(2H, H), dropout, ReLU and a head squashed into the label range.
3. svr: the sequential variation regulariser (methods/common/regularizers.py) of a
   representation sequence over its real steps: v3's total variation, the mean over consecutive
   real steps of ||h_{t+1} - h_t||_2 (`variation: tv`), or v1's Jensen-Shannon divergence
   between softmax-normalised batch means of consecutive steps (`variation: js`). Which
   sequence (`svr_target`; the paper leaves it open): "modalities" (default) = the mean over the
   three modalities of the penalty on [p_m; s_m] (B, T_m, 2H), i.e. v1's sequence, which v1's
   code takes for vision only, for every modality; "vision" = v1's code exactly; "fused" = the
   fused sequence f before pooling. TV is not normalised by width: on sigmoid codes it grows
   about as sqrt(2H) (about 1 at H = 32, 2 at H = 128 at initialisation), while v1's weight 1.0
   was set for JS (bounded by log 2); svr_weight is searched over 0.05-2.
Loss = task (MSE, as v1) + domain_weight * domain + cmd_weight * cmd + recon_weight * recon
+ svr_weight * svr. Switches use_discriminator / use_cmd / use_recon / use_svr remove a term and
its modules; a weight of 0 also removes its term; use_invariant_gating=False fixes g = 1.

Defaults: v1's weights (0.4 domain, 1.0 CMD, 1.0 recon, 1.0 temporal), hidden 128, dropout 0.6,
batch 64 (MOSI; MOSEI 16, the `mosei` kind's default, and UR-FUNNY 32 in v1), FBP 32/2
with dropout 0.4, cross-attention 4 heads and output dropout 0.2, fusion layer 1 head with
PyTorch's feed-forward 2048, Adam. Learning rate 1e-3, not v1's 1.7e-5: that rate fine-tunes a
pre-trained RoBERTa, while every weight here trains from scratch (at 1.7e-5 the model barely
leaves the mean prediction within the harness's epoch budgets). SIMS (not in the paper): batch 64,
as MOSI, whose training split has about its size.

Departures from v1's code (v3 gives no code):
  * Text: pre-extracted features, a projection and a trained Transformer layer instead of a
    fine-tuned RoBERTa. Audio/vision: the Transformer runs at width H after a projection (v1: at
    the input width, then a Linear + ReLU + LayerNorm projection), with padding masks and
    positions (v1's encoders have neither).
  * Unaligned sequences: v1 gates step by step with FBP(shared_a[t], shared_t[t]) on word-aligned
    data; here audio and vision have their own lengths, so their shared sequence enters the gate
    as its masked mean.
  * Soft gates: v1 thresholds tanh(.) at 0 into a {0, 1} gate, whose gradient is zero, so its FBP
    and gate weights never train (and it reuses the audio gate's Linear for vision); here a
    sigmoid gate, one Linear per gate.
  * Discriminator: v1 feeds time-means of both shared and private codes through the reversal into
    an angular-margin (s = 30, m = 0.5) softmax; here shared codes only, plain cross-entropy
    (DANN/MISA's adversarial form); the difference loss of v1's code is not used (v1's loss does
    not include it either).
  * Reconstruction per real step (v1 broadcasts a time-mean reconstruction against the whole
    sequence); masked means everywhere instead of means over padded steps.
  * v1 clips gradients by value (1.0) and decays the lr on plateaus; the harness loop clips the
    global norm (`grad_clip`, 1.0 here) and has no scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import torch
from torch import nn
from torch.nn import functional as F

from harness.data.types import MODALITIES, Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.bilinear import FactorizedBilinearPooling
from methods.common.encoders import masked_mean
from methods.common.gradient_reversal import reverse_gradient
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.regularizers import VARIATIONS, sequential_variation
from methods.common.similarity import cmd, reconstruction_loss
from methods.common.transformer import CrossModalTransformer, safe_mask, sinusoidal_positions
from methods.search_space import Choice, FloatRange

SVR_TARGETS = ("modalities", "vision", "fused")
PAIRS = tuple(combinations(range(len(MODALITIES)), 2))
TERMS = ("task", "domain", "cmd", "recon", "svr")  # the names of the loss terms, in order


@dataclass(frozen=True)
class IRSVRHparams(OptimHparams):
    hidden_size: int = 128  # H
    encoder_heads: int = 2
    encoder_layers: int = 1
    encoder_dropout: float = 0.1  # attention, feed-forward and residual dropout of the encoders
    cross_heads: int = 4
    attention_dropout: float = 0.2  # on the cross-attention outputs (v1's CrossAttention)
    fusion_heads: int = 1
    fusion_ff_dim: int = 2048  # PyTorch's default, as v1's fusion layer
    dropout: float = 0.6  # discriminator and fusion MLP (v1)
    fbp_hidden: int = 32
    fbp_factor: int = 2
    fbp_dropout: float = 0.4
    use_discriminator: bool = True
    use_cmd: bool = True
    use_recon: bool = True
    use_svr: bool = True
    use_invariant_gating: bool = True
    variation: str = "tv"  # "tv" (v3) or "js" (v1)
    svr_target: str = "modalities"  # "modalities", "vision" or "fused"
    domain_weight: float = 0.4
    cmd_weight: float = 1.0
    recon_weight: float = 1.0
    svr_weight: float = 1.0
    reversal_lambda: float = 1.0
    cmd_moments: int = 5
    task_loss: str = "mse"
    learning_rate: float = 1e-3
    batch_size: int = 64
    grad_clip: float = 1.0


def _check(hp: IRSVRHparams, where: str = "hparams") -> None:
    """Raise ConfigError, naming the hyperparameter, for values the model cannot be built with."""
    if hp.variation not in VARIATIONS:
        raise ConfigError(f"{where}.variation: expected one of {VARIATIONS}, got {hp.variation!r}")
    if hp.svr_target not in SVR_TARGETS:
        raise ConfigError(
            f"{where}.svr_target: expected one of {SVR_TARGETS}, got {hp.svr_target!r}"
        )
    for name, width in (
        ("encoder_heads", hp.hidden_size),
        ("cross_heads", hp.hidden_size),
        ("fusion_heads", 2 * hp.hidden_size),
    ):
        heads = getattr(hp, name)
        if hp.hidden_size < 1 or heads < 1 or width % heads:
            raise ConfigError(
                f"{where}.{name}: expected a positive divisor of {width} (from hidden_size "
                f"{hp.hidden_size}), got {heads}"
            )
    for name in ("encoder_layers", "fusion_ff_dim", "fbp_hidden", "fbp_factor", "cmd_moments"):
        if getattr(hp, name) < 1:
            raise ConfigError(
                f"{where}.{name}: expected a positive integer, got {getattr(hp, name)}"
            )
    for name in ("domain_weight", "cmd_weight", "recon_weight", "svr_weight", "reversal_lambda"):
        if getattr(hp, name) < 0:
            raise ConfigError(f"{where}.{name}: expected a value >= 0, got {getattr(hp, name)}")


def _sigmoid_layer(size: int) -> nn.Sequential:
    """MISA's shared/private encoder: Linear -> Sigmoid, (..., H) -> (..., H)."""
    return nn.Sequential(nn.Linear(size, size), nn.Sigmoid())


def _at_least_one_step(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, max(T, 1), D) and a (B, max(T, 1)) mask with every row's first step real when it has
    none, so an empty modality reads as one zero step."""
    if x.shape[1] == 0:
        x, mask = x.new_zeros(x.shape[0], 1, x.shape[2]), mask.new_zeros(x.shape[0], 1)
    return x, safe_mask(mask)


class InvariantGatedCrossAttention(nn.Module):
    """Text queries attend to one other modality; the result is gated by the invariant codes.
    queries (B, T_t, H), keys (B, S, H), key_mask (B, S), shared_text (B, T_t, H), shared_other
    (B, H) -> (fused (B, T_t, H), gate (B, T_t, 1)); gate is None when gating is off (g = 1)."""

    def __init__(self, hp: IRSVRHparams) -> None:
        super().__init__()
        size = hp.hidden_size
        self.attention = nn.MultiheadAttention(size, hp.cross_heads, batch_first=True)
        self.dropout = nn.Dropout(hp.attention_dropout)
        self.norm = nn.LayerNorm(size)
        self.gating = hp.use_invariant_gating
        if self.gating:
            self.fbp = FactorizedBilinearPooling(
                size, size, hp.fbp_hidden, hp.fbp_factor, hp.fbp_dropout
            )
            self.gate = nn.Linear(hp.fbp_hidden, 1)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        key_mask: torch.Tensor,
        shared_text: torch.Tensor,
        shared_other: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, _ = self.attention(
            queries, keys, keys, key_padding_mask=~key_mask, need_weights=False
        )
        attended = self.dropout(attended)
        gate = None
        if self.gating:
            pooled = self.fbp(shared_other.unsqueeze(1), shared_text)  # (B, T_t, fbp_hidden)
            gate = torch.sigmoid(self.gate(pooled))
            attended = attended * gate
        return self.norm(attended + queries), gate


@register_method("ir_svr")
class IRSVR(MsaMethod):
    """IR-SVR. Outputs: prediction (B,); shared_<m>, private_<m> (B, H) pooled codes; and, for the
    loss terms, mask_<m> (B, T_m') bool, shared_seq_<m>, private_seq_<m>, utterance_seq_<m>
    (B, T_m', H), reconstructed_seq_<m> (with recon), domain_logits (B, 3, 3) (with the
    discriminator), gate_audio / gate_vision (B, T_t') (with gating), fused_seq (B, T_t', 2H).
    T_m' = max(T_m, 1)."""

    Hparams = IRSVRHparams
    KIND_DEFAULTS = {"mosi": {}, "mosei": {"batch_size": 16}, "sims": {"batch_size": 64}}
    SEARCH_SPACE = {
        "learning_rate": FloatRange(2e-4, 3e-3, log=True),
        "hidden_size": Choice((64, 128)),
        "dropout": FloatRange(0.2, 0.6),
        "batch_size": Choice((16, 32, 64)),
        "domain_weight": FloatRange(0.1, 1.0),
        "cmd_weight": FloatRange(0.3, 1.5),
        "recon_weight": FloatRange(0.3, 1.5),
        "svr_weight": FloatRange(0.05, 2.0, log=True),
        "reversal_lambda": FloatRange(0.1, 1.0),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: IRSVRHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        hp, size = hparams, hparams.hidden_size
        self.inputs = nn.ModuleDict({m: nn.Linear(spec.feature_dims[m], size) for m in MODALITIES})
        self.encoders = nn.ModuleDict(
            {
                m: CrossModalTransformer(
                    size,
                    hp.encoder_heads,
                    hp.encoder_layers,
                    attn_dropout=hp.encoder_dropout,
                    relu_dropout=hp.encoder_dropout,
                    res_dropout=hp.encoder_dropout,
                )
                for m in MODALITIES
            }
        )
        self.shared_encoder = _sigmoid_layer(size)
        self.private_encoders = nn.ModuleDict({m: _sigmoid_layer(size) for m in MODALITIES})
        if hp.use_recon:
            self.decoders = nn.ModuleDict({m: nn.Linear(size, size) for m in MODALITIES})
        if hp.use_discriminator:
            self.discriminator = nn.Sequential(
                nn.Linear(size, size),
                nn.ReLU(),
                nn.Dropout(hp.dropout),
                nn.Linear(size, len(MODALITIES)),
            )
        self.cross = nn.ModuleDict(
            {m: InvariantGatedCrossAttention(hp) for m in ("audio", "vision")}
        )
        self.fusion_encoder = nn.TransformerEncoderLayer(
            2 * size, hp.fusion_heads, hp.fusion_ff_dim, dropout=0.1, batch_first=True
        )
        self.fusion = nn.Sequential(nn.Linear(2 * size, size), nn.Dropout(hp.dropout), nn.ReLU())
        self.head = RegressionHead(size, spec.label_range, hparams.output_head)

    def _active(self, term: str) -> bool:
        """Whether a loss term is computed: its switch is on and its weight positive."""
        return self.loss_weights().get(term, 0.0) > 0

    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        weights = {"task": 1.0}
        for term, switch, weight in (
            ("domain", hp.use_discriminator, hp.domain_weight),
            ("cmd", hp.use_cmd, hp.cmd_weight),
            ("recon", hp.use_recon, hp.recon_weight),
            ("svr", hp.use_svr, hp.svr_weight),
        ):
            if switch:
                weights[term] = weight
        return weights

    # -- model -----------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        hp = self.hparams
        out: dict[str, torch.Tensor] = {}
        positioned = {}
        for m in MODALITIES:
            x, mask = _at_least_one_step(batch.features[m], batch.mask(m))
            utterance = self.encoders[m](self.inputs[m](x), mask)  # (B, T, H), zero at padding
            shared = self.shared_encoder(utterance)
            private = self.private_encoders[m](utterance)
            out[f"mask_{m}"], out[f"utterance_seq_{m}"] = mask, utterance
            out[f"shared_seq_{m}"], out[f"private_seq_{m}"] = shared, private
            out[f"shared_{m}"] = masked_mean(shared, mask)
            out[f"private_{m}"] = masked_mean(private, mask)
            if self._active("recon"):
                out[f"reconstructed_seq_{m}"] = self.decoders[m](shared + private)
            steps = sinusoidal_positions(private.shape[1], private.shape[2], private.device)
            positioned[m] = private + steps.to(private.dtype)
        if self._active("domain"):
            logits = [
                self.discriminator(reverse_gradient(out[f"shared_{m}"], hp.reversal_lambda))
                for m in MODALITIES
            ]
            out["domain_logits"] = torch.stack(logits, dim=1)  # (B, modality, class)
        branches = []
        for m in ("audio", "vision"):
            fused, gate = self.cross[m](
                positioned["text"],
                positioned[m],
                out[f"mask_{m}"],
                out["shared_seq_text"],
                out[f"shared_{m}"],
            )
            branches.append(fused)
            if gate is not None:
                out[f"gate_{m}"] = gate.squeeze(-1)
        text_mask = out["mask_text"]
        fused = self.fusion_encoder(torch.cat(branches, dim=-1), src_key_padding_mask=~text_mask)
        out["fused_seq"] = fused
        out["prediction"] = self.head(self.fusion(masked_mean(fused, text_mask)))
        return out

    # -- losses ----------------------------------------------------------------------------------
    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp = self.hparams
        terms = {"task": task_loss(hp.task_loss, outputs["prediction"], batch.labels)}
        if self._active("domain"):
            logits = outputs["domain_logits"]  # (B, M, M)
            labels = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
            terms["domain"] = hp.domain_weight * F.cross_entropy(
                logits.flatten(0, 1), labels.flatten()
            )
        if self._active("cmd"):
            shared = [outputs[f"shared_{m}"] for m in MODALITIES]
            discrepancy = sum(cmd(shared[i], shared[j], hp.cmd_moments) for i, j in PAIRS)
            terms["cmd"] = hp.cmd_weight * discrepancy / len(PAIRS)
        if self._active("recon"):
            errors = [
                reconstruction_loss(
                    outputs[f"reconstructed_seq_{m}"][outputs[f"mask_{m}"]],
                    outputs[f"utterance_seq_{m}"][outputs[f"mask_{m}"]],
                )
                for m in MODALITIES
            ]
            terms["recon"] = hp.recon_weight * torch.stack(errors).mean()
        if self._active("svr"):
            terms["svr"] = hp.svr_weight * self.variation(outputs)
        return terms

    def variation(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The unweighted sequential variation penalty of the `svr_target` sequence(s): scalar."""
        hp = self.hparams
        if hp.svr_target == "fused":
            return sequential_variation(outputs["fused_seq"], outputs["mask_text"], hp.variation)
        modalities = ("vision",) if hp.svr_target == "vision" else MODALITIES
        penalties = [
            sequential_variation(
                torch.cat([outputs[f"private_seq_{m}"], outputs[f"shared_seq_{m}"]], dim=-1),
                outputs[f"mask_{m}"],
                hp.variation,
            )
            for m in modalities
        ]
        return torch.stack(penalties).mean()
