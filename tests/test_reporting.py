"""Comparison frames and their rendered tables, built from hand-made run records whose
answers can be checked by hand (scipy for the seed tests, Holm across the whole table)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from harness.config.sections import CompareConfig
from harness.errors import DataError, UnknownNameError
from harness.metrics import METRICS
from harness.records import RunResult
from harness.reports.comparison_files import read_comparison_csv, summary_metrics, write_comparison
from harness.reports.tables import render_latex, render_markdown
from harness.statistics.comparison import FRAME_COLUMNS, compare_dataset
from harness.statistics.significance import holm, wilcoxon_min_holm_p

SEEDS = (1111, 1112, 1113, 1114, 1115)
JITTER = np.array([0.004, -0.003, 0.001, -0.002, 0.0])


def make_record(method: str, seed: int, metrics: dict[str, float], dataset: str = "sims"):
    """A RunResult with dummy provenance fields."""
    return RunResult(
        method=method,
        dataset=dataset,
        seed=seed,
        split="test",
        metrics=metrics,
        valid_metrics={},
        hparams={},
        config_hash="0" * 64,
        data_hash="1" * 64,
        git_commit="deadbeef",
        package_versions={},
        wall_time_s=1.0,
        best_epoch=3,
        epochs_run=10,
        device="cpu",
    )


def sims_records(method: str, accuracy: float, mae: float, jitter_scale: float = 1.0):
    """Five seeds of SIMS metrics: accuracies around `accuracy`, MAE around `mae`."""
    records = []
    for i, seed in enumerate(SEEDS):
        noise = JITTER[i] * jitter_scale
        metrics = {name: accuracy + noise for name in METRICS["sims"]}
        metrics.update(mae=mae - noise, corr=0.5 + noise)
        records.append(make_record(method, seed, metrics))
    return records


@pytest.fixture
def records() -> list[RunResult]:
    # "good" has the best accuracies but the *worst* MAE (lower is better);
    # "weak" is clearly worse on accuracy; "close" is close to "good".
    return (
        sims_records("good", 0.80, 0.50)
        + sims_records("weak", 0.60, 0.45, jitter_scale=-0.5)
        + sims_records("close", 0.797, 0.40, jitter_scale=1.3)
    )


def row(frame: pd.DataFrame, method: str, metric: str) -> pd.Series:
    selected = frame[(frame["method"] == method) & (frame["metric"] == metric)]
    assert len(selected) == 1
    return selected.iloc[0]


def test_frame_shape_and_columns(records: list[RunResult]) -> None:
    frame = compare_dataset(records, "sims")
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert len(frame) == 3 * len(METRICS["sims"])
    assert list(pd.unique(frame["metric"])) == list(METRICS["sims"])
    good = row(frame, "good", "acc2")
    assert good["n_seeds"] == 5 and good["seeds"] == list(SEEDS)
    np.testing.assert_allclose(good["values"], 0.80 + JITTER)
    assert good["mean"] == pytest.approx(np.mean(0.80 + JITTER))
    assert good["std"] == pytest.approx(np.std(0.80 + JITTER, ddof=1))


def test_best_respects_direction(records: list[RunResult]) -> None:
    frame = compare_dataset(records, "sims")
    best = frame[frame["is_best"]].set_index("metric")["method"]
    assert best["acc2"] == "good"
    assert best["mae"] == "close"  # lowest MAE, although "good" has the best accuracies
    assert frame.groupby("metric")["is_best"].sum().eq(1).all()
    assert not row(frame, "close", "mae")["higher_is_better"]
    assert math.isnan(row(frame, "good", "acc2")["p_ttest"])


def test_pvalues_match_scipy_and_holm_runs_across_the_whole_table(
    records: list[RunResult],
) -> None:
    frame = compare_dataset(records, "sims")
    others = frame[~frame["is_best"]]
    assert len(others) == 2 * len(METRICS["sims"])  # 2 methods compared per metric
    assert (frame["n_comparisons"] == 12).all()
    for _, r in others.iterrows():
        best = np.array(row(frame, _best(frame, r["metric"]), r["metric"])["values"])
        other = np.array(r["values"])
        assert r["p_ttest"] == pytest.approx(scipy_stats.ttest_rel(other, best).pvalue)
        assert r["p_wilcoxon"] == pytest.approx(scipy_stats.wilcoxon(other, best).pvalue)
    # one Holm family per test: all 12 comparisons of the table
    np.testing.assert_allclose(others["p_ttest_holm"], holm(others["p_ttest"].to_numpy()))
    np.testing.assert_allclose(others["p_wilcoxon_holm"], holm(others["p_wilcoxon"].to_numpy()))
    assert (others["p_ttest_holm"] >= others["p_ttest"]).all()
    assert row(frame, "weak", "acc3")["significant"] and row(frame, "weak", "acc3")["sig_ttest"]
    assert row(frame, "weak", "acc3")["p_wilcoxon"] == pytest.approx(0.0625)
    assert not others["sig_wilcoxon"].any()  # 5 seeds: the Wilcoxon test cannot reach 0.05


def seed_records(method: str, level: float, n_seeds: int, scale: float) -> list[RunResult]:
    """`n_seeds` seeds of SIMS metrics around `level` (MAE around 1 - level, Corr around
    level - 0.3), each seed's noise `scale` times its own (so no two differences tie)."""
    noise = scale * np.linspace(-0.004, 0.004, n_seeds) ** 3 * 1e4
    return [
        make_record(method, 2000 + i, {**dict.fromkeys(METRICS["sims"], level + noise[i]),
                                      "mae": 1 - level - noise[i], "corr": level - 0.3 + noise[i]})
        for i in range(n_seeds)
    ]  # fmt: skip


