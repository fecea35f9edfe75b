"""One look across figures: each method has the same colour in every figure (and in the DVC plot
template), metrics are named by their display label and direction with no doubled words,
figures are at most 7 in wide as saved with no text under 8 pt; the headline metrics files
hold numbers only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text

from harness.metrics import METRICS, metric_label
from harness.reports.cd_diagram import cd_diagram_figure
from harness.reports.comparison_figures import (
    accuracy_cost_figure,
    seed_points_figure,
    tuning_history_figure,
)
from harness.reports.dvc_template import TEMPLATE_PATH, render_template, vega_template
from harness.reports.figures import rate_curves_figure
from harness.reports.headline import HEADLINE_METRICS, headline_rows, write_headline
from harness.reports.style import (
    MAX_WIDTH_IN,
    MIN_FONT_PT,
    PALETTE,
    method_color,
    method_colors,
    method_linestyle,
)
from harness.statistics.ranks import FriedmanNemenyi
from methods import METHOD_MODULES

REPO = Path(__file__).resolve().parents[1]
METHODS = METHOD_MODULES.names()  # every method: the widest legends and axes
FIGURE_METRICS = ("acc2_non0", "f1_non0", "acc7", "mae", "corr")  # the robustness figures'


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _comparison(metrics=METRICS["mosi"]) -> pd.DataFrame:
    """A comparison frame of every method x `metrics` x 5 seeds (the columns figures read)."""
    rows = []
    for i, method in enumerate(METHODS):
        for metric in metrics:
            values = [0.6 + 0.01 * i + 0.002 * s for s in range(5)]
            mean = float(np.mean(values))
            rows.append({"dataset": "d", "method": method, "metric": metric,
                         "higher_is_better": metric != "mae", "n_seeds": 5, "mean": mean,
                         "ci_low": mean - 0.01, "ci_high": mean + 0.01, "is_best": i == 0,
                         "seeds": list(range(5)), "values": values})  # fmt: skip
    return pd.DataFrame(rows)


def _histories() -> pd.DataFrame:
    rows = []
    for i, method in enumerate(METHODS):
        for trial in range(4):
            value = 0.9 - 0.01 * i - 0.02 * trial
            rows.append({"method": method, "trial": trial, "state": "COMPLETE", "value": value,
                         "best": value, "direction": "minimize",
                         "best_intermediate": value})  # fmt: skip
    return pd.DataFrame(rows)


def _curves(metrics=FIGURE_METRICS) -> pd.DataFrame:
    rows = [
        {"method": method, "rate": rate / 10, "metric": metric, "mean": 0.7 - rate / 50 - i / 100,
         "std": 0.01}
        for i, method in enumerate(METHODS)
        for metric in metrics
        for rate in range(10)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _cost_points() -> pd.DataFrame:
    """Every method's training seconds (spanning 3 decades) and MAE, with seed spreads."""
    return pd.DataFrame(
        {"method": METHODS, "train_seconds_total": [10.0 * 1.9**i for i in range(len(METHODS))],
         "train_seconds_total_std": 3.0, "metric": "mae",
         "mean": [0.9 - 0.02 * i for i in range(len(METHODS))], "std": 0.01, "n_seeds": 5}
    )  # fmt: skip


def _cd():
    ranks = {method: 1.0 + i * 0.8 for i, method in enumerate(METHODS)}
    result = FriedmanNemenyi(methods=tuple(METHODS), mean_ranks=ranks, statistic=20.0,
                             pvalue=0.01, critical_difference=3.0, n_datasets=4,
                             alpha=0.05)  # fmt: skip
    return cd_diagram_figure(result, f"{metric_label('acc2_has0')}: mean rank across datasets")


FIGURES = {
    "seed scores": lambda: seed_points_figure(_comparison(), METRICS["mosi"], "d: test scores"),
    "tuning history": lambda: tuning_history_figure(_histories(), "d: tuning", "mae"),
    "robustness curves": lambda: rate_curves_figure(_curves(), "d: intra", FIGURE_METRICS),
    "robustness curves, full rows": lambda: rate_curves_figure(
        _curves(FIGURE_METRICS[:3]), "d: intra", FIGURE_METRICS[:3]
    ),
    "CD diagram": _cd,
    "accuracy against cost": lambda: accuracy_cost_figure(
        _cost_points(), "mae", "d: MAE against training time"
    ),
}


def _texts(figure) -> list[Text]:
    figure.canvas.draw()
    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_every_catalog_method_has_its_own_colour_in_catalog_order() -> None:
    colors = method_colors()
    assert list(colors) == METHODS
    assert len(set(colors.values())) == len(METHODS) <= len(PALETTE)
    assert colors == {m: PALETTE[i] for i, m in enumerate(METHODS)}
    assert {method_linestyle(m) for m in METHODS} == {"-"}
    assert method_color("not_a_method") == method_color("not_a_method")  # stable for any name


