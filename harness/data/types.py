"""Typed containers for data in memory.

Shapes use N = samples in a split, B = samples in a batch, T_m = padded length of modality m,
D_m = feature dimension of modality m. Padding positions (t >= length) hold zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

# the torch-free names live in spec.py (configuration and file readers import them without
# torch); re-exported here for the code that works with batches
from harness.data.spec import (  # noqa: E402,F401
    DATASET_KINDS,
    LABEL_RANGES,
    MODALITIES,
    SPLITS,
    DataSpec,
)


@dataclass
class TokenBatch:
    """A batch's token ids for a pretrained text model: ids, mask (attention, 1 at real tokens,
    prefix-shaped) and segments, each (B, L') int64 with L' the batch's longest real token count;
    unk_id: the vocabulary's [UNK] (what a missing-modality mask puts in place of a token)."""

    ids: torch.Tensor
    mask: torch.Tensor
    segments: torch.Tensor
    unk_id: int

    @property
    def lengths(self) -> torch.Tensor:
        """(B,) int64 real tokens per row."""
        return self.mask.sum(dim=1)

    def pin_memory(self) -> TokenBatch:
        return TokenBatch(
            self.ids.pin_memory(), self.mask.pin_memory(), self.segments.pin_memory(), self.unk_id
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TokenBatch:
        return TokenBatch(
            self.ids.to(device, non_blocking=non_blocking),
            self.mask.to(device, non_blocking=non_blocking),
            self.segments.to(device, non_blocking=non_blocking),
            self.unk_id,
        )


@dataclass
class Batch:
    """A mini-batch: features[m] (B, T_m', D_m) with T_m' <= T_m, lengths[m] (B,) int64,
    labels (B,) float32, index (B,) int64 row numbers into the split; tokens when the dataset
    has token ids (`TokenBatch`), else None."""

    features: dict[str, torch.Tensor]
    lengths: dict[str, torch.Tensor]
    labels: torch.Tensor
    index: torch.Tensor
    tokens: TokenBatch | None = None

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def mask(self, modality: str) -> torch.Tensor:
        """(B, T_m') bool, True at real (non-padding) time steps."""
        steps = torch.arange(self.features[modality].shape[1], device=self.labels.device)
        return steps.unsqueeze(0) < self.lengths[modality].unsqueeze(1)

    def pin_memory(self) -> Batch:
        """A copy in page-locked host memory, so that a CUDA copy of it can be asynchronous."""
        return Batch(
            features={m: x.pin_memory() for m, x in self.features.items()},
            lengths={m: n.pin_memory() for m, n in self.lengths.items()},
            labels=self.labels.pin_memory(),
            index=self.index.pin_memory(),
            tokens=None if self.tokens is None else self.tokens.pin_memory(),
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            features={m: x.to(device, non_blocking=non_blocking) for m, x in self.features.items()},
            lengths={m: n.to(device, non_blocking=non_blocking) for m, n in self.lengths.items()},
            labels=self.labels.to(device, non_blocking=non_blocking),
            index=self.index.to(device, non_blocking=non_blocking),
            tokens=None if self.tokens is None else self.tokens.to(device, non_blocking),
        )

    def with_features(
        self, features: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor] | None = None
    ) -> Batch:
        """The same batch with other features (and lengths), everything else kept."""
        return replace(
            self, features=features, lengths=self.lengths if lengths is None else lengths
        )


@dataclass
class SplitData:
    """One split: features[m] (N, T_m, D_m) float32 (usually memory-mapped from the store),
    lengths[m] (N,) int64, labels (N,) float32, ids: N utterance ids; tokens (N, 3, L) int64
    (ids, attention mask, segment ids) with the vocabulary's unk_id, when the store has them."""

    name: str
    features: dict[str, torch.Tensor]
    lengths: dict[str, torch.Tensor]
    labels: torch.Tensor
    ids: list[str] = field(default_factory=list)
    # per-modality (mean (D_m,), std (D_m,)) applied when batches are taken, so features that are
    # memory-mapped from the store are never copied whole; None = use features as stored
    scale: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
    tokens: torch.Tensor | None = None
    unk_id: int = -1

    def __len__(self) -> int:
        return int(self.labels.shape[0])
