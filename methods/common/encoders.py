"""Sequence encoders and pooling shared by methods.

B = batch, T = time steps (padded), D = feature dimension, H = hidden size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.common.dropout import MaskDropout
from methods.common.recurrent import LastStateEncoder

# which time steps the pooled encoders read: "real" (msabench's: means over each row's real steps,
# the text LSTM's state at its last real step) or "padded" (MMSA's: audio and vision averaged
# over the dataset's padded length, padding zeros included, as MMSA's `need_normalized` does when
# it builds the dataset; the text LSTM run over the padded sequence and read at its last step)
FEATURE_STEPS = ("real", "padded")


def check_feature_steps(hparams: object, where: str = "hparams") -> None:
    """ConfigError naming `where`.feature_steps unless it is one of FEATURE_STEPS."""
    value = hparams.feature_steps
    if value not in FEATURE_STEPS:
        raise ConfigError(
            f"{where}.feature_steps: expected one of {', '.join(FEATURE_STEPS)}, got {value!r}"
        )


def padded_mean(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Mean over a padded length of `steps`: x (B, T, D) with zeros past each row's length and
    T <= steps (batches may be trimmed to their longest row) -> (B, D), sum / steps."""
    return x.sum(dim=1) / max(steps, 1)


def pad_steps(x: torch.Tensor, steps: int) -> torch.Tensor:
    """x (B, T, D) zero-padded (or trimmed: past the dataset's length there is only padding) to
    (B, steps, D); an empty length becomes one zero step."""
    steps = max(steps, 1)
    if x.shape[1] < steps:
        return F.pad(x, (0, 0, 0, steps - x.shape[1]))
    return x[:, :steps]


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
    pooled over time and encoded by a SubNet; text goes through TFN's TextSubNet (a
    LastStateEncoder: LSTM final state, dropout, Linear). `steps` (FEATURE_STEPS) says over
    which steps: "real" (each row's own length) or "padded" (the dataset's padded lengths
    `max_lengths`, as MMSA). Batch -> {"audio": (B, audio_hidden), "vision": (B, vision_hidden),
    "text": (B, text_out)}."""

    def __init__(
        self,
        feature_dims: dict[str, int],
        hidden: dict[str, int],
        text_out: int,
        dropout: dict[str, float],
        steps: str = "real",
        max_lengths: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if steps not in FEATURE_STEPS:
            raise ValueError(f"steps: expected one of {list(FEATURE_STEPS)}, got {steps!r}")
        if steps == "padded" and max_lengths is None:
            raise ValueError("steps 'padded': needs the dataset's max_lengths")
        self.steps, self.max_lengths = steps, dict(max_lengths or {})
        self.audio = SubNet(feature_dims["audio"], hidden["audio"], dropout["audio"])
        self.vision = SubNet(feature_dims["vision"], hidden["vision"], dropout["vision"])
        # TFN's TextSubNet: LSTM final state -> dropout -> Linear
        self.text = LastStateEncoder(
            feature_dims["text"], hidden["text"], text_out, dropout["text"]
        )

    @classmethod
    def from_hparams(
        cls, spec: DataSpec, hparams: object, dropout: float | dict[str, float]
    ) -> PooledUnimodalEncoders:
        """Built from hparams fields audio_hidden, vision_hidden, text_hidden, text_out and
        feature_steps; one dropout for all three modalities or one per modality."""
        hidden = {m: getattr(hparams, f"{m}_hidden") for m in ("audio", "vision", "text")}
        rates = dropout if isinstance(dropout, dict) else dict.fromkeys(hidden, dropout)
        return cls(
            spec.feature_dims, hidden, hparams.text_out, rates,
            hparams.feature_steps, spec.max_lengths,
        )  # fmt: skip

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.steps == "padded":
            pooled = {
                m: padded_mean(batch.features[m], self.max_lengths[m]) for m in ("audio", "vision")
            }
            text = pad_steps(batch.features["text"], self.max_lengths["text"])
            lengths = torch.full(
                (text.shape[0],), text.shape[1], dtype=torch.long, device=text.device
            )
        else:
            pooled = {m: masked_mean(batch.features[m], batch.mask(m)) for m in ("audio", "vision")}
            text, lengths = batch.features["text"], batch.lengths["text"]
        return {
            "audio": self.audio(pooled["audio"]),
            "vision": self.vision(pooled["vision"]),
            "text": self.text(text, lengths),
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