def _method_colours(name: str, figure) -> dict[str, str]:
    """{method: hex colour} as `figure` draws each method."""
    if name in ("seed scores", "accuracy against cost"):
        panel = figure.axes[0]
        return {
            c.get_label(): to_hex(c.lines[0].get_color()) for c in panel.containers
        }  # errorbar containers: one per method, labelled with it
    if name == "CD diagram":
        return {t.get_text(): to_hex(t.get_color()) for t in figure.axes[0].texts
                if t.get_text() in METHODS}  # fmt: skip
    lines = [line for ax in figure.axes for line in ax.lines]
    return {line.get_label(): to_hex(line.get_color()) for line in lines
            if line.get_label() in METHODS}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_method_has_the_same_colour_in_every_figure(name: str) -> None:
    drawn = _method_colours(name, FIGURES[name]())
    assert drawn == method_colors(METHODS), name


def test_the_dvc_plot_template_uses_the_figures_colours_and_is_up_to_date() -> None:
    scale = vega_template()["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == method_colors()
    assert (REPO / TEMPLATE_PATH).read_text(encoding="utf-8") == render_template(), (
        "run `python -m harness.reports.dvc_template` to refresh .dvc/plots/methods.json"
    )


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_are_at_most_7_in_wide_with_text_of_at_least_8_pt(name: str) -> None:
    figure = FIGURES[name]()
    small = {t.get_text(): t.get_fontsize() for t in _texts(figure)
             if t.get_fontsize() < MIN_FONT_PT}  # fmt: skip
    assert not small, f"{name}: text under {MIN_FONT_PT} pt: {small}"
    box = figure.get_tightbbox(figure.canvas.get_renderer())
    saved = box.width + 2 * 0.1  # save_figure: bbox_inches="tight", pad 0.1 in
    assert saved <= MAX_WIDTH_IN, f"{name}: {saved:.2f} in wide as saved"


def _no_doubled_words(text: str) -> None:
    assert not re.search(r"\b(\w+)\s+\1\b", text, re.IGNORECASE), text


def test_metric_axes_and_titles_name_the_label_and_direction() -> None:
    seed = FIGURES["seed scores"]()
    titles = [" ".join(ax.get_title().split()) for ax in seed.axes if ax.get_visible()]
    assert titles == [metric_label(m, direction=True) for m in METRICS["mosi"]]
    curves = FIGURES["robustness curves"]()
    titles = [" ".join(ax.get_title().split()) for ax in curves.axes if ax.get_title()]
    assert titles == [metric_label(m, direction=True) for m in FIGURE_METRICS]
    tuning = FIGURES["tuning history"]()
    ylabel = " ".join(tuning.axes[0].get_ylabel().split())
    assert ylabel == f"validation {metric_label('mae', direction=True)}"
    for figure in (seed, curves, tuning, FIGURES["CD diagram"]()):
        for text in _texts(figure):
            _no_doubled_words(text.get_text())


def test_percent_metrics_are_drawn_x100_with_percent_ticks() -> None:
    seed = FIGURES["seed scores"]()
    accuracy = seed.axes[0]
    assert accuracy.get_ylim()[0] > 1.0  # x100
    assert all(t.get_text().endswith("%") for t in accuracy.get_yticklabels() if t.get_text())
    mae = seed.axes[METRICS["mosi"].index("mae")]
    assert not any("%" in t.get_text() for t in mae.get_yticklabels())


@pytest.mark.parametrize("kind", sorted(HEADLINE_METRICS))
def test_headline_files_hold_four_numbers_per_method(
    tmp_path: Path, kind: str, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    summary = {m: {metric: 0.5 for metric in METRICS[kind]} for m in ("tfn", "lmf")}
    summary["lmf"]["mae"] = None  # NaN in the summary: null in the file
    rows = headline_rows(summary, kind)
    written = write_headline({"d": rows})
    assert [str(p) for p in written] == ["results/metrics/d/tfn.json", "results/metrics/d/lmf.json"]
    labels = [metric_label(m) for m in HEADLINE_METRICS[kind]]
    for path in written:
        values = json.loads(path.read_text())
        assert list(values) == labels
        assert all(v is None or isinstance(v, int | float) for v in values.values())
    tfn = json.loads(written[0].read_text())
    assert tfn[metric_label(HEADLINE_METRICS[kind][2])] == 50.0  # accuracy in percent
    # MAE (and the binary kind's AUC) unscaled
    assert tfn["AUC" if kind == "binary" else "MAE"] == 0.5
    # `dvc metrics show`: one row per file; path and four columns fit a terminal
    width = len(str(written[0])) + sum(max(len(k), 9) + 2 for k in labels)
    assert width < 100
