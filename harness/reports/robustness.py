"""Tables of the missing-modality protocol, from `RobustnessRecord`s of one dataset.

* Area under the rate curve (AUILC): per (condition, method, seed, metric), the trapezoid rule
  over the rates 0.0-0.9 of the metric's values (`area_under_curve`); the area of a constant
  curve c is 0.9 c. Each condition's table compares the areas across methods exactly like the
  main comparison table (mean ± std over seeds, paired t-test and Wilcoxon against the best
  method, Holm-corrected; `harness.statistics.comparison.compare_values`).
* Curves: per (condition, method, rate, metric) mean and std over seeds (`curve_frame`), the
  data of the figures (harness/reports/figures.py) and of curves.csv.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pandas as pd

from harness.config.sections import CompareConfig
from harness.errors import DataError
from harness.evaluation.robustness import CONDITIONS, RobustnessRecord, describe_condition
from harness.metrics import METRICS
from harness.reports.comparison_files import frame_to_csv, to_json_value
from harness.reports.tables import format_cell, render_markdown
from harness.statistics.comparison import compare_values

CURVE_COLUMNS = ("condition", "method", "rate", "metric", "n_seeds", "mean", "std")


def area_under_curve(rates: np.ndarray, values: np.ndarray) -> float:
    """Trapezoid-rule area of values (R,) over increasing rates (R,); NaN if any value is."""
    rates, values = np.asarray(rates, dtype=float), np.asarray(values, dtype=float)
    if rates.ndim != 1 or rates.shape != values.shape or rates.size < 2:
        raise ValueError(f"rates and values: expected two 1-D arrays of length >= 2 alike, got "
                         f"shapes {rates.shape} and {values.shape}")  # fmt: skip
    if np.any(np.diff(rates) <= 0):
        raise ValueError(f"rates: expected strictly increasing values, got {rates.tolist()}")
    return float(np.trapezoid(values, rates))


def _grouped(records: list[RobustnessRecord]) -> dict:
    """{condition: {method: {seed: {rate: metrics}}}}; DataError on a repeated entry."""
    grouped: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for r in records:
        rates = grouped[r.condition][r.method][r.seed]
        if r.rate in rates:
            raise DataError(
                f"robustness records repeat {r.method}/seed {r.seed}/{r.condition} at rate {r.rate}"
            )
        rates[r.rate] = r.metrics
    return grouped


def areas(
    records: list[RobustnessRecord], kind: str, lost: bool = False
) -> dict[str, dict[str, dict[int, dict]]]:
    """{condition: {method: {seed: {metric: area}}}} for every metric of `kind`; with `lost`,
    the area lost to missing data instead: area - (r_max - r_min) x value at r_min (0 for a flat
    curve; negative for a falling accuracy, positive for a rising MAE, so each metric keeps its
    direction), which separates robustness from complete-data performance. DataError if a
    (method, seed) lacks a rate another one has within a condition."""
    result: dict[str, dict[str, dict[int, dict]]] = {}
    for condition, methods in _grouped(records).items():
        expected = sorted(
            {rate for seeds in methods.values() for r in seeds.values() for rate in r}
        )
        result[condition] = {}
        for method, seeds in sorted(methods.items()):
            result[condition][method] = {}
            for seed, by_rate in sorted(seeds.items()):
                if sorted(by_rate) != expected:
                    raise DataError(
                        f"robustness records of {method}/seed {seed}/{condition} have rates "
                        f"{sorted(by_rate)}, expected {expected}"
                    )
                rates = np.array(expected)
                flat = (rates[-1] - rates[0]) if lost else 0.0
                result[condition][method][seed] = {
                    metric: area_under_curve(
                        rates, np.array([by_rate[r][metric] for r in expected])
                    )
                    - flat * by_rate[expected[0]][metric]
                    for metric in METRICS[kind]
                }
    return result


def area_frames(
    records: list[RobustnessRecord],
    dataset: str,
    kind: str,
    settings: CompareConfig | None = None,
) -> dict[str, pd.DataFrame]:
    """{condition: comparison frame of the areas} in CONDITIONS order (one table per
    condition: Holm across its metrics x methods)."""
    if not records:
        raise DataError(f"{dataset}: no robustness records")
    by_condition = areas(records, kind)
    return {
        condition: compare_values(
            f"{dataset} — {describe_condition(condition)}",
            by_condition[condition],
            METRICS[kind],
            settings,
        )
        for condition in CONDITIONS
        if condition in by_condition
    }


HEADLINE = {
    "mosi": ("acc2_non0", "mae"),
    "mosei": ("acc2_non0", "mae"),
    "sims": ("acc2", "mae"),
    "binary": ("accuracy", "f1_weighted"),
}


def lost_area_frames(
    records: list[RobustnessRecord],
    dataset: str,
    kind: str,
    settings: CompareConfig | None = None,
) -> dict[str, pd.DataFrame]:
    """{condition: comparison frame of the lost areas (`areas(lost=True)`) of the headline
    metrics (Acc-2 and MAE)}, in CONDITIONS order."""
    by_condition = areas(records, kind, lost=True)
    return {
        condition: compare_values(
            f"{dataset} lost area: {condition}", by_condition[condition], HEADLINE[kind], settings
        )
        for condition in CONDITIONS
        if condition in by_condition
    }


def render_lost_summary(lost: dict[str, pd.DataFrame]) -> str:
    """Markdown: per headline metric a methods x conditions table of the lost area."""
    sections = []
    for metric in dict.fromkeys(m for frame in lost.values() for m in frame["metric"]):
        columns = {
            condition: {
                row["method"]: format_cell(row)
                for _, row in frame[frame["metric"] == metric].iterrows()
            }
            for condition, frame in lost.items()
        }
        table = pd.DataFrame(columns)
        table.index.name = "method"
        sections.append(
            f"Area lost to missing data, {METRIC_TITLES.get(metric, metric)}:\n\n"
            f"{table.to_markdown(colalign=('left',) + ('right',) * table.shape[1])}\n"
        )
    return "\n".join(sections)


METRIC_TITLES = {"acc2_non0": "Acc-2 non-0 (%, higher = less lost)", "acc2": "Acc-2 (%, higher "
                 "= less lost)", "mae": "MAE (lower = less lost)"}  # fmt: skip


def curve_frame(records: list[RobustnessRecord], kind: str) -> pd.DataFrame:
    """Long frame (CURVE_COLUMNS): mean and std (ddof=1; NaN for one seed) over seeds."""
    rows = []
    for condition, methods in _grouped(records).items():
        for method, seeds in sorted(methods.items()):
            rates = sorted({rate for by_rate in seeds.values() for rate in by_rate})
            for rate in rates:
                for metric in METRICS[kind]:
                    values = np.array(
                        [by_rate[rate][metric] for by_rate in seeds.values() if rate in by_rate]
                    )
                    std = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
                    rows.append((condition, method, rate, metric, values.size,
                                 float(np.mean(values)), std))  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(CURVE_COLUMNS))
    order = {c: i for i, c in enumerate(CONDITIONS)}
    return frame.sort_values(
        ["condition", "method", "metric", "rate"],
        key=lambda c: c.map(order) if c.name == "condition" else c,
    ).reset_index(drop=True)


def render_report(
    dataset: str, frames: dict[str, pd.DataFrame], lost: dict[str, pd.DataFrame], missing_seed: int
) -> str:
    """Markdown: the protocol in one paragraph, the lost-area summary, then one area table per
    condition."""
    intro = (
        f"# Missing-modality robustness on {dataset}\n\n"
        "Area under the metric-vs-missing-rate curve (trapezoid rule over r = 0.0, 0.1, ..., 0.9; "
        "a method unaffected by missing data scores 0.9 x its complete-data value; MAE: lower "
        f"is better). Test split; masks fixed by missing seed {missing_seed}, identical for "
        "every method. Intra-modal: each real frame/token dropped (zero-filled) with "
        "probability r. Inter-modal: the named modalities zero-filled in a fraction r of the "
        "samples.\n\n"
    )
    summary = (
        "## How much each method loses\n\n"
        "Area lost = area - 0.9 x the complete-data value (0 for a method that loses nothing; "
        "accuracy: negative, MAE: positive), which separates robustness from complete-data "
        "performance. Columns: the conditions (intra = intra-modal; drop-x = inter-modal). "
        "Mean ± std over seeds; bold = least lost; * = loses significantly more than the "
        "least (paired t-test, Holm-adjusted across the condition's metrics and methods).\n\n"
        f"{render_lost_summary(lost)}\n"
        "## Area under the rate curve, per condition\n\n"
    )
    body = "\n".join(render_markdown(frame) for frame in frames.values())
    return intro + summary + body.replace("\n## ", "\n### ").replace("## ", "### ", 1)


def metrics_summary(frames: dict[str, pd.DataFrame]) -> dict:
    """{condition: {method: {metric: mean area}}} (NaN as null) for `dvc metrics`."""
    return {
        condition: {
            method: {row["metric"]: to_json_value(float(row["mean"])) for _, row in rows.iterrows()}
            for method, rows in frame.groupby("method", sort=False)
        }
        for condition, frame in frames.items()
    }


def areas_csv(frames: dict[str, pd.DataFrame]) -> str:
    """All conditions' area frames in one CSV, with a `condition` column first."""
    combined = pd.concat(
        [frame.assign(condition=condition) for condition, frame in frames.items()],
        ignore_index=True,
    )
    columns = ["condition"] + [c for c in combined.columns if c != "condition"]
    return frame_to_csv(combined[columns])


def dumps_metrics(summary: dict) -> str:
    return json.dumps(summary, indent=2, allow_nan=False) + "\n"
