"""Comparison tables rendered from a comparison frame (`harness.statistics.comparison` computes
it): Markdown and booktabs LaTeX views (the files, the CSV and its reader are in
comparison_files.py). Nothing here computes a statistic.

Each rendered table says which test every marker stands for:
`*` paired t-test over seeds, `§` Wilcoxon signed-rank over seeds (only where it can reject:
with 5 seeds and a Holm family of 80 it cannot, and the legend says so), `†` paired bootstrap over
test samples (each: Holm-adjusted p < alpha across all comparisons of the table, and worse than
the best), `‡` the best almost stochastically dominates the method (ASO epsilon_min < 0.2).
A marker whose test did not run (no test predictions, ASO switched off) is not mentioned.
`▲` (LaTeX `+`) marks a method significantly better than the best simple baseline
(`harness.statistics.baselines`); the legend names that baseline per metric and how many
metrics each method clears it on. Under the metric table: the cost table (harness/reports/cost.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from harness.metrics import metric_info, metric_label
from harness.reports.cost import cost_latex, cost_markdown, has_costs
from harness.reports.latex import (
    NEEDS,
    caption_height,
    latex_escape,
    split_columns,
    split_floats,
    table_float,
    tabular_height,
    text_width,
)
from harness.statistics.significance import wilcoxon_min_holm_p

__all__ = [
    "format_cell",
    "latex_escape",
    "render_latex",
    "render_markdown",
]


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
    flagged: str  # after a cell whose method has a flagged seed
    beats: str  # after a cell whose method beats the best simple baseline on that metric


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
    beats = style.beats if bool(row.get("beats_baseline", False)) else ""
    return text + _markers(row, style) + beats + (style.flagged if _flagged(row) else "")


def _flagged(row: pd.Series) -> bool:
    """True if the row's method has a flagged seed (a frame without the column has none)."""
    seeds = row.get("flagged_seeds", [])
    return isinstance(seeds, list) and len(seeds) > 0


def _flag_sentence(frame: pd.DataFrame, style: _Style) -> str:
    """The legend's sentence on flagged seeds: the rule, then each flagged seed and why; ""
    when the frame flags none."""
    if "flagged_seeds" not in frame.columns:
        return ""
    seen: dict[tuple[str, int], str] = {}
    for _, row in frame.iterrows():
        for seed, reason in zip(row["flagged_seeds"], row["flag_reasons"], strict=True):
            seen.setdefault((str(row["method"]), int(seed)), str(reason))
    if not seen:
        return ""
    listed = "; ".join(
        f"{style.escape(method)} seed {seed}: {style.escape(reason)}"
        for (method, seed), reason in sorted(seen.items())
    )
    rule = style.escape(  # escaped: the setting names hold underscores
        "(rule: its test predictions' std is below the flag_constant_ratio of the truths', or "
        "its MAE or Corr (binary kind: AUC) lies outside the flag_outlier_level prediction "
        "interval of its other "
        "seeds)"
    )
    return (
        f"{style.flagged.strip()} = the method has a flagged seed, kept in every number and "
        f"test above {rule}. Flagged: {listed}."
    )


def format_cell(row: pd.Series) -> str:
    """The Markdown cell of one comparison-frame row: "mean ± std", bold if best, markers."""
    return _format_cell(row, _MARKDOWN)


def _ci_cell(row: pd.Series) -> str:
    if math.isnan(row["ci_low"]):
        return "n/a"
    return f"[{_number(row['ci_low'], row['metric'])}, {_number(row['ci_high'], row['metric'])}]"


def _header(metric: str, style: _Style) -> str:
    """Column title: the metric's display label ("Acc-2 (has-0)"), "(%)" for percent metrics,
    then the direction arrow."""
    info = metric_info(metric)
    label = metric_label(metric)
    name = style.escape(f"{label} (%)" if info.percent else label)
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
        "wilcoxon": _wilcoxon_can_reject(frame),
        "sample": bool(np.any(frame["n_test_samples"] > 0)),
        "aso": bool(others["aso_epsilon"].notna().any()),
    }


