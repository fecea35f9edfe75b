"""Paper figures of a method comparison: per-seed scores with their means and confidence
intervals (`seed_points_figure`), tuning histories (`tuning_history_figure`), and accuracy
against training time (`accuracy_cost_figure`). The CD
diagram lives in `harness.reports.cd_diagram` and is re-exported here. Save with
`harness.reports.figures.save_figure` (identical data give identical bytes).

Decisions:

- Seed points are spread horizontally by fixed offsets (evenly over +-0.22 of a slot, in the
  frame's seed order): no jitter, so the figure is a function of the data alone.
- The mean is a horizontal tick, not a bar: accuracy axes do not start at 0, and a bar's length
  would mislead. The error bar is the frame's 95% CI (`ci_low`..`ci_high`); none when it is
  NaN (a single seed).
- Every method is drawn in its own colour (`harness.reports.style.method_color`, the same in
  every figure); the best method (`is_best`) has a wider, thicker mean tick and a bold tick label.
- Metrics are named by `harness.metrics.metric_label` with their direction; percent metrics are
  drawn x100 with "%" ticks. Figures are at most 7 in wide as saved, with 8 pt text.
- Tuning histories: the running best is a step line; complete trials are small dots; a pruned
  trial is a small x at its best reported intermediate value (the best validation epoch before
  it was stopped, comparable to a complete trial's value, which is its best epoch's score);
  failed trials have no value and are not drawn (the step line runs on through them).
- Accuracy against cost: x = training seconds per seed (the fit; log scale: methods differ by
  orders of magnitude), y = the selection metric, one point per method at its seed means with
  error bars of one std over seeds in both directions (on the log axis the lower x bar stops at
  5% of the mean when the std reaches the mean), each labelled with the method's name.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from harness.errors import DataError, UnknownNameError  # noqa: E402
from harness.reports.cd_diagram import cd_diagram_figure, cd_groups  # noqa: E402
from harness.reports.figures import legend_columns, method_handles  # noqa: E402
from harness.reports.style import (  # noqa: E402
    MAX_WIDTH_IN,
    PAPER_STYLE,
    method_color,
    method_linestyle,
    metric_scale,
    metric_title,
    percent_ticks,
)

__all__ = ["accuracy_cost_figure", "cd_diagram_figure", "cd_groups", "seed_offsets",
           "seed_points_figure", "tuning_history_figure"]  # fmt: skip

_KEY = "dimgray"  # legend entries that explain a marker, not a method
_MEAN = {"markersize": 9, "markeredgewidth": 1.2}
_BEST_MEAN = {"markersize": 13, "markeredgewidth": 2.4}
_DIRECTIONS = {"maximize": "\u2191 higher is better", "minimize": "\u2193 lower is better"}


def seed_offsets(count: int, spread: float = 0.22) -> np.ndarray:
    """Horizontal offsets (count,) of `count` seed points around their slot: evenly spaced
    over [-spread, spread], 0 for a single point."""
    if count <= 1:
        return np.zeros(max(count, 0))
    return np.linspace(-spread, spread, count)


def _metric_rows(frame: pd.DataFrame, metric: str, methods: list[str]) -> pd.DataFrame:
    """The frame's rows of `metric`, one per method, in `methods` order; DataError if absent."""
    rows = frame[frame["metric"] == metric].drop_duplicates("method").set_index("method")
    missing = [method for method in methods if method not in rows.index]
    if missing:
        raise DataError(f"comparison frame has no {metric!r} row for method(s) {missing}")
    return rows.loc[methods]


