"""Missing-modality masks: the field's robustness protocol (TFR-Net, LNLN, FSRF), independent of
any method.

* Intra-modal missing at rate r: each real time step of each modality is dropped with probability
  r and zero-filled; padding is never touched and lengths are kept (a dropped step is a zero step,
  not a shorter sequence), as the protocol zero-fills frames.
* Inter-modal missing at rate r for a pattern (`INTER_PATTERNS`: each single modality, each
  pair): each sample loses the pattern's modalities (zero-filled) with probability r, from one
  seeded uniform number per (sample, pattern); so at r = 0.3 about 30% of the samples lack them.
* Same masks for every method: `MissingMasks` draws one uniform number per (sample, step,
  modality) of a split from numpy's `default_rng([seed, modality index])`; a step is dropped at
  rate r when its number is below r. Masks therefore depend only on (seed, split shape), never on
  the model, the batch order or the batch size; rate 0 drops nothing; and masks are nested across
  rates (a step dropped at r is dropped at every higher rate), so a method's rate curve is not
  noisier than the rates themselves.
* Training-time augmentation (`augment`): per sample and modality a rate drawn from U(0, 1)
  (LNLN's protocol), then steps dropped at that rate, from a torch generator the caller seeds.

Masks are applied to batches after standardisation (`Batch` features are in the model's input
space), so a dropped step is exactly zero there, like padding. Where a batch has token ids, a
dropped text step also replaces its token by [UNK], keeping [CLS] and [SEP] (the first and last
real token), as MMSA's missing-modality data do (`TokenBatch`; text steps and tokens are aligned:
the text length is the number of real tokens). N = samples of the split,
T_m = padded steps of modality m, B = batch size.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import torch

from harness.data.types import MODALITIES, Batch, TokenBatch

RATES = tuple(round(0.1 * i, 1) for i in range(10))  # 0.0, 0.1, ..., 0.9
INTER_PATTERNS: tuple[tuple[str, ...], ...] = tuple(
    combo for size in (1, 2) for combo in combinations(MODALITIES, size)
)


def _real_steps(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(N,) lengths -> (N, steps) bool, True at real steps."""
    return torch.arange(steps).unsqueeze(0) < lengths.reshape(-1, 1).cpu()


class MissingMasks:
    """Intra-modal keep-masks of one split at any rate, fixed by `seed`.

    lengths: {m: (N,) int64}; max_lengths: {m: T_m}."""

    def __init__(
        self, lengths: dict[str, torch.Tensor], max_lengths: dict[str, int], seed: int
    ) -> None:
        self.seed = seed
        self.real = {m: _real_steps(lengths[m], max_lengths[m]) for m in MODALITIES}
        self.uniform = {
            m: torch.from_numpy(
                np.random.default_rng([seed, i]).random(
                    (int(lengths[m].shape[0]), max_lengths[m]), dtype=np.float32
                )
            )
            for i, m in enumerate(MODALITIES)
        }

    def dropped_rows(self, pattern: tuple[str, ...], rate: float) -> np.ndarray:
        """(N,) bool: the samples that lose `pattern`'s modalities at inter-modal `rate` (nested
        across rates, one independent draw per pattern)."""
        _check_rate(rate)
        if pattern not in INTER_PATTERNS:
            raise ValueError(
                f"inter-modal pattern: expected one of {INTER_PATTERNS}, got {pattern}"
            )
        index = len(MODALITIES) + INTER_PATTERNS.index(pattern)  # streams 0-2 are the modalities
        size = int(self.real[MODALITIES[0]].shape[0])
        return np.random.default_rng([self.seed, index]).random(size) < rate

    def keep(self, rate: float) -> dict[str, torch.Tensor]:
        """{m: (N, T_m) bool}: True where a real step is kept at `rate` (False at padding)."""
        _check_rate(rate)
        return {m: self.real[m] & (self.uniform[m] >= rate) for m in MODALITIES}

    def apply(self, batch: Batch, rate: float) -> Batch:
        """The batch with the dropped steps of its rows (batch.index) zero-filled."""
        keep = self.keep(rate)
        rows = batch.index.cpu()
        masks = {
            m: keep[m][rows][:, : x.shape[1]] | ~batch.mask(m).cpu()  # padding untouched
            for m, x in batch.features.items()
        }
        return _apply_keep(batch, masks)


