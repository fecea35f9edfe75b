"""Metrics: hand-checked cases and parity with MMSA's metricsTop.py algorithm."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from harness.data.spec import REGRESSION_KINDS
from harness.errors import UnknownNameError
from harness.metrics import (
    METRICS,
    best_value,
    compute_metrics,
    is_better,
    metric_info,
    metric_label,
)


def test_keys_follow_metrics_order() -> None:
    for kind in REGRESSION_KINDS:
        values = compute_metrics(kind, np.array([0.3, -0.2, 0.9]), np.array([0.5, -0.6, 0.2]))
        assert tuple(values) == METRICS[kind]


def test_truth_exactly_zero_splits_has0_and_non0() -> None:
    preds = np.array([0.5, -0.5, 1.0, -1.0])
    truths = np.array([0.0, 1.0, 2.0, -2.0])
    m = compute_metrics("mosi", preds, truths)
    # has-0: pred >= 0 -> [T, F, T, F]; truth >= 0 -> [T, T, T, F]
    assert m["acc2_has0"] == pytest.approx(3 / 4)
    # weighted F1 by hand: class T (support 3): P = 1, R = 2/3, F1 = 0.8;
    # class F (support 1): P = 1/2, R = 1, F1 = 2/3 -> (3 * 0.8 + 2/3) / 4 = 23/30
    assert m["f1_has0"] == pytest.approx(23 / 30)
    # non-0: the first sample is dropped; pred > 0 -> [F, T, F]; truth > 0 -> [T, T, F]
    assert m["acc2_non0"] == pytest.approx(2 / 3)


def test_prediction_zero_counts_as_positive_for_has0_only() -> None:
    m = compute_metrics("mosi", np.array([0.0, 0.0]), np.array([1.0, 2.0]))
    assert m["acc2_has0"] == 1.0
    assert m["acc2_non0"] == 0.0


def test_weighted_f1_unbalanced_by_hand() -> None:
    # truth: 5 positive, 1 negative; prediction says positive everywhere but one positive.
    truths = np.array([1.0, 1.0, 1.0, 1.0, 1.0, -1.0])
    preds = np.array([1.0, 1.0, 1.0, 1.0, -1.0, 1.0])
    # positive (support 5): TP 4, FP 1, FN 1 -> F1 = 0.8; negative (support 1): TP 0 -> F1 = 0
    m = compute_metrics("mosi", preds, truths)
    assert m["f1_non0"] == pytest.approx((5 * 0.8 + 1 * 0.0) / 6)
    assert m["acc2_non0"] == pytest.approx(4 / 6)


def test_rounding_halves_to_even() -> None:
    preds = np.array([2.5, -0.5, 0.5, 1.5, 3.7, 2.4])
    truths = np.array([2.0, 0.0, 1.0, 2.0, 3.0, 3.0])
    m = compute_metrics("mosi", preds, truths)
    # acc7: 2.5->2 ok, -0.5->0 ok, 0.5->0 vs 1 no, 1.5->2 ok, 3.7->3 ok, 2.4->2 vs 3 no
    assert m["acc7"] == pytest.approx(4 / 6)
    # acc5 clips to [-2, 2]: 2.5->2 ok, -0.5 ok, 0.5 no, 1.5 ok, 3.7->2 vs 2 ok, 2.4->2 vs 2 ok
    assert m["acc5"] == pytest.approx(5 / 6)


def test_mae_and_corr() -> None:
    preds = np.array([1.0, 2.0, 3.0])
    truths = np.array([1.5, 2.0, 2.0])
    m = compute_metrics("mosi", preds, truths)
    assert m["mae"] == pytest.approx(0.5)
    assert m["corr"] == pytest.approx(np.corrcoef(preds, truths)[0, 1])


def test_constant_predictions_give_nan_corr_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mosi = compute_metrics("mosi", np.full(4, 0.7), np.array([-1.0, 0.0, 1.0, 2.0]))
        sims = compute_metrics("sims", np.array([0.1, 0.2, 0.3]), np.full(3, 0.5))
    assert math.isnan(mosi["corr"])
    assert math.isnan(sims["corr"])
    assert mosi["mae"] == pytest.approx(np.mean(np.abs(0.7 - np.array([-1, 0, 1, 2]))))


def test_all_truths_zero_gives_nan_non0() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics("mosi", np.array([0.5, -0.5, 0.2]), np.zeros(3))
    assert math.isnan(m["acc2_non0"])
    assert math.isnan(m["f1_non0"])
    assert m["acc2_has0"] == pytest.approx(2 / 3)


def test_sims_bin_edges_are_upper_inclusive() -> None:
    truths = np.array([-1.0, -0.7, -0.1, 0.0, 0.1, 0.7, 1.0])
    # each prediction sits just inside the same bin as its truth, on the lower side
    same_bin = np.array([-0.95, -0.75, -0.65, -0.05, 0.05, 0.65, 0.75])
    m = compute_metrics("sims", same_bin, truths)
    assert m["acc5"] == 1.0
    assert m["acc3"] == 1.0
    assert m["acc2"] == 1.0
    # just above an edge is the next class
    above = np.array([-0.99, -0.69, -0.09, 0.01, 0.11, 0.71, 1.0])
    m = compute_metrics("sims", above, truths)
    # acc5 truth classes [0, 0, 1, 2, 2, 3, 4]; predictions [0, 1, 2, 2, 3, 4, 4]
    assert m["acc5"] == pytest.approx(3 / 7)
    # acc3 truth classes [0, 0, 0, 1, 1, 2, 2]; predictions [0, 0, 1, 1, 2, 2, 2]
    assert m["acc3"] == pytest.approx(5 / 7)
    # acc2: 0.0 is in [-1, 0], 0.01 is not
    assert m["acc2"] == pytest.approx(6 / 7)


def test_sims_float32_labels_on_edges_follow_mmsa() -> None:
    # MMSA compares float32 tensors with Python floats in float32: float32(0.1) <= 0.1.
    truths = np.array([0.1, 0.7, -0.1], dtype=np.float32)
    preds = np.array([0.05, 0.5, -0.5], dtype=np.float32)
    m = compute_metrics("sims", preds, truths)
    assert m["acc3"] == 1.0
    assert m["acc5"] == 1.0


def test_sims_clips_before_every_metric() -> None:
    m = compute_metrics("sims", np.array([1.5, -3.0, 0.5]), np.array([1.0, -1.0, 0.0]))
    assert m["mae"] == pytest.approx(0.5 / 3)
    assert m["acc5"] == pytest.approx(2 / 3)


def _mmsa_mosi(preds: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """MMSA's __eval_mosei_regression, unrounded, written out independently."""
    non_zeros = np.array([i for i, e in enumerate(truths) if e != 0])
    acc = lambda p, t: float(np.sum(np.round(p) == np.round(t)) / float(len(t)))  # noqa: E731
    return {
        "acc2_has0": accuracy_score(preds >= 0, truths >= 0),
        "f1_has0": f1_score(truths >= 0, preds >= 0, average="weighted"),
        "acc2_non0": accuracy_score(preds[non_zeros] > 0, truths[non_zeros] > 0),
        "f1_non0": f1_score(truths[non_zeros] > 0, preds[non_zeros] > 0, average="weighted"),
        "acc5": acc(np.clip(preds, -2.0, 2.0), np.clip(truths, -2.0, 2.0)),
        "acc7": acc(np.clip(preds, -3.0, 3.0), np.clip(truths, -3.0, 3.0)),
        "mae": float(np.mean(np.absolute(preds - truths))),
        "corr": float(np.corrcoef(preds, truths)[0][1]),
    }


