"""The "beats the best simple baseline" marks: hand-made runs where one method clearly beats the
baselines and one does not, the tests and Holm family checked by hand, and the marks, legend and
summary in the rendered tables (none when no baseline is in the run)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from harness.config.sections import CompareConfig
from harness.metrics import METRICS, compute_metrics
from harness.records import RunResult
from harness.reports.comparison_files import frame_to_csv, read_comparison_csv
from harness.reports.tables import render_latex, render_markdown
from harness.statistics.baselines import BASELINE_COLUMNS, best_baseline
from harness.statistics.comparison import TestPredictions, compare_dataset
from harness.statistics.significance import holm

SEEDS = (1, 2, 3, 4, 5)
# prediction noise per method: "strong" far better than every baseline, "weak" between them
NOISE = {"strong": 0.1, "weak": 0.5, "ridge": 0.55, "text_only": 0.45}
BASELINES = ("ridge", "text_only", "late_transformer")  # late_transformer is not in the run
SETTINGS = CompareConfig(ci_resamples=200, aso=False, simple_baselines=BASELINES)


def _runs() -> tuple[list[RunResult], TestPredictions]:
    """Five seeds per method on one SIMS test set of 200 samples; each record's metrics are
    computed from its own predictions, so the seed tests and the sample test agree."""
    rng = np.random.default_rng(0)
    truths = rng.uniform(-1, 1, 200)
    records, by_method = [], {}
    for method, noise in NOISE.items():
        for seed in SEEDS:
            prediction = np.clip(truths + rng.normal(0, noise, truths.size), -1, 1)
            by_method.setdefault(method, {})[seed] = prediction
            records.append(_record(method, seed, compute_metrics("sims", prediction, truths)))
    return records, TestPredictions("sims", truths, by_method)


def _record(method: str, seed: int, metrics: dict[str, float]) -> RunResult:
    return RunResult(
        method=method, dataset="d", seed=seed, split="test", metrics=metrics, valid_metrics={},
        hparams={}, config_hash="c", data_hash="d", git_commit="g", package_versions={},
        wall_time_s=1.0, best_epoch=1, epochs_run=2, device="cpu",
    )  # fmt: skip


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    records, predictions = _runs()
    return compare_dataset(records, "sims", SETTINGS, predictions)


def _row(frame: pd.DataFrame, method: str, metric: str) -> pd.Series:
    [index] = frame.index[(frame["method"] == method) & (frame["metric"] == metric)]
    return frame.loc[index]


def test_best_baseline_by_hand() -> None:
    means = {"ridge": 0.3, "text_only": 0.2, "strong": 0.1, "nan_base": math.nan}
    assert best_baseline("mae", means, ("ridge", "text_only", "absent")) == "text_only"
    assert best_baseline("corr", means, ("ridge", "text_only")) == "ridge"  # higher is better
    assert best_baseline("mae", {"b": 0.2, "a": 0.2}, ("a", "b")) == "a"  # tie: name order
    assert best_baseline("mae", means, ("nan_base", "absent")) is None


def test_the_strong_method_clears_the_bar_and_the_weak_one_does_not(frame) -> None:
    assert set(BASELINE_COLUMNS) <= set(frame.columns)
    for metric in METRICS["sims"]:
        strong, weak = _row(frame, "strong", metric), _row(frame, "weak", metric)
        assert strong["baseline"] == weak["baseline"] == "text_only"  # the best of the two
        assert strong["beats_baseline"] and not weak["beats_baseline"], metric
        for base in ("ridge", "text_only"):
            row = _row(frame, base, metric)
            assert row["is_baseline"] and row["baseline"] == "" and not row["beats_baseline"]
            assert math.isnan(row["p_baseline_ttest"])
    assert set(frame["n_baseline_comparisons"]) == {12}  # 2 methods x 6 metrics


def test_the_seed_test_and_holm_by_hand(frame) -> None:
    records, _ = _runs()
    values: dict[tuple[str, str], list[float]] = {}  # (method, metric) -> values in seed order
    for r in records:
        for m in METRICS["sims"]:
            values.setdefault((r.method, m), []).append(r.metrics[m])
    tested = frame[frame["baseline"] != ""]
    raw = [
        scipy_stats.ttest_rel(values[(row.method, row.metric)],
                              values[("text_only", row.metric)]).pvalue
        for row in tested.itertuples()
    ]  # fmt: skip
    np.testing.assert_allclose(tested["p_baseline_ttest"], raw)
    np.testing.assert_allclose(tested["p_baseline_ttest_holm"], holm(np.array(raw)))
    np.testing.assert_allclose(
        tested["p_baseline_sample_holm"], holm(tested["p_baseline_sample"].to_numpy())
    )
    mae = _row(frame, "strong", "mae")
    expected = np.mean(values[("strong", "mae")]) - np.mean(values[("text_only", "mae")])
    assert mae["baseline_difference"] == pytest.approx(expected) and expected < 0


def test_a_worse_method_is_never_marked_even_when_significant(frame) -> None:
    # "weak" is significantly *worse* than text_only on MAE on the test set: no mark
    mae = _row(frame, "weak", "mae")
    assert mae["baseline_difference"] > 0 and mae["p_baseline_sample_holm"] < 0.05
    assert not mae["beats_baseline"]


def test_baselines_leave_the_rest_of_the_table_unchanged(frame) -> None:
    records, predictions = _runs()
    plain = compare_dataset(
        records, "sims", CompareConfig(ci_resamples=200, aso=False, simple_baselines=()),
        predictions,
    )  # fmt: skip
    rest = [c for c in frame.columns if c not in BASELINE_COLUMNS]
    pd.testing.assert_frame_equal(frame[rest], plain[rest])
    assert not plain["is_baseline"].any() and not plain["beats_baseline"].any()
    assert (plain["baseline"] == "").all() and set(plain["n_baseline_comparisons"]) == {0}


def test_markdown_marks_names_the_baseline_and_counts_the_metrics(frame) -> None:
    text = render_markdown(frame)
    table = text.split("\n\n")[1]
    strong_line = next(line for line in table.splitlines() if line.startswith("| strong"))
    weak_line = next(line for line in table.splitlines() if line.startswith("| weak"))
    assert strong_line.count("▲") == 6 and "▲" not in weak_line
    assert "▲ = better than the best simple baseline on that metric" in text
    assert "Holm across the 12 comparisons with the best baseline" in text
    assert "Best simple baseline: text_only on every metric." in text
    assert "Clears the bar: strong on 6 of 6 metrics, weak on 0 of 6 metrics." in text
    assert "Tests against the best simple baseline" in text
    latex = render_latex(frame)
    assert "$^{+}$ = better than the best simple baseline" in latex
    assert r"\textbf{96.90 $\pm$ 0.65}$^{+}$" in latex  # strong's Acc-2, best and marked


def test_the_best_baseline_is_named_per_metric_when_it_differs() -> None:
    records, predictions = _runs()
    # ridge: a better Corr than text_only on every seed (only Corr changes)
    changed = [
        _record(r.method, r.seed, {**r.metrics, "corr": 0.99}) if r.method == "ridge" else r
        for r in records
    ]
    frame = compare_dataset(changed, "sims", SETTINGS, predictions)
    assert _row(frame, "strong", "corr")["baseline"] == "ridge"
    text = render_markdown(frame)
    assert "Best simple baseline per metric: Acc-2: text_only; " in text
    assert "Corr: ridge." in text


def test_no_baseline_in_the_run_gives_no_marks_and_no_legend_line() -> None:
    records, predictions = _runs()
    others = [r for r in records if r.method in ("strong", "weak")]
    frame = compare_dataset(others, "sims", SETTINGS, predictions)
    assert not frame["beats_baseline"].any() and not frame["is_baseline"].any()
    text = render_markdown(frame)
    assert "▲" not in text and "simple baseline" not in text
    assert "$^{+}$" not in render_latex(frame)
    only_baselines = [r for r in records if r.method in ("ridge", "text_only")]
    frame = compare_dataset(only_baselines, "sims", SETTINGS, predictions)
    assert frame["is_baseline"].all() and not frame["beats_baseline"].any()
    assert "simple baseline" not in render_markdown(frame)  # nothing to mark, nothing to say


def test_the_csv_keeps_the_marks_and_old_csvs_still_read(frame, tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(frame_to_csv(frame))
    back = read_comparison_csv(path)
    assert back["beats_baseline"].tolist() == frame["beats_baseline"].tolist()
    assert back["baseline"].tolist() == frame["baseline"].tolist()  # "" is not read as NaN
    old = tmp_path / "old.csv"
    old.write_text(frame_to_csv(frame.drop(columns=list(BASELINE_COLUMNS))))
    legacy = read_comparison_csv(old)
    assert not legacy["beats_baseline"].any() and "▲" not in render_markdown(legacy)