def _apply_keep(batch: Batch, keep: dict[str, torch.Tensor]) -> Batch:
    """The batch with features zero-filled where keep[m] (B, T_m') is False (and, with tokens,
    the matching text tokens replaced by [UNK])."""
    features = {
        m: x * keep[m].unsqueeze(-1).to(device=x.device, dtype=x.dtype)
        for m, x in batch.features.items()
    }
    tokens = batch.tokens
    if tokens is not None and "text" in keep:
        tokens = unk_tokens(tokens, keep["text"])
    return replace(batch, features=features, tokens=tokens)


def unk_tokens(tokens: TokenBatch, keep: torch.Tensor) -> TokenBatch:
    """Token ids (B, L') with each real token where keep (B, >= L') is False replaced by unk_id,
    except the first and the last real token ([CLS], [SEP])."""
    keep = keep[:, : tokens.ids.shape[1]].to(tokens.ids.device)
    steps = torch.arange(tokens.ids.shape[1], device=tokens.ids.device).unsqueeze(0)
    last = (tokens.lengths - 1).unsqueeze(1)
    dropped = ~keep & (tokens.mask == 1) & (steps > 0) & (steps != last)
    ids = torch.where(dropped, torch.full_like(tokens.ids, tokens.unk_id), tokens.ids)
    return TokenBatch(ids, tokens.mask, tokens.segments, tokens.unk_id)


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"missing rate: expected a number in [0, 1], got {rate}")


def drop_modalities(batch: Batch, dropped: tuple[str, ...]) -> Batch:
    """Inter-modal missing: the named modalities zero-filled (lengths kept)."""
    unknown = set(dropped) - set(MODALITIES)
    if unknown:
        raise ValueError(f"dropped modalities: unknown {sorted(unknown)}; expected {MODALITIES}")
    keep = {
        m: torch.full(x.shape[:2], m not in dropped, dtype=torch.bool)
        for m, x in batch.features.items()
    }
    return _apply_keep(batch, keep)


def augment(batch: Batch, generator: torch.Generator, max_rate: float = 1.0) -> Batch:
    """Training-time intra-modal missing: per sample and modality a rate ~ U(0, max_rate), then
    each real step dropped with that probability (zero-filled). Deterministic under `generator`."""
    keep = {}
    for m, x in batch.features.items():
        rates = torch.rand(x.shape[0], 1, generator=generator) * max_rate  # (B, 1)
        uniform = torch.rand(x.shape[0], x.shape[1], generator=generator)  # (B, T)
        keep[m] = (uniform >= rates) | ~batch.mask(m).cpu()
    return _apply_keep(batch, keep)


def augment_inter(batch: Batch, generator: torch.Generator, probability: float) -> Batch:
    """Training-time inter-modal missing: each sample, with `probability`, loses the modalities of
    one of the six `INTER_PATTERNS` drawn uniformly (zero-filled; lengths kept). Deterministic
    under `generator`."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"inter-modal missing probability: expected [0, 1], got {probability}")
    size = batch.labels.shape[0]
    hit = torch.rand(size, generator=generator) < probability  # (B,)
    pattern = torch.randint(len(INTER_PATTERNS), (size,), generator=generator)  # (B,)
    keep = {}
    for m, x in batch.features.items():
        holds_m = torch.tensor([m in p for p in INTER_PATTERNS])[pattern]  # (B,)
        keep[m] = (~(hit & holds_m)).reshape(-1, 1).expand(-1, x.shape[1])
    return _apply_keep(batch, keep)
