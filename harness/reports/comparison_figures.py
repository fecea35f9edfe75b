"""Paper figures of a method comparison: per-seed scores with their means and confidence
intervals (`seed_points_figure`), and tuning histories (`tuning_history_figure`). The CD
diagram lives in `harness.reports.cd_diagram` and is re-exported here. Save with
`harness.reports.figures.save_figure` (identical data give identical bytes).

Decisions:

- Seed points are spread horizontally by fixed offsets (evenly over +-0.22 of a slot, in the
  frame's seed order): no jitter, so the figure is a function of the data alone.
- The mean is a horizontal tick, not a bar: accuracy axes do not start at 0, and a bar's length
  would mislead. The error bar is the frame's 95% CI (`ci_low`..`ci_high`); none when it is
  NaN (a single seed).
- The best method (`is_best`) is drawn in red, its tick label in bold.
- Tuning histories: the running best is a step line; complete trials are small dots; a pruned
  trial is a small x at its best reported intermediate value (the best validation epoch before
  it was stopped, comparable to a complete trial's value, which is its best epoch's score);
  failed trials have no value and are not drawn (the step line runs on through them).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from harness.errors import DataError  # noqa: E402
from harness.metrics import metric_info  # noqa: E402
from harness.reports.cd_diagram import cd_diagram_figure, cd_groups  # noqa: E402
from harness.reports.figures import METRIC_LABELS, PAPER_STYLE  # noqa: E402

__all__ = ["cd_diagram_figure", "cd_groups", "seed_offsets", "seed_points_figure",
           "tuning_history_figure"]  # fmt: skip

_BEST, _OTHER, _POINTS = "tab:red", "black", "tab:blue"
_ARROWS = {True: "\u2191", False: "\u2193"}  # up: higher is better


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
    scale = 100.0 if metric_info(metric).percent else 1.0
    for x, (method, row) in enumerate(rows.iterrows()):
        color = _BEST if bool(row["is_best"]) else _OTHER
        values = np.asarray(row["values"], dtype=np.float64) * scale
        panel.scatter(x + seed_offsets(values.size), values, s=5, linewidths=0, alpha=0.6,
                      color=_BEST if color == _BEST else _POINTS, zorder=2)  # fmt: skip
        mean, low, high = (float(row[key]) * scale for key in ("mean", "ci_low", "ci_high"))
        error = None if math.isnan(low) or math.isnan(high) else [[mean - low], [high - mean]]
        panel.errorbar([x], [mean], yerr=error, fmt="_", markersize=9, markeredgewidth=1.2,
                       elinewidth=0.8, capsize=2, color=color, zorder=3, label=method)  # fmt: skip
    higher = bool(rows["higher_is_better"].iloc[0])
    panel.set_title(f"{METRIC_LABELS.get(metric, metric)} {_ARROWS[higher]}")
    panel.set_xticks(range(len(rows)))
    rotation = 45 if len(rows) <= 6 else 90
    panel.set_xticklabels(rows.index, rotation=rotation, ha="right" if rotation == 45 else "center",
                          rotation_mode="anchor" if rotation == 45 else "default")  # fmt: skip
    for label, best in zip(panel.get_xticklabels(), rows["is_best"], strict=True):
        label.set_fontweight("bold" if bool(best) else "normal")
    panel.set_xlim(-0.6, len(rows) - 0.4)
    panel.grid(True, axis="y", linewidth=0.3, alpha=0.5)


def _handle(label: str, color: str, marker: str, size: float, line: str = "") -> Line2D:
    """A legend entry drawn like the figure's artists."""
    return Line2D([], [], linestyle=line, marker=marker, markersize=size, color=color, label=label)


def _seed_legend_handles() -> list[Line2D]:
    return [
        _handle("seed", _POINTS, "o", 2.5),
        _handle("mean, 95% CI", _OTHER, "_", 9, line="-"),
        _handle("best mean", _BEST, "_", 9, line="-"),
    ]