def _wilcoxon_pairs(frame: pd.DataFrame) -> tuple[int, bool]:
    """(the most seeds any comparison of `frame` pairs, whether every comparison pairs that
    many); the seed count when `frame` has no comparison."""
    compared = frame[~frame["is_best"] & frame["mean"].notna()]
    pairs = (compared if len(compared) else frame)["n_pairs"].astype(int)
    return int(pairs.max()), pairs.nunique() == 1


def _wilcoxon_can_reject(frame: pd.DataFrame) -> bool:
    """Whether the Wilcoxon signed-rank test can reject anywhere in `frame`'s table: its
    smallest attainable Holm-adjusted p (`wilcoxon_min_holm_p`, at the most paired seeds of any
    comparison, over the table's comparisons) is below alpha. Otherwise its column and marker
    are left out and the legend says why."""
    comparisons = max(int(frame["n_comparisons"].iloc[0]), 1)
    smallest = wilcoxon_min_holm_p(_wilcoxon_pairs(frame)[0], comparisons)
    return smallest < float(frame["alpha"].iloc[0])


def _wilcoxon_omitted(frame: pd.DataFrame, style: _Style) -> str:
    """The legend's sentence saying why the Wilcoxon test is not shown."""
    pairs, same = _wilcoxon_pairs(frame)
    alpha = float(frame["alpha"].iloc[0])
    comparisons = max(int(frame["n_comparisons"].iloc[0]), 1)
    seeds = f"{pairs} seed{'s' if pairs != 1 else ''}" if same else f"at most {pairs} paired seeds"
    return (
        f"Wilcoxon signed-rank test omitted: with {seeds} its smallest two-sided p is "
        f"{2 / 2**pairs:.4g}, which after Holm over {comparisons} comparison"
        f"{'s' if comparisons != 1 else ''} cannot fall below {alpha:g}."
    )


