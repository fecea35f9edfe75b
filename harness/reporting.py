"""Comparison tables computed from per-seed `RunResult` records.

`compare_dataset` builds the long frame (one row per method x metric, per-seed values kept);
`render_markdown` and `render_latex` are views of that frame; `write_comparison` writes the
tables and a DVC metrics file. Decisions:

- The best method per metric has the best *mean* in the metric's direction (`harness.metrics`);
  on a tie the method whose name sorts first wins. A method whose mean is NaN is never best.
- Every other method is compared with the best, paired by seed on the seeds both have
  (`n_pairs`; for the best row `n_pairs` equals `n_seeds` and the p-values are NaN).
- Holm's correction runs within each (dataset, metric) family, across the comparisons with the
  best, separately for the t-test and the Wilcoxon p-values.
- `significant` is true when the Holm-adjusted paired t-test p < alpha *and* the method is worse
  than the best on the paired seeds (with unequal seed sets the paired direction can differ from
  the direction of the means).
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

from harness.errors import ConfigError, DataError, UnknownNameError
from harness.io_utils import write_text_atomic
from harness.metrics import METRICS, is_better, metric_info
from harness.records import RunResult
from harness.stats import holm, paired_ttest, summarize, wilcoxon_signed_rank

__all__ = [
    "FRAME_COLUMNS",
    "compare_dataset",
    "compare_values",
    "format_cell",
    "frame_to_csv",
    "latex_escape",
    "read_comparison_csv",
    "render_latex",
    "render_markdown",
    "to_json_value",
    "write_comparison",
]

FRAME_COLUMNS: tuple[str, ...] = (
    "dataset", "method", "metric", "higher_is_better", "n_seeds", "n_pairs", "mean", "std",
    "ci_low", "ci_high", "is_best", "p_ttest", "p_ttest_holm", "p_wilcoxon", "p_wilcoxon_holm",
    "significant", "alpha", "seeds", "values",
)  # fmt: skip

_LIST_COLUMNS = ("seeds", "values")
_Series = dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (seeds (S,), values (S,))


def compare_dataset(records: list[RunResult], kind: str, alpha: float = 0.05) -> pd.DataFrame:
    """Long comparison frame for the records of ONE dataset, metrics of `kind` ("mosi"/"sims").

    One row per (method, metric) with the columns `FRAME_COLUMNS`; `seeds` and `values` hold
    the per-seed test values (lists, sorted by seed). Raises DataError if the records are
    empty, mix datasets or splits, repeat a seed for a method, or lack a metric.
    """
    if kind not in METRICS:
        raise UnknownNameError(f"unknown metric kind {kind!r}; valid kinds: {', '.join(METRICS)}")
    dataset = _single_dataset(records)
    values = {
        method: {seed: record.metrics for seed, record in seeds.items()}
        for method, seeds in _records_by_method(records).items()
    }
    return compare_values(dataset, values, METRICS[kind], alpha)


def compare_values(
    title: str,
    values: dict[str, dict[int, dict[str, float]]],
    metrics: tuple[str, ...],
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The comparison frame of any per-seed scores: `values` is {method: {seed: {metric:
    value}}} (e.g. test metrics, or areas under a missing-rate curve); `title` fills the
    frame's "dataset" column (the section heading of the rendered tables). DataError if a
    method's seed lacks one of `metrics`."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not values:
        raise DataError(f"{title}: no values to compare")
    ordered = {m: dict(sorted(values[m].items())) for m in sorted(values)}
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        series = _metric_series(ordered, metric, title)
        rows.extend(_compare_metric(title, metric, series, alpha))
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def _single_dataset(records: list[RunResult]) -> str:
    if not records:
        raise DataError("no run records to compare")
    datasets = sorted({r.dataset for r in records})
    if len(datasets) > 1:
        raise DataError(f"records mix datasets {datasets}; compare one dataset at a time")
    splits = sorted({r.split for r in records})
    if len(splits) > 1:
        raise DataError(f"records for {datasets[0]!r} mix splits {splits}")
    return datasets[0]


def _records_by_method(records: list[RunResult]) -> dict[str, dict[int, RunResult]]:
    """{method: {seed: record}}, methods and seeds sorted; DataError on a duplicate seed."""
    by_method: dict[str, dict[int, RunResult]] = {}
    for record in records:
        seeds = by_method.setdefault(record.method, {})
        if record.seed in seeds:
            raise DataError(
                f"method {record.method!r} has two records for seed {record.seed} "
                f"on dataset {record.dataset!r}"
            )
        seeds[record.seed] = record
    return {m: dict(sorted(by_method[m].items())) for m in sorted(by_method)}


def _metric_series(
    values: dict[str, dict[int, dict[str, float]]], metric: str, title: str
) -> _Series:
    """method -> (seeds (S,), values (S,)) of `metric`; DataError if a seed lacks it."""
    series: _Series = {}
    for method, seed_metrics in values.items():
        for seed, metrics in seed_metrics.items():
            if metric not in metrics:
                raise DataError(
                    f"record {method}/{title}/seed {seed} lacks metric {metric!r} "
                    f"(has: {', '.join(metrics)})"
                )
        seeds = np.array(list(seed_metrics), dtype=np.int64)
        raw = [m[metric] for m in seed_metrics.values()]
        array = np.array([math.nan if v is None else float(v) for v in raw])  # null = NaN
        series[method] = (seeds, array)
    return series


def _compare_metric(dataset: str, metric: str, series: _Series, alpha: float) -> list[dict]:
    """Rows for one metric: summaries, the best method, paired tests against it, Holm."""
    summaries = {method: summarize(values) for method, (_, values) in series.items()}
    best = _best_method(metric, {m: s.mean for m, s in summaries.items()})
    others = [m for m in series if m != best] if best is not None else []
    tests = [_paired_tests(series[m], series[best], metric) for m in others if best is not None]
    t_holm = holm(np.array([t["p_ttest"] for t in tests]))
    w_holm = holm(np.array([t["p_wilcoxon"] for t in tests]))
    rows = []
    for method, (seeds, values) in series.items():
        s = summaries[method]
        row: dict[str, Any] = {
            "dataset": dataset, "method": method, "metric": metric,
            "higher_is_better": metric_info(metric).higher_is_better, "n_seeds": s.n,
            "n_pairs": s.n, "mean": s.mean, "std": s.std, "ci_low": s.ci_low,
            "ci_high": s.ci_high, "is_best": method == best, "p_ttest": math.nan,
            "p_ttest_holm": math.nan, "p_wilcoxon": math.nan, "p_wilcoxon_holm": math.nan,
            "significant": False, "alpha": alpha, "seeds": seeds.tolist(),
            "values": values.tolist(),
        }  # fmt: skip
        if method in others:
            k = others.index(method)
            test = dict(tests[k])
            worse = test.pop("worse_on_pairs")
            row.update(test, p_ttest_holm=float(t_holm[k]), p_wilcoxon_holm=float(w_holm[k]))
            row["significant"] = bool(t_holm[k] < alpha and worse)
        rows.append(row)
    return rows


def _best_method(metric: str, means: dict[str, float]) -> str | None:
    """The method with the best mean (first in order on a tie); None if every mean is NaN."""
    best: str | None = None
    for method, mean in means.items():
        if not math.isnan(mean) and (best is None or is_better(metric, mean, means[best])):
            best = method
    return best


def _paired_tests(
    other: tuple[np.ndarray, np.ndarray], best: tuple[np.ndarray, np.ndarray], metric: str
) -> dict[str, Any]:
    """Paired t-test and Wilcoxon of `other` against `best` on their common seeds."""
    common, i_other, i_best = np.intersect1d(other[0], best[0], return_indices=True)
    a, b = other[1][i_other], best[1][i_best]
    worse = common.size > 0 and is_better(metric, float(np.mean(b)), float(np.mean(a)))
    return {
        "n_pairs": int(common.size),
        "p_ttest": paired_ttest(a, b),
        "p_wilcoxon": wilcoxon_signed_rank(a, b),
        "worse_on_pairs": worse,
    }


# ---------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Style:
    """The markup one output format uses for the pieces of a table."""

    plus_minus: str
    bold: Callable[[str], str]
    star: str
    up: str
    down: str
    p_less: str
    escape: Callable[[str], str]


def _format_cell(row: pd.Series, style: _Style) -> str:
    """'mean ± std' of one frame row: percent metrics x100 with 2 decimals, else 4 decimals."""
    if math.isnan(row["mean"]):
        return "n/a"
    percent = metric_info(row["metric"]).percent
    scale, digits = (100.0, 2) if percent else (1.0, 4)
    text = f"{row['mean'] * scale:.{digits}f}"
    if not math.isnan(row["std"]):
        text += f"{style.plus_minus}{row['std'] * scale:.{digits}f}"
    if row["is_best"]:
        text = style.bold(text)
    return text + (style.star if row["significant"] else "")


def format_cell(row: pd.Series) -> str:
    """The Markdown cell of one comparison-frame row: "mean ± std", bold if best, * if worse."""
    return _format_cell(row, _MARKDOWN)


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


def _p_cell(row: pd.Series) -> str:
    if row["is_best"]:
        return "—"
    return f"{_format_p(row['p_ttest_holm'])} / {_format_p(row['p_wilcoxon_holm'])}"


def _seed_phrase(frame: pd.DataFrame) -> str:
    counts = sorted(set(frame["n_seeds"].astype(int)))
    if len(counts) == 1:
        return f"{counts[0]} seed{'s' if counts[0] != 1 else ''}"
    return f"{counts[0]}–{counts[-1]} seeds per method"


def _legend(frame: pd.DataFrame, style: _Style) -> str:
    """One line: seeds, what bold and the star mean, which tests and correction."""
    alpha = float(frame["alpha"].iloc[0])
    same_seeds = len({tuple(seeds) for seeds in frame["seeds"]}) == 1
    pairing = "" if same_seeds else " on the seeds both methods have"
    return (
        f"Mean{style.plus_minus}std over {_seed_phrase(frame)}. {style.bold('Bold')} = best mean "
        f"per metric ({style.up} higher is better, {style.down} lower is better); "
        f"{style.star} = worse than the best, Holm-adjusted paired t-test {style.p_less}{alpha:g}. "
        f"Tests: two-sided paired t-test and Wilcoxon signed-rank test against the best method, "
        f"paired by seed{pairing}, each Holm-corrected across the methods compared with the best."
    )


def _per_dataset(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if frame.empty:
        raise ValueError("comparison frame is empty; nothing to render")
    return [(str(d), frame[frame["dataset"] == d]) for d in pd.unique(frame["dataset"])]


def render_markdown(frame: pd.DataFrame) -> str:
    """Markdown view of a `compare_dataset` frame: per dataset, a methods x metrics table of
    "mean ± std" (best in bold, `*` for significantly worse), a table of Holm-adjusted p-values
    (t-test / Wilcoxon, "—" for the best) and a legend line."""
    sections = []
    for dataset, part in _per_dataset(frame):
        values = _pivot(
            part, lambda row: _format_cell(row, _MARKDOWN), lambda m: _header(m, _MARKDOWN)
        )
        pvalues = _pivot(part, _p_cell, lambda metric: metric)
        sections.append(
            f"## {dataset}\n\n{values.to_markdown(colalign=_align(values))}\n\n"
            "Holm-adjusted p-values against the best method (paired t-test / Wilcoxon):\n\n"
            f"{pvalues.to_markdown(colalign=_align(pvalues))}\n\n"
            f"{_legend(part, _MARKDOWN)}\n"
        )
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


_MARKDOWN = _Style(" ± ", lambda text: f"**{text}**", "*", "↑", "↓", "p < ", str)
_LATEX = _Style(
    r" $\pm$ ",
    lambda text: rf"\textbf{{{text}}}",
    "$^{*}$",
    r"$\uparrow$",
    r"$\downarrow$",
    "$p <$ ",
    latex_escape,
)


def render_latex(frame: pd.DataFrame) -> str:
    """booktabs LaTeX table(s) of "mean $\\pm$ std" per method x metric for a
    `compare_dataset` frame: \\textbf for the best, $^{*}$ for significantly worse."""
    return "\n".join(_latex_table(dataset, part) for dataset, part in _per_dataset(frame))


def _latex_table(dataset: str, part: pd.DataFrame) -> str:
    """One `table` float (booktabs tabular, caption holding the legend) for one dataset."""
    table = _pivot(part, lambda row: _format_cell(row, _LATEX), lambda m: _header(m, _LATEX))
    body = [
        " & ".join([latex_escape(str(method)), *cells]) + r" \\"
        for method, cells in zip(table.index, table.to_numpy(), strict=True)
    ]
    lines = [
        "% Generated by msabench from per-seed run records.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(dataset)}: {_legend(part, _LATEX)}}}",
        rf"\label{{tab:{dataset}}}",
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
    """CSV text of a comparison frame; the list columns are written as JSON strings."""
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


def write_comparison(
    records: list[RunResult], kinds: dict[str, str], out_dir: Path, alpha: float = 0.05
) -> dict[str, dict[str, dict[str, float | None]]]:
    """For each dataset in `records`, write out_dir/tables/<dataset>.{md,tex,csv}; write
    out_dir/metrics.json ({dataset: {method: {metric: mean}}}, NaN as null) and return it.

    `kinds` maps each dataset to its metric kind ("mosi" or "sims"); ConfigError if one is
    missing. All files are written atomically.
    """
    if not records:
        raise DataError("no run records to compare")
    out_dir = Path(out_dir)
    summary: dict[str, dict[str, dict[str, float | None]]] = {}
    for dataset in sorted({r.dataset for r in records}):
        if dataset not in kinds:
            raise ConfigError(f"no metric kind for dataset {dataset!r}; kinds has {sorted(kinds)}")
        frame = compare_dataset([r for r in records if r.dataset == dataset], kinds[dataset], alpha)
        tables = out_dir / "tables"
        write_text_atomic(tables / f"{dataset}.md", render_markdown(frame))
        write_text_atomic(tables / f"{dataset}.tex", render_latex(frame))
        write_text_atomic(tables / f"{dataset}.csv", frame_to_csv(frame))
        summary[dataset] = {
            method: {row["metric"]: to_json_value(float(row["mean"])) for _, row in rows.iterrows()}
            for method, rows in frame.groupby("method", sort=False)
        }
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    write_text_atomic(out_dir / "metrics.json", text)
    return summary
