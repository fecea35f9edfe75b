"""Supervised contrastive learning against a class-wise queue (FINE's Dynamic Contrastive Queue).

* `sentiment_classes`: class buckets of regression labels, the ones the field's fine-grained
  accuracy uses: Acc-7's rounded classes for MOSI/MOSEI (round(clip(y, -3, 3)) + 3 in 0..6) and
  Acc-5's bins for SIMS (MMSA's edges -1, -0.7, -0.1, 0.1, 0.7, 1), so the queue's classes are the
  classes the paper's Acc-7 gains are measured on.
* `ClassQueue`: one FIFO sub-queue per class of the most recent L2-normalised features (and their
  continuous labels), detached; older entries are overwritten first.
* `supervised_contrastive`: SupCon (Khosla et al., NeurIPS 2020) of a batch against the batch and
  the queue, with optional angle compensation (ACCon, Zhao et al., AAAI 2025): a negative pair's
  logit is cos(theta + pi - theta*) with theta* = pi |y_i - y_j| / label_span, which is smallest
  when the pair's angle equals theta*, so the angle between two representations grows linearly
  with the distance between their labels instead of every negative being pushed to the antipode.
  (Our reading of ACCon's abstract, "adjusts the cosine distance between anchor and negative
  samples" under "a linear negative correlation between label distances and representation
  similarities"; the paper's equations were not available here.)

B = batch, N = queue entries, D = feature dimension, C = classes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

SIMS_EDGES = (-0.7, -0.1, 0.1, 0.7)  # inner edges of MMSA's 5 SIMS classes (lower < x <= upper)


def num_sentiment_classes(kind: str) -> int:
    return {"mosi": 7, "mosei": 7, "sims": 5, "binary": 2}[kind]


def sentiment_classes(labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Class index of each label (B,) -> (B,) int64, in float32 as the metrics assign them."""
    y = labels.to(torch.float32)
    if kind in ("mosi", "mosei"):
        return (torch.round(y.clamp(-3.0, 3.0)) + 3).to(torch.int64)
    if kind == "sims":
        edges = torch.tensor(SIMS_EDGES, dtype=torch.float32, device=y.device)
        return torch.bucketize(y, edges, right=False).to(torch.int64)
    if kind == "binary":  # the class itself
        return (y >= 0.5).to(torch.int64)
    raise ValueError(f"kind: expected 'mosi', 'mosei', 'sims' or 'binary', got {kind!r}")


class ClassQueue(nn.Module):
    """C FIFO sub-queues of `size` entries each: features (C, size, D), labels (C, size).
    Non-persistent buffers (a checkpoint or a restored best state does not carry them)."""

    def __init__(self, num_classes: int, size: int, dim: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size: expected a positive number of entries, got {size}")
        self.size = size
        self.register_buffer("features", torch.zeros(num_classes, size, dim), persistent=False)
        self.register_buffer("labels", torch.zeros(num_classes, size), persistent=False)
        self.register_buffer(
            "count", torch.zeros(num_classes, dtype=torch.int64), persistent=False
        )  # entries ever pushed per class; the write position is count % size

    @torch.no_grad()
    def push(self, features: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor) -> None:
        """Append a batch (features (B, D) normalised here, labels (B,), classes (B,)) in order."""
        features = F.normalize(features.detach().to(self.features.dtype), dim=-1)
        for c in classes.unique().tolist():
            rows = (classes == c).nonzero().squeeze(1)[-self.size :]
            start = int(self.count[c])
            slots = (start + torch.arange(rows.numel(), device=rows.device)) % self.size
            self.features[c, slots] = features[rows]
            self.labels[c, slots] = labels[rows].to(self.labels.dtype)
            self.count[c] += rows.numel()

    def contents(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Filled entries: features (N, D), labels (N,), classes (N,)."""
        filled = self.count.clamp(max=self.size)
        slots = torch.arange(self.size, device=self.count.device).unsqueeze(0)
        valid = slots < filled.unsqueeze(1)  # (C, size)
        classes = torch.arange(len(self.count), device=self.count.device)
        classes = classes.unsqueeze(1).expand_as(valid)
        return self.features[valid], self.labels[valid], classes[valid]

    def reset(self) -> None:
        self.count.zero_()


def supervised_contrastive(
    features: torch.Tensor,
    labels: torch.Tensor,
    classes: torch.Tensor,
    bank: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    temperature: float = 0.1,
    label_span: float | None = None,
) -> torch.Tensor:
    """SupCon loss (scalar) of the batch against itself and an optional bank (features (N, D),
    labels (N,), classes (N,); no gradient flows into the bank).

    features (B, D) are L2-normalised here; positives of anchor i are the other batch rows and
    the bank entries of its class; anchors without positives are skipped (0 if none has one).
    With `label_span` (the label range's width) negatives are angle-compensated (module doc)."""
    z = F.normalize(features, dim=-1)
    contrast, contrast_labels, contrast_classes = z, labels, classes
    if bank is not None and bank[0].shape[0] > 0:
        contrast = torch.cat([z, bank[0].detach().to(z.dtype)], dim=0)
        contrast_labels = torch.cat([labels, bank[1].to(labels.dtype)], dim=0)
        contrast_classes = torch.cat([classes, bank[2].to(classes.dtype)], dim=0)
    cosine = z @ contrast.t()  # (B, B + N)
    positive = classes.unsqueeze(1) == contrast_classes.unsqueeze(0)
    itself = torch.zeros_like(positive)
    itself[:, : z.shape[0]] = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    positive = positive & ~itself
    logits = cosine
    if label_span is not None:
        angle = torch.arccos(cosine.clamp(-1 + 1e-6, 1 - 1e-6))
        target = math.pi * (labels.unsqueeze(1) - contrast_labels.unsqueeze(0)).abs() / label_span
        compensated = torch.cos(angle + math.pi - target.clamp(max=math.pi))
        logits = torch.where(positive, cosine, compensated)
    logits = (logits / temperature).masked_fill(itself, float("-inf"))
    log_probability = logits - logits.logsumexp(dim=1, keepdim=True)
    has_positive = positive.any(dim=1)
    if not has_positive.any():
        return features.sum() * 0.0
    per_anchor = (log_probability.masked_fill(~positive, 0.0)).sum(dim=1) / positive.sum(
        dim=1
    ).clamp(min=1)
    return -per_anchor[has_positive].mean()
