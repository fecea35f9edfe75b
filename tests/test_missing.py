"""The missing-modality protocol's masks: the same for every method and run at a seed and rate,
rate 0 changes nothing, rate r drops about r of the real steps and never padding, nested rates,
whole-modality drops, and seeded training-time augmentation."""

from __future__ import annotations

import pytest
import torch

from harness.data.loading import take_batch
from harness.data.missing import INTER_PATTERNS, RATES, MissingMasks, augment, drop_modalities


def _masks(split, seed: int = 5) -> MissingMasks:
    max_lengths = {m: x.shape[1] for m, x in split.features.items()}
    return MissingMasks(split.lengths, max_lengths, seed)


def _batch(split, rows=None):
    rows = torch.arange(len(split)) if rows is None else rows
    return take_batch(split, rows)


def test_rates_and_patterns_are_the_protocols() -> None:
    assert RATES == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert len(INTER_PATTERNS) == 6 and ("text",) in INTER_PATTERNS
    assert ("audio", "vision") in INTER_PATTERNS


def test_masks_are_identical_for_the_same_seed_and_differ_for_another(tiny_data) -> None:
    _, splits = tiny_data
    a, b, c = _masks(splits["test"]), _masks(splits["test"]), _masks(splits["test"], seed=6)
    for m in a.keep(0.3):
        assert torch.equal(a.keep(0.3)[m], b.keep(0.3)[m])
    assert any(not torch.equal(a.keep(0.3)[m], c.keep(0.3)[m]) for m in a.keep(0.3))


def test_masks_do_not_depend_on_batching(tiny_data) -> None:
    _, splits = tiny_data
    split, masks = splits["test"], _masks(splits["test"])
    whole = masks.apply(_batch(split), 0.5)
    rows = torch.tensor([7, 2, 11])
    part = masks.apply(_batch(split, rows), 0.5)
    for m in whole.features:
        width = part.features[m].shape[1]
        torch.testing.assert_close(part.features[m], whole.features[m][rows][:, :width])


def test_rate_zero_changes_nothing(tiny_data) -> None:
    _, splits = tiny_data
    batch = _batch(splits["test"])
    out = _masks(splits["test"]).apply(batch, 0.0)
    for m in batch.features:
        assert torch.equal(out.features[m], batch.features[m])


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_rate_r_drops_about_r_of_the_real_steps_and_never_padding(tiny_data, rate) -> None:
    _, splits = tiny_data
    split = splits["train"]
    masks = _masks(split)
    keep = masks.keep(rate)
    for m in keep:
        real = masks.real[m]
        assert not (keep[m] & ~real).any()  # padding is never "kept" as a real step
        dropped = (real & ~keep[m]).sum().item() / real.sum().item()
        n = real.sum().item()
        assert abs(dropped - rate) < 4 * (rate * (1 - rate) / n) ** 0.5 + 1e-9, (m, dropped)
    batch = _batch(split)
    out = masks.apply(batch, rate)
    for m, x in batch.features.items():
        padding = ~batch.mask(m)
        assert torch.equal(out.features[m][padding], x[padding])  # padding untouched
        assert torch.equal(out.lengths[m], batch.lengths[m])


def test_masks_are_nested_across_rates(tiny_data) -> None:
    _, splits = tiny_data
    masks = _masks(splits["train"])
    for low, high in zip(RATES[:-1], RATES[1:], strict=True):
        for m in masks.keep(low):
            assert not (masks.keep(high)[m] & ~masks.keep(low)[m]).any()


def test_dropped_modalities_are_zero_and_the_others_untouched(tiny_data) -> None:
    _, splits = tiny_data
    batch = _batch(splits["test"])
    out = drop_modalities(batch, ("audio", "vision"))
    assert not out.features["audio"].any() and not out.features["vision"].any()
    assert torch.equal(out.features["text"], batch.features["text"])
    with pytest.raises(ValueError, match="unknown \\['video'\\]"):
        drop_modalities(batch, ("video",))


def test_augmentation_is_seeded_and_varies_the_rate_per_sample(tiny_data) -> None:
    _, splits = tiny_data
    batch = _batch(splits["train"])
    first = augment(batch, torch.Generator().manual_seed(3))
    again = augment(batch, torch.Generator().manual_seed(3))
    for m in batch.features:
        assert torch.equal(first.features[m], again.features[m])
    real = batch.mask("audio")
    kept = ((first.features["audio"] != 0).any(-1) & real).sum(1) / real.sum(1).clamp(min=1)
    assert kept.std() > 0.1  # per-sample rates, not one rate for the batch