def _mmsa_sims(preds: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """MMSA's __eval_sims_regression, written out independently (loop over bins)."""
    preds, truths = np.clip(preds, -1.0, 1.0), np.clip(truths, -1.0, 1.0)

    def bins(x: np.ndarray, edges: list[float]) -> np.ndarray:
        out = x.copy()
        for i in range(len(edges) - 1):
            out[np.logical_and(x > edges[i], x <= edges[i + 1])] = i
        return out

    e2, e3 = [-1.01, 0.0, 1.01], [-1.01, -0.1, 0.1, 1.01]
    e5 = [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]
    acc = lambda p, t: float(np.sum(np.round(p) == np.round(t)) / float(len(t)))  # noqa: E731
    return {
        "acc2": acc(bins(preds, e2), bins(truths, e2)),
        "acc3": acc(bins(preds, e3), bins(truths, e3)),
        "acc5": acc(bins(preds, e5), bins(truths, e5)),
        "f1": f1_score(bins(truths, e2), bins(preds, e2), average="weighted"),
        "mae": float(np.mean(np.absolute(preds - truths))),
        "corr": float(np.corrcoef(preds, truths)[0][1]),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_mmsa_algorithm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # labels on MOSI's grid (averages of annotators: multiples of 1/3 and halves, zeros included)
    mosi_truth = rng.choice(np.arange(-9, 10) / 3.0, size=300).astype(np.float32)
    mosi_truth[:20] = 0.0
    mosi_pred = (mosi_truth + rng.normal(0, 1.0, 300)).astype(np.float32)
    mosi_pred[20:30] = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.0, 3.5, -3.5, 0.0])
    ours = compute_metrics("mosi", mosi_pred, mosi_truth)
    for name, value in _mmsa_mosi(mosi_pred, mosi_truth).items():
        assert ours[name] == pytest.approx(value, rel=1e-6), name
    # SIMS labels are multiples of 0.1 (means of five annotators), so they hit the bin edges
    sims_truth = rng.choice(np.arange(-10, 11) / 10.0, size=300).astype(np.float32)
    sims_pred = rng.choice(np.arange(-12, 13) / 10.0, size=300).astype(np.float32)
    ours = compute_metrics("sims", sims_pred, sims_truth)
    for name, value in _mmsa_sims(sims_pred, sims_truth).items():
        assert ours[name] == pytest.approx(value, rel=1e-6), name


