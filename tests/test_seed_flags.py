"""The flagged-seed rule (harness/statistics/seed_flags.py) on hand-made scores and predictions,
and how comparison frames and tables carry the flags."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.config.sections import CompareConfig
from harness.reports.comparison_files import frame_to_csv, read_comparison_csv
from harness.reports.tables import render_latex, render_markdown
from harness.statistics.comparison import TestPredictions, compare_values
from harness.statistics.seed_flags import constant_flag, flag_seeds, outlier_flags

SEEDS = (1111, 1112, 1113, 1114, 1115)


def _scores(mae: list[float], corr: list[float]) -> dict[int, dict[str, float]]:
    return {s: {"mae": m, "corr": c} for s, m, c in zip(SEEDS, mae, corr, strict=True)}


def test_constant_flag_fires_below_the_ratio_only():
    truths = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # std sqrt(2) = 1.4142
    assert constant_flag(np.zeros(5), truths, 0.05) is not None
    unit = np.array([-1.0, 1.0, -1.0, 1.0, 0.0]) / np.std([-1.0, 1.0, -1.0, 1.0, 0.0])
    low, high = 0.06 * unit, 0.08 * unit  # std 0.06 = 4.2% of 1.4142, 0.08 = 5.7%
    reason = constant_flag(low, truths, 0.05)
    assert reason is not None and "4.2% of the test truths' 1.4142" in reason
    assert "below 5%" in reason
    assert constant_flag(high, truths, 0.05) is None
    assert constant_flag(high, truths, 0.06) is not None
    assert constant_flag(np.zeros(5), np.ones(5), 0.05) is None  # constant truths: no rule


def test_outlier_rule_is_the_leave_one_out_prediction_interval():
    others = np.array([0.744, 0.751, 0.747, 0.748])
    # by hand: t_{0.9995, 3} * sd(others) * sqrt(1 + 1/4) is the half width
    half = scipy_stats.t.ppf(0.9995, 3) * np.std(others, ddof=1) * math.sqrt(1.25)
    assert half == pytest.approx(12.924 * 0.0028868 * 1.1180, rel=1e-3)
    inside = np.append(others, others.mean() + 0.9 * half)
    outside = np.append(others, others.mean() + 1.1 * half)
    assert outlier_flags(inside, 0.999) == []
    found = outlier_flags(outside, 0.999)
    assert [i for i, _, _ in found] == [4]
    assert found[0][2] == pytest.approx(others.mean())
    assert outlier_flags(np.array([0.1, 0.2, 9.0]), 0.999) == []  # fewer than 4 seeds
    assert outlier_flags(np.array([0.1, 0.2, 0.3, math.nan, 9.0]), 0.999) == []


def test_the_default_runs_lmf_collapse_is_flagged_and_fsrf_spread_is_not():
    """LMF seed 1115 of the default run (chance accuracy, Corr about 0) and FSRF's wide but
    unimodal spread, as recorded on 2026-12-03 (AMD EPYC)."""
    scores = {
        "lmf": _scores([0.994, 1.005, 1.032, 0.986, 1.641], [0.744, 0.751, 0.747, 0.748, -0.022]),
        "fsrf": _scores([1.264, 1.638, 1.469, 1.187, 1.637], [0.541, 0.141, 0.501, 0.624, 0.187]),
        "misa": _scores([1.125, 1.176, 1.172, 1.119, 1.157], [0.670, 0.648, 0.649, 0.664, 0.653]),
    }
    flags = flag_seeds(scores, None, None)
    assert [(f.method, f.seed, f.rule) for f in flags] == [("lmf", 1115, "outlier")]
    assert "MAE 1.641 lies outside the 99.9% prediction interval" in flags[0].reason


def test_constant_predictions_take_precedence_and_are_named():
    rng = np.random.default_rng(0)
    truths = rng.normal(size=50)
    predictions = {"lmf": {s: truths + rng.normal(scale=0.3, size=50) for s in SEEDS}}
    predictions["lmf"][1115] = np.full(50, 0.1)
    scores = {
        "lmf": _scores([0.994, 1.005, 1.032, 0.986, 1.641], [0.744, 0.751, 0.747, 0.748, -0.022])
    }
    flags = flag_seeds(scores, predictions, truths)
    assert [(f.seed, f.rule) for f in flags] == [(1115, "constant")]
    assert flags[0].reason.startswith("predictions nearly constant (std 0.0000, 0.0%")


def _frame_with_a_flag():
    scores = {
        "lmf": _scores([0.994, 1.005, 1.032, 0.986, 1.641], [0.744, 0.751, 0.747, 0.748, -0.022]),
        "tfn": _scores([0.90, 0.91, 0.92, 0.89, 0.90], [0.78, 0.77, 0.79, 0.78, 0.77]),
    }
    flags = flag_seeds(scores, None, None)
    settings = CompareConfig(ci_resamples=200, aso=False)
    return compare_values("synth", scores, ("mae", "corr"), settings, None, flags)


def test_frame_keeps_flagged_seeds_in_the_statistics_and_adds_the_mean_without():
    frame = _frame_with_a_flag()
    lmf = frame[(frame["method"] == "lmf") & (frame["metric"] == "mae")].iloc[0]
    assert lmf["flagged_seeds"] == [1115]
    assert lmf["mean"] == pytest.approx(np.mean([0.994, 1.005, 1.032, 0.986, 1.641]))
    assert lmf["mean_unflagged"] == pytest.approx(np.mean([0.994, 1.005, 1.032, 0.986]))
    assert lmf["std_unflagged"] == pytest.approx(np.std([0.994, 1.005, 1.032, 0.986], ddof=1))
    tfn = frame[frame["method"] == "tfn"].iloc[0]
    assert tfn["flagged_seeds"] == [] and tfn["mean_unflagged"] == tfn["mean"]


def test_tables_mark_the_method_state_the_rule_and_round_trip_the_flags(tmp_path):
    frame = _frame_with_a_flag()
    markdown = render_markdown(frame)
    assert "1.1316 ± 0.2853 △" in markdown  # every seed, marked
    assert "lmf seed 1115: MAE 1.641 lies outside" in markdown
    assert "1.0042 ± 0.0201 (4 seeds)" in markdown  # without the flagged seed
    assert "outside the flag_outlier_level prediction interval" in markdown
    latex = render_latex(frame)
    assert r"$^{\triangle}$" in latex and "lmf seed 1115" in latex
    path = tmp_path / "synth.csv"
    path.write_text(frame_to_csv(frame))
    back = read_comparison_csv(path)
    assert back["flagged_seeds"].tolist() == frame["flagged_seeds"].tolist()
    assert back["flag_reasons"].tolist() == frame["flag_reasons"].tolist()


def test_compare_dataset_flags_from_predictions():
    truths = np.linspace(-3, 3, 40)
    preds = TestPredictions("mosi", truths, {"a": {s: truths * 0.9 for s in SEEDS}})
    preds.by_method["a"][1113] = np.full(40, 0.05)
    scores = {"a": _scores([0.3, 0.31, 1.5, 0.3, 0.29], [0.99, 0.99, math.nan, 0.99, 0.99])}
    flags = flag_seeds(scores, preds.by_method, preds.truths)
    assert [(f.seed, f.rule) for f in flags] == [(1113, "constant")]
