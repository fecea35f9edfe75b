"""The look every figure shares: one colour (and line style) per method, one label per metric,
and the paper typesetting (fonts, maximum width).

Decisions:

- A method's colour comes from its position in the method catalog (`methods.METHOD_MODULES`,
  the method modules in name order; listing them imports no method), so it is the same in every
  figure, whichever methods a figure draws and in whatever order. `PALETTE` has 20 colours (the
  20 default methods get 20 distinct ones); from the 21st method on the colours repeat with
  dashed, then dotted lines. A name that is not in the catalog (a test's toy method) is placed
  after the catalog by a checksum of its name: stable, but it may share a colour.
- Metrics are named only by `harness.metrics.metric_label` ("Acc-2 (has-0)", "MAE"); an axis or
  panel title also states the direction ("(↑ higher is better)"). Percent metrics are drawn
  x100 with "%" on their ticks.
- Figures are at most `MAX_WIDTH_IN` (7 in: a two-column text width) wide as saved, and no text
  is smaller than `MIN_FONT_PT` (8 pt), so they are printed at their natural size, unscaled.
- The Vega-Lite template for `dvc plots` (.dvc/plots/methods.json, written by
  `harness.reports.dvc_template`) uses `method_colors` too.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from matplotlib.ticker import FuncFormatter

from harness.metrics import metric_info, metric_label
from methods import METHOD_MODULES

__all__ = [
    "MAX_WIDTH_IN",
    "MIN_FONT_PT",
    "PALETTE",
    "PAPER_STYLE",
    "method_color",
    "method_colors",
    "method_linestyle",
    "metric_scale",
    "metric_title",
    "percent_ticks",
]

MAX_WIDTH_IN = 7.0  # a saved figure's width at most (two-column text width)
MIN_FONT_PT = 8.0  # no text smaller, at the saved size

PAPER_STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 9,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,  # TrueType: editable text, accepted by paper submission systems
    "svg.hashsalt": "msabench",
}

# tab10, then ten more hues distinct from it (tab20b's dark indigo, light olive, brick, plum,
# mustard, periwinkle, dark olive, rose, orchid and lavender)
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#8ca252",
    "#843c39", "#7b4173", "#e7ba52", "#6b6ecf", "#637939", "#d6616b",
    "#ce6dbd", "#9c9ede",
)  # fmt: skip
LINESTYLES: tuple[str, ...] = ("-", "--", ":")


def _method_index(method: str) -> int:
    """The method's position in the catalog; after it (by a checksum) for an unknown name."""
    names = METHOD_MODULES.names()
    if method in names:
        return names.index(method)
    return len(names) + zlib.crc32(method.encode("utf-8")) % (len(PALETTE) * len(LINESTYLES))


def method_color(method: str) -> str:
    """The hex colour of `method` in every figure."""
    return PALETTE[_method_index(method) % len(PALETTE)]


def method_linestyle(method: str) -> str:
    """The line style of `method`'s curves: solid, then dashed and dotted once colours repeat."""
    return LINESTYLES[(_method_index(method) // len(PALETTE)) % len(LINESTYLES)]


def method_colors(methods: Iterable[str] | None = None) -> dict[str, str]:
    """{method: hex colour} of `methods` (default: every method in the catalog)."""
    names = METHOD_MODULES.names() if methods is None else list(methods)
    return {name: method_color(name) for name in names}


def metric_title(metric: str, wrap: bool = False) -> str:
    """A metric's label with its direction ("MAE (↓ lower is better)"), for an axis or a panel
    title; `wrap` puts the direction on a second line (narrow panels)."""
    text = metric_label(metric, direction=True)
    if not wrap:
        return text
    label = metric_label(metric)
    return f"{label}\n{text[len(label) :].strip()}"


def metric_scale(metric: str) -> float:
    """The factor a metric's stored value is drawn with: 100 for a percent metric, else 1."""
    return 100.0 if metric_info(metric).percent else 1.0


def percent_ticks(axis, metric: str) -> None:
    """Label `axis`'s ticks (a matplotlib x or y Axis) with "%" when `metric` is a percent
    ("80%", "72.5%": the locator's round values, no padding zeros)."""
    if metric_info(metric).percent:
        axis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}%"))
