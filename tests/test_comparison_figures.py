"""Comparison figures: CD groups by hand, figure contents, and byte-identical saves."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from harness.errors import DataError
from harness.reports.cd_diagram import cd_diagram_figure, cd_groups
from harness.reports.comparison_figures import (
    seed_offsets,
    seed_points_figure,
    tuning_history_figure,
)
from harness.reports.figures import save_figure
from harness.statistics.ranks import FriedmanNemenyi

RANKS = {"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_cd_groups_by_hand() -> None:
    assert cd_groups(RANKS, 0.6) == [("a", "b"), ("c", "d")]
    assert cd_groups(RANKS, 5.0) == [("a", "b", "c", "d")]
    assert cd_groups(RANKS, 0.1) == []  # singletons are not returned


def test_cd_groups_are_maximal_overlapping_runs_and_the_bound_is_inclusive() -> None:
    # a-b-c chain: a~b (1.0), b~c (1.0) but a, c differ (2.0) -> two overlapping groups
    assert cd_groups({"c": 3.0, "a": 1.0, "b": 2.0}, 1.0) == [("a", "b"), ("b", "c")]
    # a group inside another is not maximal: (b, c) lies inside (a, b, c)
    assert cd_groups({"a": 1.0, "b": 1.2, "c": 1.4, "d": 9.0}, 0.5) == [("a", "b", "c")]
    assert cd_groups({"y": 2.0, "x": 2.0}, 0.0) == [("x", "y")]  # ties: name order
    with pytest.raises(ValueError, match="critical difference"):
        cd_groups(RANKS, -1.0)


def _comparison() -> pd.DataFrame:
    """A hand-made comparison frame (the columns the figure reads): 3 methods x 3 seeds x 2
    metrics; beta is best on both. The CI is mean +- 0.02 (gamma's MAE: NaN, no error bar)."""
    per_seed = {
        ("alpha", "acc2_has0"): [0.70, 0.72, 0.74], ("alpha", "mae"): [1.0, 1.1, 0.9],
        ("beta", "acc2_has0"): [0.80, 0.81, 0.82], ("beta", "mae"): [0.8, 0.7, 0.75],
        ("gamma", "acc2_has0"): [0.60, 0.65, 0.62], ("gamma", "mae"): [1.3, 1.2, 1.25],
    }  # fmt: skip
    rows = []
    for (method, metric), values in per_seed.items():
        mean = float(np.mean(values))
        half = math.nan if (method, metric) == ("gamma", "mae") else 0.02
        rows.append(
            {"dataset": "toy", "method": method, "metric": metric,
             "higher_is_better": metric != "mae", "n_seeds": 3, "mean": mean,
             "ci_low": mean - half, "ci_high": mean + half, "is_best": method == "beta",
             "seeds": [1, 2, 3], "values": values}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _points(ax) -> list[PathCollection]:
    """The scatter collections of `ax` (error bars add LineCollections)."""
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_seed_points_figure_draws_every_seed_mean_and_ci() -> None:
    figure = seed_points_figure(_comparison(), ("acc2_has0", "mae"), "toy")
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert len(panels) == 2
    assert [ax.get_title() for ax in panels] == [
        "Acc-2 (has-0)\n(\u2191 higher is better)", "MAE\n(\u2193 lower is better)"
    ]  # fmt: skip
    for ax in panels:
        labels = ax.get_xticklabels()
        assert [label.get_text() for label in labels] == ["alpha", "beta", "gamma"]
        assert [label.get_fontweight() for label in labels] == ["normal", "bold", "normal"]
        assert len(_points(ax)) == 3 and len(ax.containers) == 3  # seeds; mean + CI bars
    accuracy_points = _points(panels[0])[1].get_offsets()  # beta's seeds, x100
    np.testing.assert_allclose(accuracy_points[:, 0], [0.78, 1.0, 1.22])
    np.testing.assert_allclose(accuracy_points[:, 1], [80.0, 81.0, 82.0])
    legend_texts = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend_texts == ["seed", "mean, 95% CI", "best mean (name in bold)"]


def test_seed_points_figure_rejects_a_metric_without_rows() -> None:
    with pytest.raises(DataError, match="no 'corr' row"):
        seed_points_figure(_comparison(), ("corr",), "toy")


def test_seed_offsets_are_fixed_and_centred() -> None:
    np.testing.assert_allclose(seed_offsets(5), [-0.22, -0.11, 0.0, 0.11, 0.22])
    assert seed_offsets(1).tolist() == [0.0]


def _result(pvalue: float = 0.01) -> FriedmanNemenyi:
    return FriedmanNemenyi(
        methods=("a", "b", "c", "d"),
        mean_ranks=dict(RANKS),
        statistic=9.0,
        pvalue=pvalue,
        critical_difference=0.6,
        n_datasets=4,
        alpha=0.05,
    )


def test_cd_diagram_has_every_method_the_ranks_groups_and_best_on_the_right() -> None:
    figure = cd_diagram_figure(_result(), "Acc-2 over 4 datasets")
    (ax,) = figure.axes
    texts = {text.get_text(): text for text in ax.texts}
    assert {"a", "b", "c", "d", "1", "2", "3", "4", "CD = 0.60"} <= set(texts)
    title = next(text for text in texts if text.startswith("Acc-2 over 4 datasets"))
    assert "Friedman p = 0.01" in title and "N = 4 datasets" in title
    assert "not significant" not in title
    middle = ax.get_xlim()[1] / 2
    assert texts["a"].get_position()[0] > middle > texts["d"].get_position()[0]
    assert texts["1"].get_position()[0] > texts["4"].get_position()[0]
    group_bars = [line for line in ax.lines if line.get_linewidth() == 2.0]
    assert len(group_bars) == 2  # (a, b) and (c, d)
    insignificant = cd_diagram_figure(_result(pvalue=0.3), "x")
    assert any("not significant" in text.get_text() for text in insignificant.axes[0].texts)


def _histories() -> pd.DataFrame:
    nan = math.nan
    return pd.DataFrame(
        {
            "method": ["m1"] * 4 + ["m2"] * 3,
            "trial": [0, 1, 2, 3, 0, 1, 2],
            "state": ["COMPLETE", "PRUNED", "FAIL", "COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"],
            "value": [0.7, nan, nan, 0.8, nan, 0.6, 0.65],
            "best": [0.7, 0.7, 0.7, 0.8, nan, 0.6, 0.65],
            "direction": ["maximize"] * 7,
            "best_intermediate": [0.7, 0.5, nan, 0.8, 0.4, 0.6, 0.65],
        }
    )


def test_tuning_history_figure_draws_steps_points_and_pruned_markers() -> None:
    figure = tuning_history_figure(_histories(), "toy tuning", "acc2_has0")
    (ax,) = figure.axes
    assert len(ax.lines) == 2  # one step line per method
    assert ax.get_ylabel() == "validation Acc-2 (has-0)\n(\u2191 higher is better)"
    legend_texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend_texts == ["m1", "m2", "complete trial", "pruned (best epoch)"]
    offsets = [collection.get_offsets() for collection in _points(ax)]
    assert len(offsets) == 4  # per method: complete dots, pruned x's
    np.testing.assert_allclose(offsets[0], [[0, 70.0], [3, 80.0]])  # x100 for a percent metric
    np.testing.assert_allclose(offsets[1], [[1, 50.0]])
    free_text = tuning_history_figure(_histories(), "toy", "score")
    assert free_text.axes[0].get_ylabel() == "validation score\n(\u2191 higher is better)"
    # a label that already says "validation" does not get it twice
    said = tuning_history_figure(_histories(), "toy", "validation loss")
    assert said.axes[0].get_ylabel() == "validation loss\n(\u2191 higher is better)"
    mae = tuning_history_figure(_histories().assign(direction="minimize"), "toy", "mae")
    assert mae.axes[0].get_ylabel() == "validation MAE\n(\u2193 lower is better)"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("which", ["seeds", "cd", "history"])
def test_saving_the_same_figure_twice_gives_identical_bytes(tmp_path: Path, which: str) -> None:
    build = {
        "seeds": lambda: seed_points_figure(_comparison(), ("acc2_has0", "mae"), "toy"),
        "cd": lambda: cd_diagram_figure(_result(), "toy"),
        "history": lambda: tuning_history_figure(_histories(), "toy", "acc2_has0"),
    }[which]
    first = save_figure(build(), tmp_path / "first")
    second = save_figure(build(), tmp_path / "second")
    assert [p.suffix for p in first] == [".png", ".pdf"]
    assert [_md5(p) for p in first] == [_md5(p) for p in second]
    assert b"CreationDate" not in first[1].read_bytes()
