"""Seeded resampling statistics on small arrays whose answers can be checked by hand: ties,
identical methods (no significance), a clearly better method (significance), too few values (a
clear message), and the same numbers for the same seed."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from harness.metrics import METRICS, compute_metrics
from harness.statistics.resampling import (
    ASO_THRESHOLD,
    InsufficientDataError,
    aso_epsilon,
    bootstrap_ci,
    paired_bootstrap_test,
    seed_averaged_bootstrap_test,
)


def _mae(predictions, truths) -> float:
    return float(np.mean(np.abs(predictions - truths)))


def test_bootstrap_ci_by_hand_and_reproducible() -> None:
    ci = bootstrap_ci(np.array([1.0, 3.0]), seed=0, n_resamples=20_000)
    # resampled means are 1, 2, 3 with probabilities 1/4, 1/2, 1/4: the 95% interval is [1, 3]
    assert (ci.mean, ci.low, ci.high) == (2.0, 1.0, 3.0)
    values = np.array([0.78, 0.80, 0.79, 0.81, 0.77])
    first, again = bootstrap_ci(values, seed=5), bootstrap_ci(values, seed=5)
    assert first == again and first.low < first.mean < first.high
    assert values.min() <= first.low and first.high <= values.max()
    tied = bootstrap_ci(np.full(5, 0.7), seed=1)  # ties: the degenerate interval
    assert tied.low == pytest.approx(0.7) and tied.high == pytest.approx(0.7)
    assert math.isnan(bootstrap_ci(np.array([1.0, math.nan]), seed=0).low)


def test_bootstrap_ci_with_one_seed_is_a_clear_error() -> None:
    with pytest.raises(InsufficientDataError, match="got 1 value.*needs at least 2"):
        bootstrap_ci(np.array([0.8]), seed=0)


def test_aso_identical_methods_are_not_ordered_and_a_clearly_better_one_is() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0.80, 0.01, size=5)
    b = a - 0.05  # worse on every seed by far more than the spread
    assert aso_epsilon(a, b, seed=1) < ASO_THRESHOLD  # A almost stochastically dominates B
    assert aso_epsilon(b, a, seed=1) > 1 - ASO_THRESHOLD
    assert aso_epsilon(a, a.copy(), seed=1) == 1.0  # identical: never "A better"
    alike = aso_epsilon(a, rng.permutation(a) + rng.normal(0, 1e-4, size=5), seed=1)
    assert ASO_THRESHOLD < alike < 1 - ASO_THRESHOLD
    assert aso_epsilon(a, b, seed=1) == aso_epsilon(a, b, seed=1)  # seeded


def test_aso_reads_lower_is_better_metrics_the_right_way_round() -> None:
    low_mae = np.array([0.80, 0.81, 0.79, 0.82, 0.80])
    high_mae = low_mae + 0.2
    assert aso_epsilon(low_mae, high_mae, seed=0, higher_is_better=False) < ASO_THRESHOLD
    with pytest.raises(InsufficientDataError, match="scores_b has 1 score"):
        aso_epsilon(low_mae, high_mae[:1], seed=0)


def test_paired_bootstrap_over_test_samples() -> None:
    rng = np.random.default_rng(3)
    truths = rng.uniform(-3, 3, size=300)
    good = truths + rng.normal(0, 0.3, size=300)
    bad = truths + rng.normal(0, 1.5, size=300)
    difference, p = paired_bootstrap_test(good, bad, truths, _mae, seed=0, n_resamples=500)
    assert difference == pytest.approx(_mae(good, truths) - _mae(bad, truths))
    assert difference < 0 and p < 0.01
    assert paired_bootstrap_test(good, good.copy(), truths, _mae, seed=0) == (0.0, 1.0)
    noisy = good + rng.normal(0, 0.01, size=300)  # a negligible change: no significance
    assert paired_bootstrap_test(good, noisy, truths, _mae, seed=0, n_resamples=500)[1] > 0.05
    again = paired_bootstrap_test(good, bad, truths, _mae, seed=0, n_resamples=500)
    assert again == (difference, p)


def test_paired_bootstrap_takes_any_metric_of_the_harness() -> None:
    rng = np.random.default_rng(4)
    truths = rng.uniform(-3, 3, size=200)
    a, b = truths + rng.normal(0, 0.5, 200), truths + rng.normal(0, 2.0, 200)

    def acc2(predictions, labels):
        return compute_metrics("mosi", predictions, labels)["acc2_has0"]

    difference, p = paired_bootstrap_test(a, b, truths, acc2, seed=0, n_resamples=300)
    assert difference > 0 and p < 0.05
    with pytest.raises(InsufficientDataError, match="got 1 test sample"):
        paired_bootstrap_test(a[:1], b[:1], truths[:1], acc2, seed=0)


def test_seed_averaged_bootstrap_tests_every_metric_on_the_table_means() -> None:
    rng = np.random.default_rng(5)
    truths = rng.uniform(-3, 3, size=250)
    good = truths[None, :] + rng.normal(0, 0.4, size=(3, 250))  # 3 seeds
    bad = truths[None, :] + rng.normal(0, 1.6, size=(4, 250))  # 4 seeds: rows need not pair
    results = seed_averaged_bootstrap_test("mosi", good, bad, truths, seed=0, n_resamples=400)
    assert list(results) == list(METRICS["mosi"])
    for metric, (difference, p) in results.items():
        mean_good = np.mean([compute_metrics("mosi", row, truths)[metric] for row in good])
        mean_bad = np.mean([compute_metrics("mosi", row, truths)[metric] for row in bad])
        assert difference == pytest.approx(mean_good - mean_bad, rel=1e-9)
        assert p < 0.01, metric  # clearly better on every metric
    same = seed_averaged_bootstrap_test("mosi", good, good.copy(), truths, seed=0)
    assert all(value == (0.0, 1.0) for value in same.values())  # identical methods
    slightly = good + rng.normal(0, 0.01, size=good.shape)
    alike = seed_averaged_bootstrap_test("mosi", good, slightly, truths, seed=0, n_resamples=400)
    assert alike["mae"][1] > 0.05 and alike["corr"][1] > 0.05
    again = seed_averaged_bootstrap_test("mosi", good, bad, truths, seed=0, n_resamples=400)
    assert again == results  # seeded
    with pytest.raises(InsufficientDataError, match="got 1 test sample"):
        seed_averaged_bootstrap_test("mosi", good[:, :1], bad[:, :1], truths[:1], seed=0)


def test_aso_equals_deepsig_on_its_own_examples() -> None:
    """deepsig's README example (a model vs a baseline over 5 seeds), unequal sizes, ties and
    identical scores, with and without the Bonferroni correction: the same epsilon_min, bit
    for bit, as the reference implementation."""
    deepsig = pytest.importorskip("deepsig")
    rng = np.random.default_rng(0)
    cases = [
        (rng.normal(0.9, 0.8, 5), rng.normal(0, 1, 5)),  # deepsig README: loc 0.9 vs loc 0
        (rng.normal(0, 1, 3), rng.normal(0.2, 1, 7)),
        (np.array([0.8, 0.8, 0.81, 0.79, 0.8]), np.array([0.8, 0.8, 0.81, 0.79, 0.8])),
        (np.array([0.81, 0.82, 0.8, 0.83, 0.81]), np.array([0.8, 0.8, 0.81, 0.79, 0.8])),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deepsig warns on identical distributions
        for a, b in cases:
            for comparisons in (1, 6):
                ours = aso_epsilon(a, b, seed=3, num_comparisons=comparisons, n_bootstrap=200)
                reference = deepsig.aso(
                    a.tolist(), b.tolist(), seed=3, num_comparisons=comparisons,
                    num_bootstrap_iterations=200, show_progress=False,
                )  # fmt: skip
                assert ours == float(reference)
