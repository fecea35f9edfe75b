"""The binary (classification) kind's metrics: a hand-checked case, sklearn on random cases, the
vectorized resampling form row by row, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import METRICS, compute_metrics, metric_info
from harness.statistics.batch_metrics import compute_metrics_batch


def test_hand_checked_case():
    # truths 1 1 1 0 0; probabilities -> predicted 1 1 0 1 0 (0.5 counts as class 1)
    truths = np.array([1, 1, 1, 0, 0], dtype=float)
    probabilities = np.array([0.9, 0.5, 0.2, 0.6, 0.1])
    m = compute_metrics("binary", probabilities, truths)
    assert list(m) == list(METRICS["binary"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    # class 1: TP 2, FP 1, FN 1 -> P 2/3, R 2/3, F1 2/3 (support 3)
    # class 0: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 1/2 (support 2)
    assert m["precision"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2) / 5)
    assert m["recall"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2) / 5)
    assert m["f1_weighted"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2) / 5)
    # AUC: pairs (pos, neg) ranked right: 0.9>0.6, 0.9>0.1, 0.5<0.6, 0.5>0.1, 0.2<0.6, 0.2>0.1
    assert m["auc"] == pytest.approx(4 / 6)


def test_auc_counts_ties_as_half():
    m = compute_metrics("binary", np.array([0.7, 0.7, 0.2]), np.array([1.0, 0.0, 0.0]))
    assert m["auc"] == pytest.approx((0.5 + 1.0) / 2)


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    truths = rng.integers(0, 2, n).astype(float)
    probabilities = np.round(rng.random(n), 1)  # ties on purpose
    if seed == 0:
        probabilities = np.zeros(n)  # one class predicted: zero_division terms
    m = compute_metrics("binary", probabilities, truths)
    predicted = (probabilities >= 0.5).astype(int)
    kwargs = {"average": "weighted", "zero_division": 0}
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(truths, predicted))
    assert m["f1_weighted"] == pytest.approx(sk.f1_score(truths, predicted, **kwargs))
    assert m["precision"] == pytest.approx(sk.precision_score(truths, predicted, **kwargs))
    assert m["recall"] == pytest.approx(sk.recall_score(truths, predicted, **kwargs))
    if 0 < truths.sum() < n:
        assert m["auc"] == pytest.approx(sk.roc_auc_score(truths, probabilities))
    else:
        assert math.isnan(m["auc"])


def test_batch_form_matches_row_by_row():
    rng = np.random.default_rng(3)
    truths = rng.integers(0, 2, (7, 40)).astype(float)
    truths[0] = 1.0  # one class only: AUC NaN
    probabilities = np.round(rng.random((7, 40)), 2)
    batch = compute_metrics_batch("binary", probabilities, truths)
    for row in range(7):
        single = compute_metrics("binary", probabilities[row], truths[row])
        for name, value in single.items():
            if math.isnan(value):
                assert math.isnan(batch[name][row])
            else:
                assert batch[name][row] == pytest.approx(value, abs=1e-12)


def test_directions_and_display():
    for name in METRICS["binary"]:
        assert metric_info(name).higher_is_better
    assert metric_info("f1_weighted").percent and not metric_info("auc").percent


def test_truths_that_are_not_classes_are_refused():
    with pytest.raises(ValueError, match="binary truths must be 0 or 1, got 0.5"):
        compute_metrics("binary", np.array([0.2, 0.8]), np.array([0.5, 1.0]))