def _draw_metric_panel(panel, rows: pd.DataFrame, metric: str) -> None:
    """Seed points, mean tick and CI bar of each method (x = 0..n-1) on one panel."""
    scale = metric_scale(metric)
    for x, (method, row) in enumerate(rows.iterrows()):
        color = method_color(str(method))
        values = np.asarray(row["values"], dtype=np.float64) * scale
        panel.scatter(x + seed_offsets(values.size), values, s=5, linewidths=0, alpha=0.6,
                      color=color, zorder=2)  # fmt: skip
        mean, low, high = (float(row[key]) * scale for key in ("mean", "ci_low", "ci_high"))
        error = None if math.isnan(low) or math.isnan(high) else [[mean - low], [high - mean]]
        tick = _BEST_MEAN if bool(row["is_best"]) else _MEAN
        panel.errorbar([x], [mean], yerr=error, fmt="_", elinewidth=0.8, capsize=2, color=color,
                       zorder=3, label=method, **tick)  # fmt: skip
    panel.set_title(metric_title(metric, wrap=True))
    percent_ticks(panel.yaxis, metric)
    panel.set_xticks(range(len(rows)))
    rotation = 45 if len(rows) <= 6 else 90
    panel.set_xticklabels(rows.index, rotation=rotation, ha="right" if rotation == 45 else "center",
                          rotation_mode="anchor" if rotation == 45 else "default")  # fmt: skip
    for label, best in zip(panel.get_xticklabels(), rows["is_best"], strict=True):
        label.set_fontweight("bold" if bool(best) else "normal")
    panel.set_xlim(-0.6, len(rows) - 0.4)
    panel.grid(True, axis="y", linewidth=0.3, alpha=0.5)


def _handle(label: str, color: str, marker: str, size: float, line: str = "", **style) -> Line2D:
    """A legend entry drawn like the figure's artists."""
    return Line2D([], [], linestyle=line, marker=marker, markersize=size, color=color, label=label,
                  **style)  # fmt: skip


def _seed_legend_handles() -> list[Line2D]:
    """The key of the seed figure's markers (the methods are named on the x axis)."""
    return [
        _handle("seed", _KEY, "o", 2.5),
        _handle("mean, 95% CI", _KEY, "_", _MEAN["markersize"], line="-",
                markeredgewidth=_MEAN["markeredgewidth"]),
        _handle("best mean (name in bold)", _KEY, "_", _BEST_MEAN["markersize"], line="-",
                markeredgewidth=_BEST_MEAN["markeredgewidth"]),
    ]  # fmt: skip


def seed_points_figure(frame: pd.DataFrame, metrics: tuple[str, ...] | list[str], title: str):
    """One panel per metric (up to 4 per row; 4 panels fill a 7 in double column, the key below
    them), x = the frame's methods in frame order, each in its colour; `frame` is a comparison
    frame of ONE dataset (`harness.reports.tables`: method, metric, higher_is_better, mean,
    ci_low, ci_high, is_best, values as fractions; percent metrics are drawn x100). DataError if
    a metric has no row."""
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("seed_points_figure: no metrics to draw")
    if "dataset" in frame and frame["dataset"].nunique() > 1:
        raise DataError(f"{title}: frame mixes datasets {sorted(set(frame['dataset']))}; pass one")
    methods = list(dict.fromkeys(frame["method"]))
    columns = min(4, len(metrics))
    rows = -(-len(metrics) // columns)
    width = min(MAX_WIDTH_IN - 0.2, 1.65 * columns + 0.4)
    key = 0.3  # inches below the panels for the key
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            rows, columns, figsize=(width, 2.3 * rows + 0.4 + key), squeeze=False
        )
        for panel, metric in zip(axes.flat, metrics, strict=False):
            _draw_metric_panel(panel, _metric_rows(frame, metric, methods), metric)
        for panel in list(axes.flat)[len(metrics) :]:
            panel.set_visible(False)
        figure.suptitle(title)
        figure.tight_layout(rect=(0.0, key / figure.get_figheight(), 1.0, 1.0))
        figure.legend(handles=_seed_legend_handles(), loc="lower center", ncol=3,
                      frameon=False)  # fmt: skip
    return figure


def _axis_label(metric: str, histories: pd.DataFrame) -> tuple[str, float]:
    """The y label and scale of a tuning figure: "validation <label>" over "(<direction>)" and
    x100 for a percent metric when `metric` is a metric name; free text is kept (over the
    studies' direction when they share one, and "validation" in front unless it is there
    already), values as stored."""
    try:
        label, scale = metric_title(metric, wrap=True), metric_scale(metric)
    except UnknownNameError:  # free text
        directions = set(histories["direction"]) if "direction" in histories else set()
        note = f"\n({_DIRECTIONS[directions.pop()]})" if len(directions) == 1 else ""
        label, scale = f"{metric}{note}", 1.0
    if label.lower().split()[:1] != ["validation"]:
        label = f"validation {label}"
    return label, scale


