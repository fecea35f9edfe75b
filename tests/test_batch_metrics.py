"""The batched metrics equal `compute_metrics` row by row, degenerate rows included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import METRICS, compute_metrics
from harness.statistics.batch_metrics import compute_metrics_batch


def _rows(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if kind == "binary":
        truths = rng.integers(0, 2, size=(6, 40)).astype(float)
        preds = np.clip(truths * 0.4 + rng.random((6, 40)) * 0.6, 0, 1).round(2)  # ties
        preds[1] = 0.5  # constant predictions: every sample class 1, AUC 0.5
        truths[2] = 0.0  # one class only: AUC undefined
        preds[3] = truths[3]  # perfect
        preds[4] = 1 - truths[4]  # every class wrong
        return preds, truths
    bound = 3.0 if kind == "mosi" else 1.0
    n = 40
    truths = np.round(rng.uniform(-bound, bound, size=(6, n)) * 3) / 3  # ties and exact zeros
    preds = truths + rng.normal(0, 0.6 * bound, size=(6, n))
    preds[1] = 0.5  # constant predictions: Pearson undefined
    truths[2] = 0.0  # every truth 0: the non-0 metrics undefined
    preds[3] = truths[3]  # perfect
    preds[4] = -truths[4]  # every sign wrong
    truths[5, :] = np.where(np.arange(n) % 2 == 0, 0.1, -0.1)  # SIMS bin edges
    return preds, truths


@pytest.mark.parametrize("kind", sorted(METRICS))
def test_batch_equals_row_by_row(kind: str) -> None:
    preds, truths = _rows(kind, np.random.default_rng(0))
    batch = compute_metrics_batch(kind, preds, truths)
    assert list(batch) == list(METRICS[kind])
    for r in range(preds.shape[0]):
        single = compute_metrics(kind, preds[r], truths[r])
        for name, value in single.items():
            got = float(batch[name][r])
            if math.isnan(value):
                assert math.isnan(got), (kind, r, name)
            else:
                assert got == pytest.approx(value, rel=1e-12, abs=1e-12), (kind, r, name)


def test_batch_rejects_bad_shapes_and_non_finite_values() -> None:
    with pytest.raises(ValueError, match=r"\(R, N\) arrays of one shape"):
        compute_metrics_batch("mosi", np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="finite"):
        compute_metrics_batch("mosi", np.full((1, 3), np.nan), np.zeros((1, 3)))
