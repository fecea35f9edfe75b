"""Comparison tables rendered from a comparison frame (`harness.statistics.comparison` computes
it): Markdown and booktabs LaTeX views, the CSV and its reader, the DVC metrics summary, and
`write_comparison`, which writes one dataset's table with its provenance paragraph
(provenance.py). Nothing here computes a statistic.

Each rendered table says which test every marker stands for:
`*` paired t-test over seeds, `§` Wilcoxon signed-rank over seeds, `†` paired bootstrap over
test samples (each: Holm-adjusted p < alpha across all comparisons of the table, and worse than
the best), `‡` the best almost stochastically dominates the method (ASO epsilon_min < 0.2).
A marker whose test did not run (no test predictions, ASO switched off) is not mentioned.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.io_utils import write_text_atomic
from harness.metrics import metric_info
from harness.records import RunResult
from harness.reports.provenance import provenance_note

__all__ = [
    "format_cell",
    "frame_to_csv",
    "latex_escape",
    "read_comparison_csv",
    "render_latex",
    "render_markdown",
    "summary_metrics",
    "to_json_value",
    "write_comparison",
]

_LIST_COLUMNS = ("seeds", "values")


# ---------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Style:
    """The markup one output format uses for the pieces of a table."""

    plus_minus: str
    bold: Callable[[str], str]
    markers: dict[str, str]  # test -> marker
    up: str
    down: str
    less: str
    epsilon: str
    escape: Callable[[str], str]


_MARKER_TESTS = ("ttest", "wilcoxon", "sample", "aso")


def _scale(metric: str) -> tuple[float, int]:
    """(factor, decimals): percent metrics x100 with 2 decimals, others 4 decimals."""
    return (100.0, 2) if metric_info(metric).percent else (1.0, 4)


def _number(value: float, metric: str) -> str:
    scale, digits = _scale(metric)
    return "n/a" if math.isnan(value) else f"{value * scale:.{digits}f}"


def _markers(row: pd.Series, style: _Style) -> str:
    flags = {
        "ttest": row["sig_ttest"], "wilcoxon": row["sig_wilcoxon"],
        "sample": row["sig_sample"], "aso": row["aso_dominated"],
    }  # fmt: skip
    return "".join(style.markers[test] for test in _MARKER_TESTS if bool(flags[test]))


def _format_cell(row: pd.Series, style: _Style) -> str:
    """'mean ± std' of one frame row, bold if best, followed by the markers of the tests that
    find it worse than the best."""
    if math.isnan(row["mean"]):
        return "n/a"
    text = _number(row["mean"], row["metric"])
    if not math.isnan(row["std"]):
        text += f"{style.plus_minus}{_number(row['std'], row['metric'])}"
    if row["is_best"]:
        text = style.bold(text)
    return text + _markers(row, style)


def format_cell(row: pd.Series) -> str:
    """The Markdown cell of one comparison-frame row: "mean ± std", bold if best, markers."""
    return _format_cell(row, _MARKDOWN)


def _ci_cell(row: pd.Series) -> str:
    if math.isnan(row["ci_low"]):
        return "n/a"
    return f"[{_number(row['ci_low'], row['metric'])}, {_number(row['ci_high'], row['metric'])}]"


def _header(metric: str, style: _Style) -> str:
    """Column title: metric name, "(%)" for percent metrics, then the direction arrow."""
    info = metric_info(metric)
    name = style.escape(f"{metric} (%)" if info.percent else metric)
    return f"{name} {style.up if info.higher_is_better else style.down}"


def _pivot(frame: pd.DataFrame, cell: Callable[[pd.Series], str], header: Callable) -> pd.DataFrame:
    """Methods x metrics table of strings, `cell(row)` per frame row, in frame order."""
    methods, metrics = pd.unique(frame["method"]), pd.unique(frame["metric"])
    table = pd.DataFrame("", index=pd.Index(methods, name="method"), columns=list(metrics))
    for _, row in frame.iterrows():
        table.loc[row["method"], row["metric"]] = cell(row)
    table.columns = [header(m) for m in metrics]
    return table


def _format_p(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _tests_ran(frame: pd.DataFrame) -> dict[str, bool]:
    """Which tests produced a value anywhere in `frame` (a table's markers follow these)."""
    others = frame[~frame["is_best"]]
    return {
        "ttest": True,
        "wilcoxon": True,
        "sample": bool(np.any(frame["n_test_samples"] > 0)),
        "aso": bool(others["aso_epsilon"].notna().any()),
    }


def _tests_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table: per metric and compared method, the difference to the best and every test's
    Holm-adjusted p (and ASO's epsilon_min)."""
    ran = _tests_ran(frame)
    rows = []
    for _, row in frame[~frame["is_best"] & frame["mean"].notna()].iterrows():
        best = frame[(frame["metric"] == row["metric"]) & frame["is_best"]]
        entry = {
            "metric": row["metric"],
            "method": row["method"],
            "vs": best["method"].iloc[0] if len(best) else "n/a",
            "difference": _signed(row["difference"], row["metric"]),
            "seeds paired": int(row["n_pairs"]),
            "t-test p": _format_p(row["p_ttest_holm"]),
            "Wilcoxon p": _format_p(row["p_wilcoxon_holm"]),
        }
        if ran["sample"]:
            entry["bootstrap p (samples)"] = _format_p(row["p_sample_holm"])
        if ran["aso"]:
            epsilon = row["aso_epsilon"]
            entry["ASO ε_min"] = "n/a" if math.isnan(epsilon) else f"{epsilon:.3f}"
        entry["markers"] = _markers(row, _MARKDOWN) or "—"
        rows.append(entry)
    return pd.DataFrame(rows)


def _signed(value: float, metric: str) -> str:
    if math.isnan(value):
        return "n/a"
    scale, digits = _scale(metric)
    return f"{value * scale:+.{digits}f}"


def _seed_phrase(frame: pd.DataFrame) -> str:
    counts = sorted(set(frame["n_seeds"].astype(int)))
    if len(counts) == 1:
        return f"{counts[0]} seed{'s' if counts[0] != 1 else ''}"
    return f"{counts[0]}–{counts[-1]} seeds per method"


def _legend(frame: pd.DataFrame, style: _Style) -> str:
    """The sentences under a table: seeds and CI method, bold, every marker's test, the
    correction, and what is n/a because a method has too few seeds."""
    alpha = float(frame["alpha"].iloc[0])
    seed = int(frame["seed"].iloc[0])
    comparisons = int(frame["n_comparisons"].iloc[0])
    ran = _tests_ran(frame)
    same_seeds = len({tuple(seeds) for seeds in frame["seeds"]}) == 1
    pairing = "" if same_seeds else " on the seeds both methods have"
    n_seeds = int(frame["n_seeds"].min())
    m = style.markers
    sentences = [
        f"Mean{style.plus_minus}std over {_seed_phrase(frame)}; 95% CI: percentile bootstrap of "
        f"the mean over seeds (resampling seed {seed}). {style.bold('Bold')} = best mean per "
        f"metric ({style.up} higher is better, {style.down} lower is better).",
        f"Markers, each against the best method and only where the method is worse: "
        f"{m['ttest']} two-sided paired t-test over seeds{pairing}; {m['wilcoxon']} Wilcoxon "
        f"signed-rank test over seeds{pairing}"
        + (
            f" (with {n_seeds} seeds its smallest two-sided p is {2 / 2**n_seeds:.4g})"
            if 2 / 2**n_seeds >= alpha
            else ""
        )
        + (
            f"; {m['sample']} paired bootstrap over the {int(frame['n_test_samples'].max())} "
            f"test samples of the seed-averaged metric ({int(frame['sample_resamples'].max())} "
            "resamples)"
            if ran["sample"]
            else ""
        )
        + f"; each Holm-adjusted p {style.less}{alpha:g} across all {comparisons} comparisons "
        f"of this table."
        + (
            f" {m['aso']} = the best almost stochastically dominates the method (ASO "
            f"{style.epsilon} {style.less}0.2, Bonferroni-corrected over the {comparisons} "
            "comparisons)."
            if ran["aso"]
            else ""
        ),
    ]
    few = sorted(set(frame.loc[frame["n_seeds"] < 2, "method"]))
    if few:
        sentences.append(
            f"{', '.join(style.escape(f) for f in few)}: fewer than 2 seeds, so no CI and no "
            "seed tests (n/a); the tests need at least 2 seeds per method."
        )
    return " ".join(sentences)


def _per_dataset(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if frame.empty:
        raise ValueError("comparison frame is empty; nothing to render")
    return [(str(d), frame[frame["dataset"] == d]) for d in pd.unique(frame["dataset"])]


def render_markdown(frame: pd.DataFrame) -> str:
    """Markdown view of a comparison frame: per dataset, a methods x metrics table of
    "mean ± std" (best in bold, markers for significantly worse), the 95% CIs, the tests
    against the best one comparison per row, and the legend."""
    sections = []
    for dataset, part in _per_dataset(frame):
        values = _pivot(
            part, lambda row: _format_cell(row, _MARKDOWN), lambda m: _header(m, _MARKDOWN)
        )
        intervals = _pivot(part, _ci_cell, lambda m: _header(m, _MARKDOWN))
        tests = _tests_table(part)
        section = (
            f"## {dataset}\n\n{values.to_markdown(colalign=_align(values))}\n\n"
            f"{_legend(part, _MARKDOWN)}\n\n"
            "95% confidence intervals of the mean (percentile bootstrap over seeds):\n\n"
            f"{intervals.to_markdown(colalign=_align(intervals))}\n"
        )
        if not tests.empty:
            section += (
                "\nTests against the best method (difference = method − best; Holm-adjusted "
                "p-values):\n\n"
                f"{tests.to_markdown(index=False, disable_numparse=True)}\n"
            )
        sections.append(section)
    return "\n".join(sections)


def _align(table: pd.DataFrame) -> tuple[str, ...]:
    return ("left",) + ("right",) * table.shape[1]


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}  # fmt: skip


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped (underscores included)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


_MARKDOWN = _Style(
    " ± ",
    lambda text: f"**{text}**",
    {"ttest": "*", "wilcoxon": "§", "sample": "†", "aso": "‡"},
    "↑",
    "↓",
    "< ",
    "ε_min",
    str,
)
_LATEX = _Style(
    r" $\pm$ ",
    lambda text: rf"\textbf{{{text}}}",
    {"ttest": "$^{*}$", "wilcoxon": r"$^{\S}$", "sample": r"$^{\dagger}$", "aso": r"$^{\ddagger}$"},
    r"$\uparrow$",
    r"$\downarrow$",
    "$<$ ",
    r"$\varepsilon_{\min}$",
    latex_escape,
)


def render_latex(frame: pd.DataFrame) -> str:
    """booktabs LaTeX table(s) of "mean $\\pm$ std" per method x metric for a comparison
    frame: \\textbf for the best, the markers as superscripts, the legend as caption."""
    return "\n".join(_latex_table(dataset, part) for dataset, part in _per_dataset(frame))


def _latex_table(dataset: str, part: pd.DataFrame) -> str:
    """One `table` float (booktabs tabular, caption holding the legend) for one dataset."""
    table = _pivot(part, lambda row: _format_cell(row, _LATEX), lambda m: _header(m, _LATEX))
    body = [
        " & ".join([latex_escape(str(method)), *cells]) + r" \\"
        for method, cells in zip(table.index, table.to_numpy(), strict=True)
    ]
    label = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset)
    lines = [
        "% Generated by msabench from per-seed run records.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(dataset)}: {_legend(part, _LATEX)}}}",
        rf"\label{{tab:{label}}}",
        r"\begin{tabular}{l" + "r" * table.shape[1] + "}",
        r"\toprule",
        " & ".join(["Method", *table.columns]) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ writing


def to_json_value(value: Any) -> Any:
    """`value` with NaN floats replaced by None (JSON null), recursively through lists/dicts."""
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def frame_to_csv(frame: pd.DataFrame) -> str:
    """CSV text of a comparison frame; the list columns are written as JSON strings (floats in
    their shortest round-trip form, so the file reads back exactly)."""
    out = frame.copy()
    for column in _LIST_COLUMNS:
        out[column] = [json.dumps(to_json_value(list(v)), allow_nan=False) for v in out[column]]
    return out.to_csv(index=False)


def read_comparison_csv(path: str | Path) -> pd.DataFrame:
    """Read a comparison CSV written by `write_comparison` back into the long frame."""
    frame = pd.read_csv(path)
    frame["seeds"] = [json.loads(text) for text in frame["seeds"]]
    frame["values"] = [
        [math.nan if v is None else float(v) for v in json.loads(text)] for text in frame["values"]
    ]
    return frame


def summary_metrics(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """{method: {metric: mean}} of one dataset's frame (NaN as null), for `dvc metrics`."""
    return {
        method: {row["metric"]: to_json_value(float(row["mean"])) for _, row in rows.iterrows()}
        for method, rows in frame.groupby("method", sort=False)
    }


def write_comparison(frame: pd.DataFrame, records: list[RunResult], out_dir: Path) -> None:
    """Write ONE dataset's comparison `frame` (computed from `records` by
    `harness.statistics.comparison.compare_dataset`) as out_dir/<dataset>.md (with the
    provenance of its runs), .tex and .csv, each atomically."""
    dataset = str(frame["dataset"].iloc[0])
    out_dir = Path(out_dir)
    markdown = f"{render_markdown(frame)}\n{provenance_note(records)}\n"
    write_text_atomic(out_dir / f"{dataset}.md", markdown)
    write_text_atomic(out_dir / f"{dataset}.tex", render_latex(frame))
    write_text_atomic(out_dir / f"{dataset}.csv", frame_to_csv(frame))
