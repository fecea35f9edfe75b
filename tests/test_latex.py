"""Every .tex the harness writes compiles with a real pdflatex in a minimal document (article +
booktabs) and fits its 345 pt text width: the comparison table of 11 methods x 8 metrics (as
computed, and with every marker and flag forced on) and every registered paper table with
reproduced numbers filled in. Also the column split that decides the layout, by hand."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.config.sections import CompareConfig
from harness.metrics import METRICS
from harness.papers.render import render_latex as render_paper_latex
from harness.papers.reproduce import reproduce_table
from harness.papers.tables import paper_table, paper_table_names
from harness.reports.latex import TEXT_WIDTH_PT, latex_escape, split_columns, text_width
from harness.reports.tables import render_latex
from harness.statistics.comparison import TestPredictions, compare_values

METHODS = (
    "lf_dnn", "tfn", "lmf", "misa", "mult", "mmim", "self_mm", "fine", "mmmie", "fsrf", "ir_svr",
)  # fmt: skip
DOCUMENT = (
    "\\documentclass{article}\n\\usepackage{booktabs}\n"
    "\\begin{document}\n\\input{%s}\n\\end{document}\n"
)  # the minimal document every generated .tex must compile in

needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex is not on PATH (Debian/Ubuntu: apt-get install texlive-latex-recommended)",
)


def compile_table(tex: str, directory: Path, name: str = "table") -> str:
    """Compile `tex` \\input into the minimal document in `directory`; the pdflatex log."""
    (directory / f"{name}.tex").write_text(tex, encoding="utf-8")
    (directory / f"{name}-doc.tex").write_text(DOCUMENT % name, encoding="utf-8")
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}-doc.tex"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (directory / f"{name}-doc.log").read_text(encoding="utf-8", errors="replace")
    assert result.returncode == 0, f"pdflatex failed on {name}.tex:\n{log[-3000:]}"
    return log


def overfull(log: str) -> list[float]:
    """How far (pt) each overfull box of a pdflatex log sticks out."""
    return [float(x) for x in re.findall(r"Overfull \\[hv]box \(([\d.]+)pt too", log)]


def assert_fits(tex: str, directory: Path, name: str) -> None:
    log = compile_table(tex, directory, name)
    assert [x for x in overfull(log) if x > 1.0] == [], f"{name}: overfull boxes in\n{log}"
    assert "Float too large" not in log, f"{name}: the float is taller than the page"
    assert "Missing character" not in log, f"{name}: a character the font lacks"
    assert tex.startswith("% Needs \\usepackage{booktabs}")


# ------------------------------------------------------------------------- comparison tables


def comparison_frame(n_seeds: int = 5, n_test: int = 40) -> pd.DataFrame:
    """11 methods x 8 MOSI metrics over `n_seeds` seeds with test predictions: every test runs
    (t-test, Wilcoxon, per-sample bootstrap, ASO), some methods far below the best."""
    rng = np.random.default_rng(0)
    seeds = list(range(1111, 1111 + n_seeds))
    truths = rng.normal(0.0, 1.5, n_test)
    values, predictions = {}, {}
    for k, method in enumerate(METHODS):
        level = 0.80 - 0.02 * k
        values[method] = {
            seed: {
                **{m: level + rng.normal(0, 0.004) for m in METRICS["mosi"]},
                "mae": 0.70 + 0.05 * k + rng.normal(0, 0.01),
                "corr": 0.75 - 0.05 * k + rng.normal(0, 0.01),
            }
            for seed in seeds
        }
        predictions[method] = {s: truths + rng.normal(0, 0.3 + 0.1 * k, n_test) for s in seeds}
    settings = CompareConfig(ci_resamples=200, aso_bootstrap=50, sample_resamples=200)
    return compare_values(
        "synth", values, METRICS["mosi"], settings, TestPredictions("mosi", truths, predictions)
    )


def worst_case(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every marker on every compared cell and a flagged seed for every method
    (reasons with LaTeX's special characters): the widest cells the table can have."""
    out = frame.copy()
    others = ~out["is_best"]
    for column in ("sig_ttest", "sig_wilcoxon", "sig_sample", "aso_dominated", "significant"):
        out.loc[others, column] = True
    if "flagged_seeds" in out.columns:
        out["flagged_seeds"] = [[int(seeds[0])] for seeds in out["seeds"]]
        out["flag_reasons"] = [["constant: std 3% of the truths' (flag_constant_ratio) & ~"]] * len(
            out
        )
    return out


@needs_pdflatex
def test_comparison_table_compiles_and_fits(tmp_path: Path) -> None:
    frame = comparison_frame()
    tex = render_latex(frame)
    assert "Wilcoxon signed-rank test omitted" in tex  # 5 seeds, 80 comparisons
    assert r"95\% CI" in tex and "Acc-2 (has-0)" in tex and "acc2_has0" not in tex
    assert tex.count(r"\begin{tabular}") >= 2  # 8 metric columns do not fit one tabular
    assert_fits(tex, tmp_path, "synth")


@needs_pdflatex
def test_widest_comparison_table_compiles_and_fits(tmp_path: Path) -> None:
    frame = worst_case(comparison_frame(n_seeds=12))
    tex = render_latex(frame)
    assert r"$^{\S}$" in tex  # 12 seeds: 80 * 2 / 2^12 < 0.05, so Wilcoxon is shown
    assert_fits(tex, tmp_path, "widest")


