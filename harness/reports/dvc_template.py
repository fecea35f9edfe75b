"""The Vega-Lite template of `dvc plots` for long-format method data (a `method` column):
.dvc/plots/methods.json, one line per method in its matplotlib colour
(`harness.reports.style.method_colors`), one dash per revision (`dvc plots diff`).

`python -m harness.reports.dvc_template` rewrites the file after a method is added (so its
colours follow the catalog); tests/test_figures_style.py checks the file is up to date. The
template is for the interactive view (docs/architecture.md, "Looking at results with DVC":
`dvc plots show results/figures/<dataset>/tuning-history.csv --template methods ...`), which
loads Vega from a CDN; the default `dvc plots show` draws the figures as images and needs no
network.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.io_utils import write_text_atomic
from harness.reports.style import method_colors

__all__ = ["TEMPLATE_PATH", "main", "render_template", "vega_template"]

TEMPLATE_PATH = Path(".dvc") / "plots" / "methods.json"  # `--template methods` finds it


def _anchor(name: str) -> str:
    """A DVC template anchor ("<DVC_METRIC_X>"), filled by `dvc plots`."""
    return f"<DVC_METRIC_{name.upper()}>"


def vega_template() -> dict:
    """The Vega-Lite spec with DVC's anchors: step lines of y against x, colour = method with
    the figures' colours, stroke dash = revision, tooltips."""
    colors = method_colors()
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": _anchor("data")},
        "title": _anchor("title"),
        "width": 480,
        "height": 300,
        "mark": {"type": "line", "interpolate": "step-after", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": _anchor("x"), "type": "quantitative", "title": _anchor("x_label")},
            "y": {
                "field": _anchor("y"),
                "type": "quantitative",
                "title": _anchor("y_label"),
                "scale": {"zero": False},
            },
            "color": {
                "field": "method",
                "type": "nominal",
                "title": "method",
                "scale": {"domain": list(colors), "range": list(colors.values())},
            },
            "strokeDash": {"field": "rev", "type": "nominal", "title": "revision"},
        },
    }


def render_template() -> str:
    """The template file's text."""
    return json.dumps(vega_template(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the template under the project root given as the only argument (default: .)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path()
    write_text_atomic(root / TEMPLATE_PATH, render_template())
    print(root / TEMPLATE_PATH)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
