"""The late-fusion Transformer of the simple baselines: one small Transformer per modality, each
summarised by its own [CLS] token, fused only at the end.

Written from the description of SimBaMM (Rheude, Eils & Wild, "Fusion or Confusion? Multimodal
Complexity Is Not All You Need", arXiv 2512.22991): per-modality Transformer encoders and
token-based late fusion, with nothing multimodal before the fusion. Layers are torch's own
`nn.TransformerEncoderLayer` (pre-norm, GELU); the encoder's nested-tensor fast path is off, so
a row's output does not depend on the rest of the batch or on its padding.

`LateFusionModel` is the whole method (registered as late_transformer, text_only, audio_only and
vision_only by their modules, which say what each reads).

B = batch, T = a modality's (padded) steps, D_m = its feature size, d = model dimension,
M = modalities read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.transformer import sinusoidal_positions
from methods.search_space import Choice, FloatRange


def transformer_stack(dim: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    """`layers` pre-norm Transformer layers (feed-forward 4d, GELU, batch first) and a final
    LayerNorm: (B, T, d) -> (B, T, d)."""
    layer = nn.TransformerEncoderLayer(
        dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)


class SequenceSummary(nn.Module):
    """A modality's sequence to one vector: Linear(D_m, d), a learned [CLS] step in front,
    sinusoidal positions, dropout, `layers` Transformer layers with padding masked, and the
    [CLS] step's final state. features (B, T, D_m), lengths (B,) -> (B, d). A row without a
    real step (a missing modality) still has its [CLS] step: no NaN."""

    def __init__(self, in_size: int, dim: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.project = nn.Linear(in_size, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.cls, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.encoder = transformer_stack(dim, heads, layers, dropout)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = features.shape
        x = torch.cat([self.cls.expand(batch, -1, -1), self.project(features)], dim=1)
        x = x + sinusoidal_positions(steps + 1, x.shape[-1], x.device).to(x.dtype)
        positions = torch.arange(steps, device=features.device).unsqueeze(0)
        padding = positions >= lengths.unsqueeze(1)  # (B, T) True at padding
        padding = torch.cat([padding.new_zeros(batch, 1), padding], dim=1)
        return self.encoder(self.dropout(x), src_key_padding_mask=padding)[:, 0]


class LateFusion(nn.Module):
    """The M modality vectors (B, M, d) fused late: `layers` Transformer layers over the M tokens
    (0: none; skipped with one modality), then concatenated and mapped by
    Linear(M d, d) -> GELU -> dropout: -> (B, d)."""

    def __init__(self, modalities: int, dim: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.tokens = (
            transformer_stack(dim, heads, layers, dropout)
            if layers > 0 and modalities > 1
            else None
        )
        self.out = nn.Sequential(nn.Linear(modalities * dim, dim), nn.GELU(), nn.Dropout(dropout))

    def forward(self, summaries: torch.Tensor) -> torch.Tensor:
        if self.tokens is not None:
            summaries = self.tokens(summaries)
        return self.out(summaries.flatten(1))


@dataclass(frozen=True)
class LateTransformerHparams(OptimHparams):
    model_dim: int = 64  # d: every modality's Transformer and the fusion
    num_heads: int = 4
    num_layers: int = 2  # Transformer layers per modality
    fusion_layers: int = 1  # Transformer layers over the M modality tokens (0: concatenation)
    dropout: float = 0.1
    task_loss: str = "l1"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    grad_clip: float = 1.0  # global norm
    output_head: str = "linear"


class LateFusionModel(MsaMethod):
    """Per-modality Transformers fused late (the model of methods/late_transformer.py and of the
    unimodal baselines, which register it with their `MODALITIES_READ`). Outputs: prediction
    (B,), fused (B, d) and one summary (B, d) per modality read, named by the modality."""

    Hparams = LateTransformerHparams
    MODALITIES_READ = None  # every modality the dataset has
    TEXT_POOLING = "cls"  # on token datasets: the pretrained encoder, fine-tuned, read at [CLS]
    KIND_DEFAULTS = {"mosi": {}, "mosei": {}, "sims": {}}
    SEARCH_SPACE = {
        "learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "dropout": FloatRange(0.0, 0.3),
        "model_dim": Choice((32, 64, 128)),
        "num_layers": Choice((1, 2)),
        "weight_decay": FloatRange(1e-6, 1e-2, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        if hparams.model_dim < 1 or hparams.num_heads < 1 or hparams.model_dim % hparams.num_heads:
            raise ConfigError(
                f"{where}.model_dim/num_heads: expected positive sizes with num_heads dividing "
                f"model_dim, got {hparams.model_dim} and {hparams.num_heads}"
            )
        if hparams.num_layers < 1 or hparams.fusion_layers < 0:
            raise ConfigError(
                f"{where}.num_layers/fusion_layers: expected >= 1 and >= 0, got "
                f"{hparams.num_layers} and {hparams.fusion_layers}"
            )
        if not 0.0 <= hparams.dropout < 1.0:
            raise ConfigError(f"{where}.dropout: expected a rate in [0, 1), got {hparams.dropout}")

    def __init__(self, hparams: LateTransformerHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        hp, dim = hparams, hparams.model_dim
        self.modalities = self.modalities_read(spec)
        self.summaries = nn.ModuleDict()
        self.text_encoder = None
        for m in self.modalities:
            if m == "text" and self.text_mode == "pretrained":
                self.text_encoder = self.build_text_encoder("cls")
                self.summaries[m] = nn.Linear(self.text_encoder.out_size, dim)
            else:
                self.summaries[m] = SequenceSummary(
                    spec.feature_dims[m], dim, hp.num_heads, hp.num_layers, hp.dropout
                )
        self.fusion = LateFusion(len(self.modalities), dim, hp.num_heads, hp.fusion_layers,
                                 hp.dropout)  # fmt: skip
        self.head = RegressionHead(dim, spec.label_range, hp.output_head)

    def summarise(self, batch: Batch, modality: str) -> torch.Tensor:
        """One modality's vector (B, d)."""
        if modality == "text" and self.text_encoder is not None:
            assert batch.tokens is not None
            return self.summaries[modality](self.text_encoder(batch.tokens))
        return self.summaries[modality](batch.features[modality], batch.lengths[modality])

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        summaries = {m: self.summarise(batch, m) for m in self.modalities}
        fused = self.fusion(torch.stack([summaries[m] for m in self.modalities], dim=1))
        return {"prediction": self.head(fused), "fused": fused, **summaries}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}