def seed_points_figure(frame: pd.DataFrame, metrics: tuple[str, ...] | list[str], title: str):
    """One panel per metric (up to 4 per row; 4 panels fill a 7 in double column), x = the
    frame's methods in frame order; `frame` is a comparison frame of ONE dataset
    (`harness.reports.tables`: method, metric, higher_is_better, mean, ci_low, ci_high, is_best,
    values as fractions; percent metrics are drawn x100). DataError if a metric has no row."""
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("seed_points_figure: no metrics to draw")
    if "dataset" in frame and frame["dataset"].nunique() > 1:
        raise DataError(f"{title}: frame mixes datasets {sorted(set(frame['dataset']))}; pass one")
    methods = list(dict.fromkeys(frame["method"]))
    columns = min(4, len(metrics))
    rows = -(-len(metrics) // columns)
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            rows, columns, figsize=(1.7 * columns + 0.3, 2.0 * rows + 0.4), squeeze=False
        )
        for panel, metric in zip(axes.flat, metrics, strict=False):
            _draw_metric_panel(panel, _metric_rows(frame, metric, methods), metric)
        for panel in list(axes.flat)[len(metrics) :]:
            panel.set_visible(False)
        figure.suptitle(title)
        figure.tight_layout()
        figure.legend(handles=_seed_legend_handles(), loc="center left",
                      bbox_to_anchor=(1.0, 0.5), frameon=False)  # fmt: skip
    return figure


def _label_and_scale(metric_label: str) -> tuple[str, float]:
    """A metric name gives its table label and scale (x100 for percent); other text is kept."""
    if metric_label in METRIC_LABELS:
        return METRIC_LABELS[metric_label], 100.0 if metric_info(metric_label).percent else 1.0
    return metric_label, 1.0


def _direction_note(histories: pd.DataFrame) -> str:
    directions = set(histories["direction"]) if "direction" in histories else set()
    if len(directions) != 1:
        return ""
    return f" ({_ARROWS[directions.pop() == 'maximize']} better)"


def tuning_history_figure(histories: pd.DataFrame, title: str, metric_label: str):
    """One axes (3.4 in wide, legend outside on the right): per method, the running best
    validation score against trial number as a step line, complete trials as dots, pruned trials
    as x's at `best_intermediate` (not drawn when the column is absent).

    `histories`: a `harness.tuning.history.tuning_histories` frame (method, trial, state, value,
    best, direction, best_intermediate). `metric_label`: a metric name (labelled and scaled as in
    the tables, e.g. "acc2_has0" -> "Acc-2 has-0 (%)", x100) or free text (values as stored)."""
    if histories.empty:
        raise DataError(f"{title}: no tuning trials to plot")
    label, scale = _label_and_scale(metric_label)
    methods = list(dict.fromkeys(histories["method"]))
    colors = plt.get_cmap("tab10")
    with plt.rc_context(PAPER_STYLE):
        figure, ax = plt.subplots(figsize=(3.4, 2.3))
        for index, method in enumerate(methods):
            part = histories[histories["method"] == method].sort_values("trial")
            color, style = colors(index % 10), ("-", "--", ":")[(index // 10) % 3]
            ax.step(part["trial"], part["best"] * scale, where="post", color=color,
                    linestyle=style, label=method)  # fmt: skip
            done = part[part["state"] == "COMPLETE"]
            ax.scatter(done["trial"], done["value"] * scale, s=6, color=color, linewidths=0,
                       alpha=0.7)  # fmt: skip
            if "best_intermediate" in part:
                pruned = part[part["state"] == "PRUNED"]
                ax.scatter(pruned["trial"], pruned["best_intermediate"] * scale, s=10,
                           marker="x", color=color, linewidths=0.6, alpha=0.7)  # fmt: skip
        ax.set_xlabel("trial")
        ax.set_ylabel(f"validation {label}{_direction_note(histories)}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.set_title(title)
        handles, names = ax.get_legend_handles_labels()
        handles += [
            _handle("complete trial", "grey", "o", 2.5),
            _handle("pruned (best epoch)", "grey", "x", 3),
        ]
        names += [handle.get_label() for handle in handles[len(names) :]]
        figure.tight_layout()
        ax.legend(handles, names, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return figure