@pytest.mark.parametrize(
    ("preds", "truths", "message"),
    [
        (np.zeros(3), np.zeros(4), "differ in length"),
        (np.zeros((3, 1)), np.zeros((3, 1)), "must be 1-D"),
        (np.zeros(0), np.zeros(0), "empty"),
        (np.array([0.0, np.nan]), np.zeros(2), "NaN/inf"),
        (np.zeros(2), np.array([np.inf, 0.0]), "NaN/inf"),
    ],
)
def test_bad_input_raises_one_line(preds: np.ndarray, truths: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        compute_metrics("mosi", preds, truths)
    assert "\n" not in str(info.value)


def test_unknown_names() -> None:
    with pytest.raises(UnknownNameError, match="valid kinds: binary, mosei, mosi, sims"):
        compute_metrics("iemocap", np.zeros(2), np.zeros(2))


def test_mosei_kind_is_scored_as_mosi() -> None:
    preds, truths = np.array([-2.4, 0.3, 1.6, -0.2]), np.array([-3.0, 0.0, 2.0, 0.4])
    assert compute_metrics("mosei", preds, truths) == compute_metrics("mosi", preds, truths)


def test_unknown_metric_name() -> None:
    with pytest.raises(UnknownNameError, match="valid names: .*acc2_has0"):
        metric_info("acuracy")


def test_metric_info_directions() -> None:
    assert metric_info("mae") == metric_info("mae").__class__("mae", False, False, "MAE")
    assert metric_info("acc2_has0").label == "Acc-2 (has-0)"
    assert metric_label("acc2_non0", direction=True) == "Acc-2 (non-0) (↑ higher is better)"
    assert metric_label("mae", direction=True) == "MAE (↓ lower is better)"
    assert metric_info("corr").higher_is_better and not metric_info("corr").percent
    assert metric_info("acc7").higher_is_better and metric_info("acc7").percent
    assert metric_info("f1").percent


def test_is_better_and_best_value() -> None:
    assert is_better("mae", 0.7, 0.8) and not is_better("mae", 0.8, 0.7)
    assert is_better("acc7", 0.5, 0.4) and not is_better("acc7", 0.4, 0.4)
    assert not is_better("acc7", math.nan, 0.1) and is_better("acc7", 0.1, math.nan)
    assert best_value("mae", [0.9, math.nan, 0.7, 0.8]) == 0.7
    assert best_value("corr", [0.1, 0.6, math.nan]) == 0.6
    assert math.isnan(best_value("corr", [math.nan, math.nan]))
    assert math.isnan(best_value("corr", []))


def test_classes_are_assigned_in_float32_whatever_the_dtype() -> None:
    rng = np.random.default_rng(0)
    truths = rng.choice(np.arange(-10, 11) / 10.0, size=200).astype(np.float32)
    preds = rng.choice(np.arange(-12, 13) / 10.0, size=200).astype(np.float32)
    for kind in REGRESSION_KINDS:  # the binary kind: tests/test_metrics_binary.py
        as32 = compute_metrics(kind, preds, truths)
        as64 = compute_metrics(kind, preds.astype(np.float64), truths.astype(np.float64))
        assert as32 == pytest.approx(as64, rel=1e-12)
    # float64 literals on the edges behave like their float32 counterparts
    m = compute_metrics("sims", np.array([0.05, 0.5]), np.array([0.1, 0.7]))
    assert m["acc3"] == 1.0 and m["acc5"] == 1.0


def test_integer_input_is_accepted_and_text_rejected() -> None:
    assert compute_metrics("mosi", np.array([1, -1]), np.array([1, -1]))["acc7"] == 1.0
    with pytest.raises(ValueError, match="must be numeric"):
        compute_metrics("mosi", np.array(["a", "b"]), np.zeros(2))


@pytest.mark.parametrize("seed", range(6))
def test_weighted_f1_equals_sklearn_including_degenerate_cases(seed: int) -> None:
    from harness.metrics import _weighted_f1

    rng = np.random.default_rng(seed)
    cases = [
        (rng.integers(0, 2, 50).astype(bool), rng.integers(0, 2, 50).astype(bool)),
        (rng.integers(-1, 3, 40), rng.integers(0, 5, 40)),  # classes only one side has
        (np.ones(7, dtype=bool), np.zeros(7, dtype=bool)),  # never predicted / never true
        (np.ones(5, dtype=bool), np.ones(5, dtype=bool)),
        (np.array([0]), np.array([1])),
    ]
    for truth, pred in cases:
        expected = f1_score(truth, pred, average="weighted", zero_division=0)
        assert _weighted_f1(truth, pred) == pytest.approx(expected, abs=1e-12)
