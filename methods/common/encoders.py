"""Sequence encoders and pooling shared by methods.

B = batch, T = time steps (padded), D = feature dimension, H = hidden size.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.types import Batch
from methods.common.dropout import MaskDropout
from methods.common.recurrent import LastStateEncoder


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real time steps: x (B, T, D), mask (B, T) bool -> (B, D)."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class SubNet(nn.Module):
    """TFN's pre-fusion subnetwork: BatchNorm -> dropout -> 3 x (Linear, ReLU). (B, D) -> (B, H)."""

    def __init__(self, in_size: int, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(in_size)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(
            nn.Linear(in_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.dropout(self.norm(x)))


class PooledUnimodalEncoders(nn.Module):
    """The pre-fusion encoders of TFN, LMF and LF-DNN (as in MMSA): audio and vision are mean
    pooled over their real time steps and encoded by a SubNet; text goes through TFN's TextSubNet
    (a LastStateEncoder: LSTM final state, dropout, Linear).
    Batch -> {"audio": (B, audio_hidden), "vision": (B, vision_hidden), "text": (B, text_out)}."""

    def __init__(
        self,
        feature_dims: dict[str, int],
        hidden: dict[str, int],
        text_out: int,
        dropout: dict[str, float],
    ) -> None:
        super().__init__()
        self.audio = SubNet(feature_dims["audio"], hidden["audio"], dropout["audio"])
        self.vision = SubNet(feature_dims["vision"], hidden["vision"], dropout["vision"])
        # TFN's TextSubNet: LSTM final state -> dropout -> Linear
        self.text = LastStateEncoder(
            feature_dims["text"], hidden["text"], text_out, dropout["text"]
        )

    @classmethod
    def from_hparams(
        cls, feature_dims: dict[str, int], hparams: object, dropout: float | dict[str, float]
    ) -> PooledUnimodalEncoders:
        """Built from hparams fields audio_hidden, vision_hidden, text_hidden and text_out; one
        dropout for all three modalities or one per modality."""
        hidden = {m: getattr(hparams, f"{m}_hidden") for m in ("audio", "vision", "text")}
        rates = dropout if isinstance(dropout, dict) else dict.fromkeys(hidden, dropout)
        return cls(feature_dims, hidden, hparams.text_out, rates)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {
            "audio": self.audio(masked_mean(batch.features["audio"], batch.mask("audio"))),
            "vision": self.vision(masked_mean(batch.features["vision"], batch.mask("vision"))),
            "text": self.text(batch.features["text"], batch.lengths["text"]),
        }


def post_fusion_mlp(in_size: int, hidden_size: int, dropout: float) -> nn.Sequential:
    """Dropout -> 2 x (Linear, ReLU): (B, in_size) -> (B, hidden_size). The input can be huge
    (TFN's fused tensor), so its dropout is `MaskDropout`, the fast equivalent of nn.Dropout."""
    return nn.Sequential(
        MaskDropout(dropout),
        nn.Linear(in_size, hidden_size),
        nn.ReLU(),
        nn.Linear(hidden_size, hidden_size),
        nn.ReLU(),
    )