def tuning_history_figure(histories: pd.DataFrame, title: str, metric: str):
    """One axes (3.4 in wide, legend outside on the right; under 7 in as saved): per method, in
    its colour, the running best validation score against trial number as a step line, complete
    trials as dots, pruned trials as x's at `best_intermediate` (not drawn when the column is
    absent).

    `histories`: a `harness.tuning.history.tuning_histories` frame (method, trial, state, value,
    best, direction, best_intermediate). `metric`: the metric tuned (`train.select_metric`;
    labelled "validation MAE (↓ lower is better)", percent metrics x100) or free text (values as
    stored)."""
    if histories.empty:
        raise DataError(f"{title}: no tuning trials to plot")
    label, scale = _axis_label(metric, histories)
    methods = list(dict.fromkeys(histories["method"]))
    with plt.rc_context(PAPER_STYLE):
        figure, ax = plt.subplots(figsize=(3.4, 2.6))
        for method in methods:
            part = histories[histories["method"] == method].sort_values("trial")
            color = method_color(method)
            ax.step(part["trial"], part["best"] * scale, where="post", color=color,
                    linestyle=method_linestyle(method), label=method)  # fmt: skip
            done = part[part["state"] == "COMPLETE"]
            ax.scatter(done["trial"], done["value"] * scale, s=6, color=color, linewidths=0,
                       alpha=0.7)  # fmt: skip
            if "best_intermediate" in part:
                pruned = part[part["state"] == "PRUNED"]
                ax.scatter(pruned["trial"], pruned["best_intermediate"] * scale, s=10,
                           marker="x", color=color, linewidths=0.6, alpha=0.7)  # fmt: skip
        ax.set_xlabel("trial")
        ax.set_ylabel(label)
        if scale != 1.0:
            percent_ticks(ax.yaxis, metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.set_title(title)
        handles = method_handles(methods) + [
            _handle("complete trial", _KEY, "o", 2.5),
            _handle("pruned (best epoch)", _KEY, "x", 3),
        ]
        figure.tight_layout()
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False,
                  ncol=legend_columns(len(handles), per_column=13))  # fmt: skip
    return figure


def accuracy_cost_figure(points: pd.DataFrame, metric: str, title: str):
    """One axes (3.4 in wide): per method, in its colour, its mean `metric` score against its
    mean training seconds (log x), error bars of one std over seeds both ways, its name beside
    the point. `points`: `harness.statistics.cost.accuracy_cost_points` (method,
    train_seconds_total, train_seconds_total_std, mean, std; scores as fractions, percent
    metrics drawn x100). DataError when it is empty."""
    if points.empty:
        raise DataError(f"{title}: no method with a measured cost to plot")
    scale = metric_scale(metric)
    with plt.rc_context(PAPER_STYLE):
        figure, ax = plt.subplots(figsize=(3.4, 2.8))
        for _, row in points.iterrows():
            method, x, y = str(row["method"]), float(row["train_seconds_total"]), float(row["mean"])
            x_std, y_std = float(row["train_seconds_total_std"]), float(row["std"]) * scale
            x_error = None if math.isnan(x_std) else [[min(x_std, 0.95 * x)], [x_std]]
            y_error = None if math.isnan(y_std) else [[y_std], [y_std]]
            ax.errorbar([x], [y * scale], xerr=x_error, yerr=y_error, fmt="o", markersize=4,
                        elinewidth=0.8, capsize=2, color=method_color(method),
                        label=method)  # fmt: skip
            ax.annotate(method, (x, y * scale), xytext=(4, 3), textcoords="offset points",
                        fontsize=8, color=method_color(method))  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
        ax.set_xlabel("training time per seed (s, log scale)")
        ax.set_ylabel(metric_title(metric, wrap=True))
        percent_ticks(ax.yaxis, metric)
        ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
        ax.margins(x=0.15, y=0.12)
        ax.set_title(title)
        figure.tight_layout()
    return figure
