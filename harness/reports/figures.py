"""Figures (matplotlib, Agg), sized and typeset for a paper, saved as PNG and PDF without
timestamps or version strings in their metadata, so the same data give the same bytes.

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

from harness.io_utils import atomic_path  # noqa: E402
from harness.metrics import metric_info  # noqa: E402

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter

PAPER_STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,  # TrueType: editable text, accepted by paper submission systems
    "svg.hashsalt": "msabench",
}
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}
METRIC_LABELS = {
    "acc2_has0": "Acc-2 has-0 (%)", "f1_has0": "F1 has-0 (%)", "acc2_non0": "Acc-2 non-0 (%)",
    "f1_non0": "F1 non-0 (%)", "acc5": "Acc-5 (%)", "acc7": "Acc-7 (%)", "mae": "MAE",
    "corr": "Corr", "acc2": "Acc-2 (%)", "acc3": "Acc-3 (%)", "f1": "F1 (%)",
}  # fmt: skip


def rate_curves_figure(curves: pd.DataFrame, title: str, metrics: tuple[str, ...]):
    """Figure with one panel per metric (up to 5 per row) for ONE condition's curves
    (columns: method, rate, metric, mean, std)."""
    columns = min(5, len(metrics))
    rows = -(-len(metrics) // columns)
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            rows, columns, figsize=(1.75 * columns + 0.2, 1.6 * rows + 0.55), squeeze=False
        )
        methods = list(dict.fromkeys(curves["method"]))
        colors = plt.get_cmap("tab10")  # distinct hues; dashed lines from the 11th method on
        for panel, metric in zip(axes.flat, metrics, strict=False):
            scale = 100.0 if metric_info(metric).percent else 1.0
            for i, method in enumerate(methods):
                part = curves[(curves["method"] == method) & (curves["metric"] == metric)]
                part = part.sort_values("rate")
                mean, std = (
                    part["mean"].to_numpy() * scale,
                    part["std"].fillna(0).to_numpy() * scale,
                )
                color, style = colors(i % 10), ("-", "--", ":")[(i // 10) % 3]
                panel.plot(part["rate"], mean, color=color, linestyle=style, label=method)
                panel.fill_between(part["rate"], mean - std, mean + std, color=color, alpha=0.15,
                                   linewidth=0)  # fmt: skip
            panel.set_title(METRIC_LABELS.get(metric, metric))
            panel.set_xlabel("missing rate r")
            panel.grid(True, linewidth=0.3, alpha=0.5)
        for panel in list(axes.flat)[len(metrics) :]:
            panel.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        figure.suptitle(title)
        figure.tight_layout()
        figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
                      frameon=False)  # fmt: skip
    return figure


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