@pytest.mark.parametrize(("n_seeds", "shown"), [(8, False), (9, True)])
def test_wilcoxon_column_only_where_it_can_reject(n_seeds: int, shown: bool) -> None:
    # 3 methods x 6 metrics: 12 comparisons; 12 * 2 / 2^8 = 0.094, 12 * 2 / 2^9 = 0.047
    records = [
        r
        for method, level, scale in (("a", 0.8, 1.0), ("b", 0.6, 2.0), ("c", 0.5, 3.0))
        for r in seed_records(method, level, n_seeds, scale)
    ]
    frame = compare_dataset(records, "sims", CompareConfig(ci_resamples=200, aso=False))
    text = render_markdown(frame)
    assert ("Wilcoxon p" in text) is shown and ("§ Wilcoxon signed-rank test" in text) is shown
    assert ("Wilcoxon signed-rank test omitted" in text) is not shown
    assert bool(frame["sig_wilcoxon"].any()) is shown  # "b" and "c" are worse on every seed
    latex = render_latex(frame)
    assert (r"$^{\S}$" in latex) is shown


def test_wilcoxon_min_holm_p_by_hand() -> None:
    assert wilcoxon_min_holm_p(5, 80) == 1.0  # 80 * 2 / 32 = 5, capped at 1
    assert wilcoxon_min_holm_p(5, 1) == 0.0625  # 2 / 32: one test cannot reach 0.05 either
    assert wilcoxon_min_holm_p(6, 1) == 0.03125  # 2 / 64
    assert wilcoxon_min_holm_p(12, 80) == 0.0390625  # 160 / 4096
    assert wilcoxon_min_holm_p(10, 80) == 0.15625  # 160 / 1024
    assert wilcoxon_min_holm_p(9, 12) == 0.046875  # 24 / 512
    assert wilcoxon_min_holm_p(0, 3) == 1.0 and wilcoxon_min_holm_p(1, 1) == 1.0
    with pytest.raises(ValueError, match="n_comparisons"):
        wilcoxon_min_holm_p(5, 0)
    with pytest.raises(ValueError, match="n_pairs"):
        wilcoxon_min_holm_p(-1, 3)


def _best(frame: pd.DataFrame, metric: str) -> str:
    return frame[(frame["metric"] == metric) & frame["is_best"]]["method"].iloc[0]


def test_seed_sets_are_intersected() -> None:
    best = sims_records("best", 0.80, 0.40)
    other = [r for r in sims_records("other", 0.70, 0.50, jitter_scale=0.5) if r.seed != 1115]
    frame = compare_dataset(best + other, "sims")
    r = row(frame, "other", "acc2")
    assert (r["n_seeds"], r["n_pairs"]) == (4, 4)
    expected = scipy_stats.ttest_rel(0.70 + 0.5 * JITTER[:4], 0.80 + JITTER[:4]).pvalue
    assert r["p_ttest"] == pytest.approx(expected)
    assert "on the seeds both methods have" in render_markdown(frame)


def test_significant_only_when_worse_on_the_paired_seeds() -> None:
    # "a" wins on mean thanks to two seeds "b" lacks; on the shared seeds "b" is better.
    rest = {m: 0.5 for m in METRICS["sims"] if m != "acc2"}
    a_values, b_values = [0.5, 0.51, 0.52, 0.99, 0.99], [0.6, 0.61, 0.63]
    a = [make_record("a", s, {**rest, "acc2": v}) for s, v in zip(SEEDS, a_values, strict=True)]
    b = [make_record("b", s, {**rest, "acc2": v}) for s, v in zip(SEEDS[:3], b_values, strict=True)]
    frame = compare_dataset(a + b, "sims")
    r = row(frame, "b", "acc2")
    assert row(frame, "a", "acc2")["is_best"]
    assert r["p_ttest_holm"] < 0.05 and not r["significant"]


