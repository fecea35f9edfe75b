"""The comparison frame's resampling statistics on small hand-made inputs: bootstrap CIs, ASO
and the per-sample bootstrap against the best; ties, identical methods (no significance), a
clearly better method (significance in every test), a single seed (n/a and a sentence, not a
crash), and the same bytes for the same records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.config.sections import CompareConfig
from harness.metrics import METRICS, compute_metrics
from harness.reports.comparison_files import frame_to_csv
from harness.reports.tables import render_latex, render_markdown
from harness.statistics.comparison import TestPredictions, compare_values
from harness.statistics.resampling import bootstrap_ci

SEEDS = (1, 2, 3, 4, 5)
FAST = CompareConfig(ci_resamples=2000, aso_bootstrap=300, sample_resamples=300)


def _predictions(truths: np.ndarray, noise: float, seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s: truths + rng.normal(0, noise, truths.size) for s in SEEDS}


def _values(predictions: dict[str, dict[int, np.ndarray]], truths: np.ndarray) -> dict:
    return {
        method: {s: compute_metrics("mosi", p, truths) for s, p in seeds.items()}
        for method, seeds in predictions.items()
    }


@pytest.fixture(scope="module")
def clear_case():
    """ "good" predicts far better than "poor"; "twin" has exactly good's predictions."""
    truths = np.random.default_rng(0).uniform(-3, 3, 300)
    good = _predictions(truths, 0.4, 1)
    predictions = {"good": good, "poor": _predictions(truths, 1.8, 2), "twin": dict(good)}
    values = _values(predictions, truths)
    tests = TestPredictions("mosi", truths, predictions)
    return compare_values("synthetic", values, METRICS["mosi"], FAST, tests)


def _row(frame, method, metric):
    return frame[(frame["method"] == method) & (frame["metric"] == metric)].iloc[0]


def test_clearly_better_method_is_significant_in_every_test(clear_case) -> None:
    frame = clear_case
    for metric in ("acc2_has0", "mae", "corr"):
        poor = _row(frame, "poor", metric)
        assert poor["sig_ttest"] and poor["sig_sample"] and poor["aso_dominated"], metric
        assert poor["aso_epsilon"] < 0.2 and poor["p_sample_holm"] < 0.05
        assert poor["n_test_samples"] == 300
    # Wilcoxon with 5 seeds: p >= 0.0625 however clear the difference
    assert not frame["sig_wilcoxon"].any()


def test_identical_methods_are_never_significant(clear_case) -> None:
    frame = clear_case
    twin = frame[(frame["method"] == "twin") & ~frame["is_best"]]
    assert len(twin) == len(METRICS["mosi"])  # tie on every metric: "good" sorts first, is best
    assert frame[frame["method"] == "good"]["is_best"].all()
    assert (twin["p_sample"] == 1.0).all()
    assert (twin["difference"] == 0.0).all()
    assert not (twin["sig_ttest"] | twin["sig_sample"] | twin["aso_dominated"]).any()
    assert (twin["aso_epsilon"] >= 0.2).all()


def test_ci_is_the_seeded_bootstrap_of_the_seed_values(clear_case) -> None:
    row = _row(clear_case, "poor", "mae")
    expected = bootstrap_ci(np.array(row["values"]), FAST.seed, 0.95, FAST.ci_resamples)
    assert (row["ci_low"], row["ci_high"]) == (expected.low, expected.high)
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_ties_by_hand() -> None:
    """Three methods with the same values on every seed: the first name is best, nothing is
    significant, the differences are 0."""
    same = {s: {"mae": 0.5 + 0.01 * s} for s in SEEDS}
    frame = compare_values("ties", {"c": same, "a": same, "b": same}, ("mae",), FAST)
    assert frame[frame["is_best"]]["method"].tolist() == ["a"]
    others = frame[~frame["is_best"]]
    assert (others["difference"] == 0.0).all()
    assert not (others["sig_ttest"] | others["sig_wilcoxon"] | others["aso_dominated"]).any()


def test_one_seed_gives_na_and_a_sentence_not_a_crash() -> None:
    values = {
        "full": {s: {"mae": 0.5 + 0.01 * s} for s in SEEDS},
        "single": {1: {"mae": 0.9}},
    }
    frame = compare_values("few", values, ("mae",), FAST)
    single = _row(frame, "single", "mae")
    assert math.isnan(single["ci_low"]) and math.isnan(single["std"])
    assert math.isnan(single["p_ttest"]) and math.isnan(single["aso_epsilon"])
    assert not single["significant"]
    text = render_markdown(frame)
    assert "single: fewer than 2 seeds" in text and "need at least 2 seeds" in text
    assert "n/a" in text


def test_same_records_give_the_same_bytes(clear_case) -> None:
    again = compare_values(
        "synthetic",
        {m: {s: dict(zip(METRICS["mosi"], v, strict=True)) for s, v in zip(sd, vals, strict=True)}
         for m, sd, vals in _per_method(clear_case)},
        METRICS["mosi"],
        FAST,
        None,
    )  # fmt: skip
    first = compare_values("synthetic", _as_values(clear_case), METRICS["mosi"], FAST, None)
    assert frame_to_csv(first) == frame_to_csv(again)
    assert render_markdown(first) == render_markdown(again)
    assert render_latex(first) == render_latex(again)
    assert render_markdown(clear_case).count("†") > 1  # the per-sample test's marker is used
    assert "paired bootstrap over the 300 test samples" in render_markdown(clear_case)


def _per_method(frame):
    for method in frame["method"].unique():
        part = frame[frame["method"] == method]
        seeds = part.iloc[0]["seeds"]
        values = np.array([part[part["metric"] == m].iloc[0]["values"] for m in METRICS["mosi"]])
        yield method, seeds, values.T.tolist()


def _as_values(frame):
    return {
        m: {s: dict(zip(METRICS["mosi"], v, strict=True)) for s, v in zip(sd, vals, strict=True)}
        for m, sd, vals in _per_method(frame)
    }


def test_settings_reject_bad_levels() -> None:
    with pytest.raises(ValueError, match="alpha: expected a number between 0 and 1"):
        CompareConfig(alpha=1.5)
