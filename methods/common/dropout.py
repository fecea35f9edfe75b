"""Dropout for large activations: the semantics of `nn.Dropout` (zero each element with
probability p in training, scale the rest by 1 / (1 - p); identity in eval) at about a third of
its CPU cost, where `nn.Dropout`'s per-element `bernoulli_` dominates a training step (TFN's
fused tensor: 32 x 140,481 elements, 28% of a step; bench/README.md).

How: one full-range 64-bit draw from torch's global generator yields four uniform 16-bit
numbers, so the mask takes a quarter of the generator calls and no copy; an element is kept
when its number is at least round(65536 p), i.e. the dropout probability is p to within
1/65536. The mask, already scaled, multiplies the input once, so backward is one multiplication
too. Deterministic under a seed
like `nn.Dropout` (same global generator). On a big-endian machine, and inside a forward
compiled by `torch.compile` (`compile_mode`), it draws `torch.rand` instead."""

from __future__ import annotations

import sys

import torch
from torch import nn

_LEVELS = 65536  # 16-bit uniform numbers


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Boolean (shape) mask, each element True with probability 1 - p (to within 1/65536)."""
    if sys.byteorder != "little" or torch.compiler.is_compiling():
        # torch.compile cannot trace the full-range `random_` below (a graph break at every
        # dropout): a compiled forward draws its mask with the compiler's own generator
        return torch.rand(shape, device=device) >= p
    n = int(torch.Size(shape).numel())
    # every 64-bit pattern equally likely (from = int64 min, to = None: torch's full-range draw,
    # about 3x cheaper than the default [0, 2^63) range), so all four 16-bit lanes are uniform
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(torch.iinfo(torch.int64).min, None)
    lanes = words.view(torch.int16)[:n]  # contiguous: no copy
    return (lanes >= round(p * _LEVELS) - _LEVELS // 2).view(shape)


class MaskDropout(nn.Module):
    """(...) -> (...): inverted dropout with probability `p` in [0, 1)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        scale = keep_mask(x.shape, self.p, x.device).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * scale

    def extra_repr(self) -> str:
        return f"p={self.p}"
