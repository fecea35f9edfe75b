"""Figures (matplotlib, Agg), sized and typeset for a paper, saved as PNG and PDF without
timestamps or version strings in their metadata, so the same data give the same bytes. Colours,
metric labels and fonts come from `harness.reports.style` (one colour per method everywhere).

`rate_curves_figure`: one panel per metric, x = missing rate, one line per method (mean over
seeds) with a band of ± one std over seeds; the input is `harness.reports.robustness.curve_frame`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from harness.io_utils import atomic_path  # noqa: E402
from harness.reports.style import (  # noqa: E402
    MAX_WIDTH_IN,
    PAPER_STYLE,
    method_color,
    method_linestyle,
    metric_scale,
    metric_title,
    percent_ticks,
)

__all__ = ["PAPER_STYLE", "legend_columns", "method_handles", "rate_curves_figure", "save_figure"]

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter

_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}
_PANEL_COLUMNS = 3  # 3 panels of about 2.2 in fill a 7 in text width
_WIDTH_IN = MAX_WIDTH_IN - 0.2  # figure width; saving with a tight box adds 0.1 in each side


def method_handles(methods: list[str]) -> list[Line2D]:
    """Legend entries: one line per method in its colour and line style."""
    return [
        Line2D([], [], color=method_color(m), linestyle=method_linestyle(m), label=m)
        for m in methods
    ]


def legend_columns(entries: int, per_column: int = 6) -> int:
    """Columns of a legend with `entries` entries, at most `per_column` rows each."""
    return max(1, -(-entries // per_column))


def rate_curves_figure(curves: pd.DataFrame, title: str, metrics: tuple[str, ...]):
    """Figure with one panel per metric (3 per row, then more rows: at most 7 in wide) for ONE
    condition's curves (columns: method, rate, metric, mean, std); the method legend fills the
    first free panel, or runs below the panels when none is free."""
    columns = min(_PANEL_COLUMNS, len(metrics))
    rows = -(-len(metrics) // columns)
    methods = list(dict.fromkeys(curves["method"]))
    free = rows * columns - len(metrics)
    below = 0.0 if free else 0.2 * -(-len(methods) // 4) + 0.15  # height of a legend below
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            rows,
            columns,
            figsize=(_WIDTH_IN * columns / _PANEL_COLUMNS, 2.0 * rows + 0.45 + below),
            squeeze=False,
        )
        for panel, metric in zip(axes.flat, metrics, strict=False):
            _draw_rate_panel(panel, curves[curves["metric"] == metric], methods, metric)
        for panel in list(axes.flat)[len(metrics) :]:
            panel.set_axis_off()
        figure.suptitle(title)
        handles = method_handles(methods)
        if free:
            # two columns of up to 10 (the 20 default methods): a third would widen the figure
            axes.flat[len(metrics)].legend(handles=handles, loc="center", frameon=False,
                                           ncol=legend_columns(len(handles), 10))  # fmt: skip
            figure.tight_layout()
        else:
            figure.tight_layout(rect=(0.0, below / figure.get_figheight(), 1.0, 1.0))
            figure.legend(handles=handles, loc="lower center", frameon=False,
                          ncol=min(4, len(handles)))  # fmt: skip
    return figure


def _draw_rate_panel(panel, curves: pd.DataFrame, methods: list[str], metric: str) -> None:
    """One metric's mean curve and ± std band of each method against the missing rate."""
    scale = metric_scale(metric)
    for method in methods:
        part = curves[curves["method"] == method].sort_values("rate")
        mean = part["mean"].to_numpy() * scale
        std = part["std"].fillna(0).to_numpy() * scale
        color = method_color(method)
        panel.plot(part["rate"], mean, color=color, linestyle=method_linestyle(method),
                   label=method)  # fmt: skip
        panel.fill_between(part["rate"], mean - std, mean + std, color=color, alpha=0.15,
                           linewidth=0)  # fmt: skip
    panel.set_title(metric_title(metric, wrap=True))
    panel.set_xlabel("missing rate r")
    percent_ticks(panel.yaxis, metric)
    panel.grid(True, linewidth=0.3, alpha=0.5)


def save_figure(figure, stem: str | Path) -> list[Path]:
    """Write `stem`.png (200 dpi) and `stem`.pdf atomically; close the figure; return the paths."""
    written = []
    for extension in ("png", "pdf"):
        target = Path(f"{stem}.{extension}")
        # the style again: pdf.fonttype and svg.hashsalt are read when saving, not when drawing
        with atomic_path(target) as tmp, plt.rc_context(PAPER_STYLE):
            figure.savefig(
                tmp, format=extension, dpi=200, metadata=_METADATA[extension], bbox_inches="tight"
            )
        written.append(target)
    plt.close(figure)
    return written