@needs_pdflatex
def test_table_with_baseline_marks_and_cost_compiles_and_fits(tmp_path: Path) -> None:
    """The widest table again, with every non-baseline cell marked as beating the best simple
    baseline, and the cost float under it (GPU memory, frozen parameters, two devices)."""
    frame = comparison_frame(n_seeds=12)
    baselines = ("lf_dnn", "tfn")
    settings = CompareConfig(ci_resamples=200, aso_bootstrap=50, simple_baselines=baselines)
    values = {m: {s: {k: 0.5 for k in METRICS["mosi"]} for s in range(3)} for m in METHODS}
    marked = compare_values("synth", values, METRICS["mosi"], settings, baselines=baselines)
    assert marked["is_baseline"].any()
    frame = worst_case(frame)
    for column in ("is_baseline", "baseline", "n_baseline_comparisons"):
        frame[column] = marked[column].to_numpy()
    frame["baseline"] = ["" if b else "lf_dnn" for b in frame["is_baseline"]]
    frame["beats_baseline"] = ~frame["is_baseline"]
    cost = pd.DataFrame(
        {
            "method": list(METHODS), "n_runs": 12, "parameters_total": 123_456_789.0,
            "parameters_trained": 1_234_567.0, "train_seconds_total": 12_345.6,
            "train_seconds_per_epoch": 1_234.5, "inference_ms_per_sample": 0.0123,
            "peak_host_memory_mb": 12_345.0, "peak_gpu_memory_mb": 65_432.1,
            "train_seconds_total_std": 1.0, "train_seconds_per_epoch_std": 1.0,
            "inference_ms_per_sample_std": 1.0, "inference_batch_size": "256",
            "inference_samples": "4654",
            "device": ["cuda: NVIDIA H100 80GB HBM3", "cpu: AMD EPYC 7B13 (16 threads)"] * 5
            + ["cpu: AMD EPYC 7B13 (16 threads)"],
        }
    )  # fmt: skip
    tex = render_latex(frame, cost)
    assert "$^{+}$ = better than the best simple baseline" in tex and "GPU MB" in tex
    assert_fits(tex, tmp_path, "baselines-cost")


# ----------------------------------------------------------------------------- paper tables


def filled_runs(name: str) -> tuple[dict, dict]:
    """(runs, dataset map) that give every implemented method of paper table `name` numbers in
    every column: 5 seeds of every metric on a project dataset per paper dataset, with MAE above
    1 and a negative Corr (the widest x100 values), one method on one seed only."""
    table = paper_table(name)
    rng = np.random.default_rng(1)
    metrics = sorted(set(METRICS["mosi"]) | set(METRICS["sims"]) | set(METRICS["binary"]))
    methods = [row.method for row in table.rows if row.method is not None]
    runs: dict = {}
    dataset_map = {block.dataset: f"project_{i}" for i, block in enumerate(table.blocks)}
    for project in dataset_map.values():
        runs[project] = {}
        for k, method in enumerate(methods):
            seeds = (1,) if k == 0 else (1, 2, 3, 4, 5)
            runs[project][method] = {
                s: {
                    **{m: rng.uniform(0.3, 0.9) for m in metrics},
                    "mae": rng.uniform(1.0, 1.3),
                    "corr": rng.uniform(-0.2, 0.0),
                }
                for s in seeds
            }
    return runs, dataset_map


@needs_pdflatex
@pytest.mark.parametrize("name", sorted(paper_table_names()))
def test_every_paper_table_compiles_and_fits(name: str, tmp_path: Path) -> None:
    table = paper_table(name)
    runs, dataset_map = filled_runs(name)
    frame = reproduce_table(table, runs, dataset_map, seed=0, n_resamples=200)
    # the first implemented method has one seed ("too few seeds"), the others five ("ok")
    compared = [row for row in table.rows if row.method is not None and row.reported]
    expected = {"ok", "too few seeds"} if len(compared) > 1 else {"too few seeds"}
    assert expected <= set(frame["status"]) or not table.has_reported()
    tex = render_paper_latex(frame, table)
    assert table.registry_file in tex and "shared/reference" not in tex
    assert_fits(tex, tmp_path, name)


# ---------------------------------------------------------------------------- layout, by hand


def test_split_columns_by_hand() -> None:
    assert split_columns([100, 100, 100, 100], fixed=50, budget=300) == [range(0, 2), range(2, 4)]
    assert split_columns([100, 100, 100], fixed=50, budget=400) == [range(0, 3)]
    # 3 + 2 and 2 + 3 both fit in two groups; a cut at the natural boundary 2 wins
    assert split_columns([60] * 5, fixed=0, budget=180, boundaries=(2,)) == [
        range(0, 2),
        range(2, 5),
    ]
    # without boundaries, the more even widths win: [50, 50 | 100] (100) over [50 | 50, 100]
    assert split_columns([50, 50, 100], fixed=0, budget=150) == [range(0, 2), range(2, 3)]
    assert split_columns([500, 10], fixed=0, budget=345) == [range(0, 1), range(1, 2)]
    assert split_columns([], fixed=10) == []


def test_text_width_by_hand() -> None:
    # cmr10: every digit is 0.5 em, the period 0.28 em (rounded up from 0.278)
    assert text_width("80.00", "normalsize") == pytest.approx((4 * 0.5 + 0.28) * 10)
    assert text_width("80", "normalsize", bold=True) == pytest.approx(2 * 0.5 * 10 * 1.15)
    assert text_width("80", "small") == pytest.approx(9.0 * 1.028)
    assert TEXT_WIDTH_PT == 345.0


def test_latex_escape_covers_specials_and_symbols() -> None:
    assert latex_escape("95% of a_b & {c} #1 $2") == r"95\% of a\_b \& \{c\} \#1 \$2"
    assert latex_escape("± ✓ ✗ ↑ → –") == r"$\pm$ $\surd$ $\times$ $\uparrow$ $\rightarrow$ –"
