"""MulT: Multimodal Transformer for unaligned sequences (Tsai et al., ACL 2019), as in MMSA.

Each modality is projected to a common dimension d by a temporal Conv1d (no bias). For every
target modality, two cross-modal Transformers let the target attend to each of the other two
(source) modalities (six in all, `methods.common.transformer.CrossModalTransformer`); the two
outputs are concatenated (2d) and a self-attention "memory" Transformer runs over them. The last
real step of each memory output is taken, the three are concatenated (6d) and passed through
MulT's residual block (Linear, ReLU, dropout, Linear, + input) and an output layer. No CTC
(unaligned input, as in MMSA). Loss: L1 on y (MMSA's regression trainer).

MMSA defaults (MOSI): d 50, 10 heads, 4 levels (memory Transformers: max(levels, 3) layers),
conv kernels 5/5/5, dropouts: text input 0.5, attention 0.3 (text) / 0.2 (audio) / 0.0 (vision),
relu 0.0, residual 0.0, embedding 0.2, output 0.5; batch 16, lr 2e-3. SIMS: 2 levels (memory 3),
kernels 5/1/1, text 0.3, attention 0.2/0.1/0.0, residual 0.2, embedding 0.1, output 0.1. As in
MulT, a cross-modal Transformer uses the attention dropout of its *source* modality, the memory
Transformers that of text.

Departures: padding masks from the sequence lengths (MulT/MMSA attend to padding, MMSA adds a
causal mask, and both read the last *padded* step; we read the last real step, or a masked mean
with pooling="mean"); convolutions use "same" padding so any length (even 1) keeps its length
(MMSA pads nothing, so kernel 5 shortens every sequence by 4); the projection is applied even when
a modality already has d features; the output is squashed into the label range as in TFN;
gradients are clipped by global norm 0.8 (the MulT authors' clip; MMSA clips values at 0.6 and
accumulates gradients over 8 batches, and ignores the weight decay of its config: weight decay 0
here); no learning-rate scheduler (the harness has none).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.encoders import masked_mean
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.transformer import CrossModalTransformer, last_real_step
from methods.search_space import Choice, FloatRange

MODALITIES = ("text", "audio", "vision")
POOLINGS = ("last", "mean")


@dataclass(frozen=True)
class MulTHparams(OptimHparams):
    model_dim: int = 50
    num_heads: int = 10
    levels: int = 4  # layers of each cross-modal Transformer
    memory_levels: int = 4  # layers of each memory Transformer (MulT: max(levels, 3))
    text_kernel: int = 5
    audio_kernel: int = 5
    vision_kernel: int = 5
    text_dropout: float = 0.5  # on the text input features
    attn_dropout_text: float = 0.3
    attn_dropout_audio: float = 0.2
    attn_dropout_vision: float = 0.0
    relu_dropout: float = 0.0
    res_dropout: float = 0.0
    embed_dropout: float = 0.2
    output_dropout: float = 0.5
    pooling: str = "last"
    task_loss: str = "l1"
    learning_rate: float = 2e-3
    batch_size: int = 16
    # MMSA's MULT trainer: Adam without weight decay, gradients of 8 batches summed per step,
    # each entry clipped to 0.6 after every backward, ReduceLROnPlateau (factor 0.1, patience 5
    # on MOSI, 10 on SIMS) on the validation L1 loss
    grad_clip: float = 0.6
    grad_clip_mode: str = "value"
    grad_accumulation: int = 8
    lr_scheduler: str = "plateau"
    scheduler_factor: float = 0.1
    scheduler_patience: int = 5
    output_head: str = "linear"  # MMSA's MULT: out_layer, a plain Linear layer


def _check(hp: MulTHparams, where: str = "hparams") -> None:
    """Raise ConfigError for hyperparameters that cannot build a model."""
    if hp.model_dim < 1 or hp.num_heads < 1 or hp.model_dim % hp.num_heads != 0:
        raise ConfigError(
            f"{where}.num_heads: expected a positive divisor of model_dim={hp.model_dim}, "
            f"got {hp.num_heads}"
        )
    for key in ("levels", "memory_levels", "text_kernel", "audio_kernel", "vision_kernel"):
        if getattr(hp, key) < 1:
            raise ConfigError(f"{where}.{key}: expected a positive integer, got {getattr(hp, key)}")
    if hp.pooling not in POOLINGS:
        raise ConfigError(f"{where}.pooling: expected one of {list(POOLINGS)}, got {hp.pooling!r}")


def _sources(target: str) -> tuple[str, str]:
    return tuple(m for m in MODALITIES if m != target)  # type: ignore[return-value]


@register_method("mult")
class MulT(MsaMethod):
    """Multimodal Transformer. Outputs: prediction (B,), fused (B, 6 * model_dim)."""

    Hparams = MulTHparams
    KIND_DEFAULTS = {
        "mosi": {},
        "sims": {
            "levels": 2,
            "memory_levels": 3,
            "audio_kernel": 1,
            "vision_kernel": 1,
            "text_dropout": 0.3,
            "attn_dropout_text": 0.2,
            "attn_dropout_audio": 0.1,
            "res_dropout": 0.2,
            "embed_dropout": 0.1,
            "output_dropout": 0.1,
            "scheduler_patience": 10,
        },
    }
    # centred on the reference sizes (d 50, 10 heads, 4 + 4 levels); 5 and 10 heads divide every
    # model_dim choice. The default-budget params.yaml fixes small sizes instead (not tuned).
    SEARCH_SPACE = {
        "learning_rate": FloatRange(5e-4, 3e-3, log=True),
        "model_dim": Choice((30, 40, 50)),
        "num_heads": Choice((5, 10)),
        "levels": Choice((2, 3, 4)),
        "memory_levels": Choice((3, 4)),
        "embed_dropout": FloatRange(0.0, 0.3),
        "output_dropout": FloatRange(0.0, 0.5),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: MulTHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        d = hparams.model_dim
        kernels = {
            "text": hparams.text_kernel,
            "audio": hparams.audio_kernel,
            "vision": hparams.vision_kernel,
        }
        self.projections = nn.ModuleDict(
            {
                m: nn.Conv1d(spec.feature_dims[m], d, kernels[m], padding="same", bias=False)
                for m in MODALITIES
            }
        )
        attn_dropout = {
            "text": hparams.attn_dropout_text,
            "audio": hparams.attn_dropout_audio,
            "vision": hparams.attn_dropout_vision,
        }
        common = {
            "relu_dropout": hparams.relu_dropout,
            "res_dropout": hparams.res_dropout,
            "embed_dropout": hparams.embed_dropout,
        }
        self.crossmodal = nn.ModuleDict(
            {
                f"{target}_from_{source}": CrossModalTransformer(
                    d, hparams.num_heads, hparams.levels, attn_dropout[source], **common
                )
                for target in MODALITIES
                for source in _sources(target)
            }
        )
        self.memory = nn.ModuleDict(
            {
                m: CrossModalTransformer(
                    2 * d, hparams.num_heads, hparams.memory_levels, attn_dropout["text"], **common
                )
                for m in MODALITIES
            }
        )
        combined = 2 * d * len(MODALITIES)
        self.proj1 = nn.Linear(combined, combined)
        self.proj2 = nn.Linear(combined, combined)
        self.head = RegressionHead(combined, spec.label_range, hparams.output_head)

    def project(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Conv1d projections, zero at padding, with their masks: {m: ((B, T_m, d), (B, T_m))};
        an empty modality (T_m = 0) becomes one zero step."""
        projected = {}
        for m in MODALITIES:
            x, mask = batch.features[m], batch.mask(m)
            if x.shape[1] == 0:
                x, mask = x.new_zeros(x.shape[0], 1, x.shape[2]), mask.new_zeros(x.shape[0], 1)
            if m == "text":
                x = F.dropout(x, self.hparams.text_dropout, self.training)
            y = self.projections[m](x.transpose(1, 2)).transpose(1, 2)
            projected[m] = (y * mask.unsqueeze(-1).to(y.dtype), mask)
        return projected

    def summarise(self, target: str, projected: dict, lengths: torch.Tensor) -> torch.Tensor:
        """Both cross-modal views of `target`, its memory Transformer, pooling: (B, 2 d)."""
        x, mask = projected[target]
        views = [
            self.crossmodal[f"{target}_from_{source}"](x, mask, *projected[source])
            for source in _sources(target)
        ]
        memory = self.memory[target](torch.cat(views, dim=-1), mask)
        if self.hparams.pooling == "mean":
            return masked_mean(memory, mask)
        return last_real_step(memory, lengths)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        projected = self.project(batch)
        fused = torch.cat(
            [self.summarise(m, projected, batch.lengths[m]) for m in MODALITIES], dim=-1
        )
        hidden = F.dropout(F.relu(self.proj1(fused)), self.hparams.output_dropout, self.training)
        return {"prediction": self.head(self.proj2(hidden) + fused), "fused": fused}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}