def _tests_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table: per metric and compared method, the difference to the best and every test's
    Holm-adjusted p (and ASO's epsilon_min)."""
    ran = _tests_ran(frame)
    rows = []
    for _, row in frame[~frame["is_best"] & frame["mean"].notna()].iterrows():
        best = frame[(frame["metric"] == row["metric"]) & frame["is_best"]]
        entry = {
            "metric": metric_label(row["metric"]),
            "method": row["method"],
            "vs": best["method"].iloc[0] if len(best) else "n/a",
            "difference": _signed(row["difference"], row["metric"]),
            "seeds paired": int(row["n_pairs"]),
            "t-test p": _format_p(row["p_ttest_holm"]),
        }
        if ran["wilcoxon"]:
            entry["Wilcoxon p"] = _format_p(row["p_wilcoxon_holm"])
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
    m = style.markers
    sentences = [
        f"Mean{style.plus_minus}std over {_seed_phrase(frame)}; {style.escape('95%')} CI: "
        f"percentile bootstrap of the mean over seeds (resampling seed {seed}). "
        f"{style.bold('Bold')} = best mean per metric ({style.up} higher is better, "
        f"{style.down} lower is better).",
        f"Markers, each against the best method and only where the method is worse: "
        f"{m['ttest']} two-sided paired t-test over seeds{pairing}"
        + (
            f"; {m['wilcoxon']} Wilcoxon signed-rank test over seeds{pairing}"
            if ran["wilcoxon"]
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
        )
        + ("" if ran["wilcoxon"] else f" {_wilcoxon_omitted(frame, style)}"),
    ]
    few = sorted(set(frame.loc[frame["n_seeds"] < 2, "method"]))
    if few:
        sentences.append(
            f"{', '.join(style.escape(f) for f in few)}: fewer than 2 seeds, so no CI and no "
            "seed tests (n/a); the tests need at least 2 seeds per method."
        )
    flags = _flag_sentence(frame, style)
    if flags:
        sentences.append(flags)
    return " ".join(sentences)


def _caption(frame: pd.DataFrame, style: _Style) -> str:
    """A LaTeX caption's legend: `_legend`, then the simple-baseline sentences (Markdown gives
    those a paragraph of their own)."""
    return " ".join(
        part for part in (_legend(frame, style), _baseline_sentence(frame, style)) if part
    )


def _has_baselines(frame: pd.DataFrame) -> bool:
    """True if `frame` holds a simple baseline (a frame without the column holds none)."""
    return "is_baseline" in frame.columns and bool(frame["is_baseline"].astype(bool).any())


def _baseline_sentence(frame: pd.DataFrame, style: _Style) -> str:
    """The legend's sentences on the simple-baseline bar: the rule, the best baseline per
    metric, and per method on how many metrics it clears the bar; "" without baselines."""
    tested = frame[frame["baseline"].astype(str) != ""] if _has_baselines(frame) else frame[:0]
    if tested.empty:  # no baseline, or nothing but baselines: nothing is marked
        return ""
    alpha = float(frame["alpha"].iloc[0])
    comparisons = int(frame["n_baseline_comparisons"].iloc[0])
    samples = bool(tested["p_baseline_sample"].notna().any())
    tests = "paired t-test over seeds" + (
        " and paired bootstrap over test samples, both" if samples else ""
    )
    rule = (
        f"{style.beats.strip()} = better than the best simple baseline on that metric: a better "
        f"mean, and the Holm-adjusted p of the two-sided {tests} {style.less}{alpha:g}"
        + (" (with the test-set difference in the same direction)" if samples else "")
        + f", Holm across the {comparisons} comparison{'s' if comparisons != 1 else ''} with "
        "the best baseline."
    )
    best = tested.drop_duplicates("metric")
    names = list(dict.fromkeys(best["baseline"]))
    if len(names) == 1 and len(best) == frame["metric"].nunique():
        which = f"Best simple baseline: {style.escape(names[0])} on every metric."
    else:
        listed = "; ".join(
            f"{style.escape(metric_label(r['metric']))}: {style.escape(r['baseline'])}"
            for _, r in best.iterrows()
        )
        which = f"Best simple baseline per metric: {listed or 'none'}."
    counts = [
        f"{style.escape(str(method))} on {int(rows['beats_baseline'].sum())} of {len(rows)} metrics"
        for method, rows in tested.groupby("method", sort=False)
    ]
    clears = f"Clears the bar: {', '.join(counts)}." if counts else ""
    return " ".join(part for part in (rule, which, clears) if part)


def _per_dataset(
    frame: pd.DataFrame, cost: pd.DataFrame | None = None
) -> list[tuple[str, pd.DataFrame]]:
    if frame.empty:
        raise ValueError("comparison frame is empty; nothing to render")
    datasets = pd.unique(frame["dataset"])
    if cost is not None and len(datasets) > 1:
        raise ValueError("a cost table goes with a one-dataset comparison frame")
    return [(str(d), frame[frame["dataset"] == d]) for d in datasets]


def render_markdown(frame: pd.DataFrame, cost: pd.DataFrame | None = None) -> str:
    """Markdown view of a comparison frame: per dataset, a methods x metrics table of
    "mean ± std" (best in bold, markers for significantly worse, ▲ for better than the best
    simple baseline), the legend, the cost table under it when `cost` (the dataset's
    `harness.statistics.cost.cost_frame`; a one-dataset frame only) has measured runs, the
    95% CIs, and the tests against the best method and the best baseline, one comparison per
    row."""
    sections = []
    for dataset, part in _per_dataset(frame, cost):
        values = _pivot(
            part, lambda row: _format_cell(row, _MARKDOWN), lambda m: _header(m, _MARKDOWN)
        )
        intervals = _pivot(part, _ci_cell, lambda m: _header(m, _MARKDOWN))
        tests = _tests_table(part)
        bar = _baseline_sentence(part, _MARKDOWN)
        section = (
            f"## {dataset}\n\n{values.to_markdown(colalign=_align(values))}\n\n"
            f"{_legend(part, _MARKDOWN)}\n\n"
            + (f"{bar}\n\n" if bar else "")
            + (f"{cost_markdown(cost)}\n" if has_costs(cost) else "")
            + "95% confidence intervals of the mean (percentile bootstrap over seeds):\n\n"
            f"{intervals.to_markdown(colalign=_align(intervals))}\n"
        )
        unflagged = _unflagged_table(part)
        if unflagged is not None:
            section += (
                "\nMethods with a flagged seed, without it (mean ± std over the other seeds; "
                "the table above keeps every seed):\n\n"
                f"{unflagged.to_markdown(colalign=_align(unflagged))}\n"
            )
        if not tests.empty:
            section += (
                "\nTests against the best method (difference = method − best; Holm-adjusted "
                "p-values):\n\n"
                f"{tests.to_markdown(index=False, disable_numparse=True)}\n"
            )
        against_baseline = _baseline_tests_table(part)
        if not against_baseline.empty:
            section += (
                "\nTests against the best simple baseline (difference = method − baseline; "
                "Holm-adjusted p-values, Holm across these comparisons):\n\n"
                f"{against_baseline.to_markdown(index=False, disable_numparse=True)}\n"
            )
        sections.append(section)
    return "\n".join(sections)


def _baseline_tests_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table: per metric and non-baseline method, the difference to the best simple
    baseline, the Holm-adjusted p of each test and whether it clears the bar (empty without
    baselines)."""
    if not _has_baselines(frame):
        return pd.DataFrame()
    samples = bool(frame["p_baseline_sample"].notna().any())
    rows = []
    for _, row in frame[frame["baseline"].astype(str) != ""].iterrows():  # the tested rows
        entry = {
            "metric": metric_label(row["metric"]),
            "method": row["method"],
            "vs": row["baseline"],
            "difference": _signed(row["baseline_difference"], row["metric"]),
            "t-test p": _format_p(row["p_baseline_ttest_holm"]),
        }
        if samples:
            entry["bootstrap p (samples)"] = _format_p(row["p_baseline_sample_holm"])
        entry["clears"] = _MARKDOWN.beats if bool(row["beats_baseline"]) else "—"
        rows.append(entry)
    return pd.DataFrame(rows)


def _unflagged_table(part: pd.DataFrame) -> pd.DataFrame | None:
    """Methods x metrics of "mean ± std" over the unflagged seeds, for the methods that have a
    flagged seed; None when none has."""
    if "flagged_seeds" not in part.columns:
        return None
    rows = part[[_flagged(row) for _, row in part.iterrows()]]
    if rows.empty:
        return None

    def cell(row: pd.Series) -> str:
        if math.isnan(row["mean_unflagged"]):
            return "n/a"
        kept = len(row["seeds"]) - len(row["flagged_seeds"])
        text = _number(row["mean_unflagged"], row["metric"])
        if not math.isnan(row["std_unflagged"]):
            text += f" ± {_number(row['std_unflagged'], row['metric'])}"
        return f"{text} ({kept} seeds)"

    return _pivot(rows, cell, lambda m: _header(m, _MARKDOWN))


def _align(table: pd.DataFrame) -> tuple[str, ...]:
    return ("left",) + ("right",) * table.shape[1]


_MARKDOWN = _Style(
    " ± ",
    lambda text: f"**{text}**",
    {"ttest": "*", "wilcoxon": "§", "sample": "†", "aso": "‡"},
    "↑",
    "↓",
    "< ",
    "ε_min",
    str,
    " △",
    "▲",
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
    r"$^{\triangle}$",
    "$^{+}$",
)


def render_latex(frame: pd.DataFrame, cost: pd.DataFrame | None = None) -> str:
    """booktabs LaTeX table(s) of "mean $\\pm$ std" per method x metric for a comparison
    frame: \\textbf for the best, the markers as superscripts, the legend as caption; then
    the cost table's float when `cost` (a one-dataset frame's `cost_frame`) has measured runs."""
    tables = [_latex_table(dataset, part) for dataset, part in _per_dataset(frame, cost)]
    if has_costs(cost):
        tables[-1] += cost_latex(str(frame["dataset"].iloc[0]), cost) + "\n"
    return "\n".join(tables)


# The plain text of a cell (Markdown's, without the bold markup), whose width `text_width`
# estimates to decide how many metric columns one LaTeX tabular holds.
_PLAIN = replace(_MARKDOWN, bold=lambda text: text)
_LATEX_SIZE = "small"  # the font size command of the LaTeX table
_LATEX_TABCOLSEP = 4.0  # pt; LaTeX's default is 6 pt


def _latex_table(dataset: str, part: pd.DataFrame) -> str:
    """The `table` float(s) for one dataset: the caption holding the legend, then the metric
    columns split into as many stacked booktabs tabulars as the 345 pt text width needs (each
    repeating the method column; `harness.reports.latex.split_columns`), continued in a second
    float when the stack is higher than the page (`split_floats`)."""
    table = _pivot(part, lambda row: _format_cell(row, _LATEX), lambda m: m)
    metrics = list(table.columns)
    groups = split_columns(_latex_column_widths(part, metrics), _latex_method_width(table))
    blocks = [_latex_block(table, [metrics[i] for i in group]) for group in groups]
    label = "tab:" + "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset)
    caption = f"{dataset}: {_caption(part, _PLAIN)}"
    continued = f"{latex_escape(dataset)}, continued (legend: Table~\\ref{{{label}}})."
    floats = split_floats(
        [tabular_height(2 + len(table), _LATEX_SIZE)] * len(blocks),
        first=caption_height(caption, _LATEX_SIZE),
        last=0.0,
        continued=caption_height(f"{dataset}, continued (legend: Table 10).", _LATEX_SIZE),
    )
    legend = f"{latex_escape(dataset)}: {_caption(part, _LATEX)}"
    parts = [
        table_float(
            legend if i == 0 else continued,
            label if i == 0 else None,
            [blocks[k] for k in indices],
            _LATEX_SIZE,
            _LATEX_TABCOLSEP,
        )
        for i, indices in enumerate(floats)
    ]
    return "\n".join([NEEDS, "% Generated by msabench from per-seed run records.", *parts]) + "\n"


def _latex_block(table: pd.DataFrame, metrics: list[str]) -> str:
    """One booktabs tabular: the method column and `metrics`' columns of `table` (LaTeX cells),
    headed by each metric's label and, under it, its unit and direction."""
    units = [
        ("(\\%) " if metric_info(m).percent else "")
        + (_LATEX.up if metric_info(m).higher_is_better else _LATEX.down)
        for m in metrics
    ]
    body = [
        " & ".join([latex_escape(str(method)), *table.loc[method, metrics]]) + r" \\"
        for method in table.index
    ]
    lines = [
        r"\begin{tabular}{l" + "r" * len(metrics) + "}",
        r"\toprule",
        " & ".join(["Method", *(latex_escape(metric_label(m)) for m in metrics)]) + r" \\",
        " & ".join(["", *units]) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(lines)


def _latex_column_widths(part: pd.DataFrame, metrics: list[str]) -> list[float]:
    """Estimated width in pt of each metric's column (widest of its two header lines and its
    cells, plus the space between columns)."""
    cells: dict[str, list[float]] = {metric: [] for metric in metrics}
    for _, row in part.iterrows():
        cells[row["metric"]].append(_plain_cell_width(row))
    widths = []
    for metric in metrics:
        unit = ("(%) " if metric_info(metric).percent else "") + "↑"
        header = max(text_width(metric_label(metric), _LATEX_SIZE), text_width(unit, _LATEX_SIZE))
        widths.append(max(header, *cells[metric]) + 2 * _LATEX_TABCOLSEP)
    return widths


def _plain_cell_width(row: pd.Series) -> float:
    return text_width(_format_cell(row, _PLAIN), _LATEX_SIZE, bold=bool(row["is_best"]))


def _latex_method_width(table: pd.DataFrame) -> float:
    """Estimated width in pt of the method column, the space beside it included."""
    names = ["Method", *(str(method) for method in table.index)]
    return max(text_width(name, _LATEX_SIZE) for name in names) + 2 * _LATEX_TABCOLSEP