def test_markdown_marks_best_and_significance(records: list[RunResult]) -> None:
    text = render_markdown(compare_dataset(records, "sims"))
    assert "**80.00 ± 0.27**" in text  # best acc2 (percent, 2 decimals)
    assert "60.00 ± 0.14*" in text  # weak, clearly worse
    assert "**0.4000 ± 0.0036**" in text  # best (lowest) MAE, 4 decimals
    assert "MAE ↓" in text and "Acc-2 (%) ↑" in text and "acc2" not in text
    assert "5 seeds" in text and "Holm" in text and "Wilcoxon" in text
    assert "across all 12 comparisons" in text and "smallest two-sided p is 0.0625" in text
    # 5 seeds, 12 comparisons: 12 * 0.0625 >= 0.05, so no Wilcoxon column and no § marker
    assert (
        "Wilcoxon signed-rank test omitted: with 5 seeds its smallest two-sided p is 0.0625, "
        "which after Holm over 12 comparisons cannot fall below 0.05"
    ) in text
    assert "Wilcoxon p" not in text and "§" not in text
    assert "* two-sided paired t-test" in text and "‡ = the best almost stochastically" in text
    assert "bootstrap over the" not in text  # no predictions given: no per-sample test, no †
    rows_of_good = [line for line in text.splitlines() if line.startswith("| good ")]
    assert len(rows_of_good) == 2  # values and CI tables; "good" is never tested against itself
    assert "Tests against the best method" in text


def test_latex_booktabs(records: list[RunResult]) -> None:
    extra = sims_records("lf_dnn", 0.55, 0.9)
    text = render_latex(compare_dataset(records + extra, "sims"))
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}"):
        assert command in text
    assert r"\textbf{80.00 $\pm$ 0.27}" in text
    assert r"60.00 $\pm$ 0.14$^{*}$$^{\ddagger}$" in text
    assert r"lf\_dnn" in text and "lf_dnn" not in text
    assert r"Acc-2 & Acc-3" in text and r"(\%) $\uparrow$" in text and "acc2" not in text
    assert r"95\% CI" in text and "95% CI" not in text  # an unescaped % ends the caption
    assert "Wilcoxon signed-rank test omitted" in text and r"\S" not in text


def test_write_comparison_files_and_csv_round_trip(tmp_path: Path) -> None:
    mosi = []
    for method, level in (("tfn", 0.7), ("mult", 0.8)):
        for i, seed in enumerate(SEEDS):
            metrics = {m: level + JITTER[i] for m in METRICS["mosi"]}
            metrics["corr"] = math.nan if (method, i) == ("tfn", 0) else metrics["corr"]
            mosi.append(make_record(method, seed, metrics, dataset="mosi"))
    frame = compare_dataset(mosi, "mosi")
    write_comparison(frame, mosi, tmp_path)
    for suffix in ("md", "tex", "csv"):
        assert (tmp_path / f"mosi.{suffix}").is_file()
    summary = summary_metrics(frame)
    assert summary["tfn"]["corr"] is None  # NaN mean written as null
    assert summary["mult"]["acc2_has0"] == pytest.approx(0.8)
    assert list(summary["mult"]) == list(METRICS["mosi"])
    json.dumps(summary, allow_nan=False)

    loaded = read_comparison_csv(tmp_path / "mosi.csv")
    pd.testing.assert_frame_equal(
        loaded.drop(columns=["values", "seeds"]),
        frame.drop(columns=["values", "seeds"]),
        check_dtype=False,
    )
    assert loaded["seeds"].tolist() == frame["seeds"].tolist()
    for got, want in zip(loaded["values"], frame["values"], strict=True):
        np.testing.assert_array_equal(got, want)  # NaN == NaN here
    assert render_markdown(loaded) == render_markdown(frame)
    assert render_latex(loaded) == render_latex(frame)


def test_bad_records_raise_one_line(records: list[RunResult]) -> None:
    mixed = records + [make_record("good", 1, records[0].metrics, dataset="mosi")]
    with pytest.raises(DataError, match="mix datasets"):
        compare_dataset(mixed, "sims")
    with pytest.raises(DataError, match="two records for seed 1111"):
        compare_dataset(records + [records[0]], "sims")
    with pytest.raises(DataError, match="lacks metric 'acc2_has0'"):
        compare_dataset(records, "mosi")
    with pytest.raises(DataError, match="no run records"):
        compare_dataset([], "sims")
    with pytest.raises(UnknownNameError, match="valid kinds"):
        compare_dataset(records, "iemocap")
