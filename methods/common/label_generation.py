"""Self-MM's unimodal label generation module (ULGM; Yu et al., AAAI 2021) and its prediction
head, shared by the methods that generate unimodal labels so (MMSA's SELF_MM and TETFN trainers,
trains/multiTask/SELF_MM.py and trains/multiTask/TETFN.py, run the same label update).

ULGM keeps, for every training sample i, the self-generated labels y_t, y_a, y_v (initialised to
the multimodal label y_m at the sample's first visit) and the latest representations F_s(i) of the
fused and unimodal heads. Class centres C_s^p, C_s^n are the means of the stored F_s over all
visited samples whose label (y_m for the fused head, y_s for modality s) is > 0, resp. < 0
(MMSA's excludeZero), recomputed at every training batch from that memory. For the current batch,
with d^p = ||F_s - C_s^p||, d^n = ||F_s - C_s^n||:

    alpha_s = (d_s^n - d_s^p) / (d_s^p + eps)           (the same for the fused head: alpha_m)
    y_s'    = clamp(y_m alpha_s / (2 alpha_m) + (y_m + alpha_s - alpha_m) / 2, label range)
    y_s    <- (n - 1) / (n + 1) y_s + 2 / (n + 1) y_s'    (the paper's momentum, n = epoch)

with n the sample's visit count (methods/self_mm.py lists the departures from MMSA's trainer).
B = batch, N = training samples seen, D_head = a head's representation width.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

UNIMODAL: tuple[str, ...] = ("text", "audio", "vision")
HEADS: tuple[str, ...] = ("fusion", *UNIMODAL)  # column order of the label memory
EPS = 1e-8


class PredictionHead(nn.Module):
    """Dropout -> Linear+ReLU (the representation) -> Linear+ReLU -> Linear(1).
    (B, in_size) -> (representation (B, dim), score (B,))."""

    def __init__(self, in_size: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.represent = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_size, dim), nn.ReLU())
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        representation = self.represent(x)
        return representation, self.score(representation).squeeze(-1)


class UnimodalLabelMemory(nn.Module):
    """ULGM's per-training-sample state, N = largest index seen + 1 (grown lazily):
    labels (N, 4) with columns HEADS (fusion = y_m, then y_t, y_a, y_v), visits (N,) int64, and
    features_<head> (N, D_head), the latest representation of each head. Non-persistent buffers."""

    def __init__(
        self,
        dims: dict[str, int],
        label_range: tuple[float, float],
        warmup_visits: int,
        exclude_zero: bool,
    ) -> None:
        super().__init__()
        self.low, self.high = (float(v) for v in label_range)
        self.warmup_visits = warmup_visits
        self.exclude_zero = exclude_zero
        self.register_buffer("labels", torch.zeros(0, len(HEADS)), persistent=False)
        self.register_buffer("visits", torch.zeros(0, dtype=torch.long), persistent=False)
        for head in HEADS:
            self.register_buffer(f"features_{head}", torch.zeros(0, dims[head]), persistent=False)

    def features(self, head: str) -> torch.Tensor:
        return getattr(self, f"features_{head}")

    def _grow(self, size: int) -> None:
        """Extend every buffer with zero rows up to `size` rows (never shrinks)."""
        extra = size - self.visits.shape[0]
        if extra <= 0:
            return
        for name in ["labels", "visits", *(f"features_{h}" for h in HEADS)]:
            old = getattr(self, name)
            setattr(self, name, torch.cat([old, old.new_zeros(extra, *old.shape[1:])]))

    @torch.no_grad()
    def targets(self, index: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Labels (B, 4) of rows index (B,), initialising first-visited rows to labels (B,)."""
        self._grow(int(index.max()) + 1)
        first = self.visits[index] == 0
        self.labels[index[first]] = labels[first].unsqueeze(1).expand(-1, len(HEADS))
        self.labels[index, 0] = labels
        return self.labels[index].clone()

    def _centres(self, head: str, column: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(positive centre, negative centre), each (D,), over visited rows; None if a class is
        empty."""
        seen = self.visits > 0
        label = self.labels[:, column]
        positive = seen & ((label > 0) if self.exclude_zero else (label >= 0))
        classes = torch.stack([positive, seen & (label < 0)]).to(label.dtype)  # (2, N)
        counts = classes.sum(dim=1)
        if bool((counts == 0).any()):
            return None
        centres = (classes @ self.features(head)) / counts.unsqueeze(1)  # (2, D)
        return centres[0], centres[1]

    @staticmethod
    def _relative_distance(
        features: torch.Tensor, centres: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """alpha = (d_neg - d_pos) / (d_pos + eps): features (B, D) -> (B,)."""
        d_pos = torch.linalg.vector_norm(features - centres[0], dim=-1)
        d_neg = torch.linalg.vector_norm(features - centres[1], dim=-1)
        return (d_neg - d_pos) / (d_pos + EPS)

    @torch.no_grad()
    def update(self, index: torch.Tensor, features: dict[str, torch.Tensor]) -> None:
        """One training batch: count the visit, move the labels of rows past their warm-up
        (centres from the memory before this batch), then store the batch's representations.
        index (B,), features[head] (B, D_head)."""
        self.visits[index] += 1
        due = self.visits[index] > self.warmup_visits
        fusion_centres = self._centres("fusion", 0)
        if due.any() and fusion_centres is not None:
            rows = index[due]
            y_m = self.labels[rows, 0]
            n = self.visits[rows].to(y_m.dtype)
            alpha_m = self._relative_distance(features["fusion"][due], fusion_centres)
            denominator = alpha_m + EPS
            denominator = torch.where(denominator == 0, torch.full_like(y_m, EPS), denominator)
            for column, head in enumerate(UNIMODAL, start=1):
                centres = self._centres(head, column)
                if centres is None:
                    continue
                alpha_s = self._relative_distance(features[head][due], centres)
                generated = 0.5 * y_m * alpha_s / denominator + 0.5 * (y_m + alpha_s - alpha_m)
                generated = generated.clamp(self.low, self.high)
                old = self.labels[rows, column]
                moved = (n - 1) / (n + 1) * old + 2 / (n + 1) * generated
                self.labels[rows, column] = moved.clamp(self.low, self.high)  # float rounding
        for head in HEADS:
            self.features(head)[index] = features[head].to(self.features(head).dtype)


def unimodal_label_terms(
    memory: UnimodalLabelMemory,
    batch_index: torch.Tensor,
    labels: torch.Tensor,
    outputs: dict[str, torch.Tensor],
    weight: float,
) -> dict[str, torch.Tensor]:
    """One training batch's unimodal terms, then the memory's update (MMSA's SELF_MM / TETFN
    trainer order: the loss reads the labels before this batch moves them). For s in UNIMODAL:
    "s" = weight * mean_i tanh(|y_s(i) - y_m(i)|) |y_hat_s(i) - y_s(i)|, with batch_index (B,),
    labels (B,) = y_m, outputs["prediction_<s>"] (B,) and outputs["representation_<head>"]
    (B, D_head) for every head (stored detached)."""
    targets = memory.targets(batch_index, labels)
    terms = {}
    for column, head in enumerate(UNIMODAL, start=1):
        importance = torch.tanh((targets[:, column] - targets[:, 0]).abs())
        error = (outputs[f"prediction_{head}"] - targets[:, column]).abs()
        terms[head] = weight * (importance * error).mean()
    memory.update(batch_index, {h: outputs[f"representation_{h}"].detach() for h in HEADS})
    return terms


def audio_vision_groups(
    model: nn.Module, audio: nn.Module, vision: nn.Module, hparams: Any
) -> list[dict[str, Any]]:
    """The optimiser grouping of MMSA's SELF_MM and TETFN trainers: `audio`'s parameters at
    hparams.audio_learning_rate / audio_weight_decay, `vision`'s at video_learning_rate /
    video_weight_decay, every other trainable parameter of `model` at the default rate and
    decay (the loop moves a fine-tuned text encoder into groups of its own)."""
    audio_params, vision_params = list(audio.parameters()), list(vision.parameters())
    av_ids = {id(p) for p in (*audio_params, *vision_params)}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in av_ids]
    return [
        {
            "params": audio_params,
            "lr": hparams.audio_learning_rate,
            "weight_decay": hparams.audio_weight_decay,
        },
        {
            "params": vision_params,
            "lr": hparams.video_learning_rate,
            "weight_decay": hparams.video_weight_decay,
        },
        {"params": others},
    ]
