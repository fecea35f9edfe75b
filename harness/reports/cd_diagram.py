"""Critical-difference diagrams (Demsar, JMLR 2006) of a Friedman/Nemenyi comparison, in the
layout of autorank's `plot_stats` (itself Orange's `graph_ranks`).

Decisions:

- The rank axis runs from k on the left to 1 on the right: the BEST method is on the RIGHT, as in
  Demsar's Figure 1 and autorank's `plot_stats` (which draws with `reverse=True`).
- The worse half of the methods (ceil(k/2), worst outermost) is labelled on the left, the better
  half on the right; labels are the method names alone (as autorank's), the ranks being read
  off the axis.
- The CD interval is drawn above the axis from its left (worst) end, with its value.
- Groups (`cd_groups`) are maximal sets of methods whose mean ranks all lie within the CD of each
  other (|r_a - r_b| <= CD, the complement of `FriedmanNemenyi.differs`); on a line these are
  runs of consecutive methods in rank order. Singletons are NOT returned: a bar joins at least
  two methods, and a method in no group differs from every other method.
- Each method's label and elbow line are in its colour (`harness.reports.style.method_color`,
  as in every figure); the axis, the CD interval and the group bars are black.
- The diagram is drawn whatever the Friedman p-value (autorank refuses unless told otherwise);
  the title states the p-value and says "not significant" when p >= alpha, in which case the
  groups should not be read.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from harness.reports.style import MAX_WIDTH_IN, PAPER_STYLE, method_color  # noqa: E402
from harness.statistics.ranks import FriedmanNemenyi  # noqa: E402

__all__ = ["cd_diagram_figure", "cd_groups"]

_LINE = {"color": "black", "linewidth": 0.7, "solid_capstyle": "butt"}
_ROW = 0.15  # inches between label rows
_GROUP_STEP = 0.07  # inches between group bars


def cd_groups(mean_ranks: dict[str, float], cd: float) -> list[tuple[str, ...]]:
    """Maximal groups of at least two methods whose mean ranks pairwise differ by at most `cd`.

    `mean_ranks`: {method: mean rank}. Each group lists its methods by (rank, name), best
    first; groups are sorted by their first method's rank. ValueError if `cd` is negative or
    not finite."""
    if not math.isfinite(cd) or cd < 0:
        raise ValueError(f"critical difference must be finite and >= 0, got {cd}")
    order = sorted(mean_ranks, key=lambda method: (mean_ranks[method], method))
    groups: list[tuple[str, ...]] = []
    covered_to = -1  # last index of the previous group: a run ending there is not maximal
    for start, first in enumerate(order):
        end = start
        while end + 1 < len(order) and abs(mean_ranks[order[end + 1]] - mean_ranks[first]) <= cd:
            end += 1
        if end > start and end > covered_to:
            groups.append(tuple(order[start : end + 1]))
        covered_to = max(covered_to, end)
    return groups


def _title(result: FriedmanNemenyi, title: str) -> str:
    verdict = "" if result.pvalue < result.alpha else ", not significant"
    return (
        f"{title}\nFriedman p = {result.pvalue:.3g}{verdict}, N = {result.n_datasets} datasets,"
        f" \u03b1 = {result.alpha:g}"
    )


def cd_diagram_figure(result: FriedmanNemenyi, title: str, width: float = 3.4):
    """The CD diagram of `result` (k >= 2 methods), `width` inches wide (3.4: one column; 7:
    two), widened when the labels and ranks need it (0.2 in per rank unit, up to 6.8 in). Drawn
    in inch coordinates, y growing downwards."""
    ranks = result.mean_ranks
    if len(ranks) < 2:
        raise ValueError(f"a CD diagram needs at least 2 methods, got {len(ranks)}")
    worst_first = sorted(ranks, key=lambda method: (-ranks[method], method))
    k = len(worst_first)
    groups = cd_groups(ranks, result.critical_difference)
    textspace = 0.25 + 0.05 * max(len(method) for method in worst_first)
    # at least 0.2 in per rank unit, but never wider than a page's text width
    width = min(max(width, 2 * textspace + 0.2 * (k - 1)), MAX_WIDTH_IN - 0.2)
    scale = width - 2 * textspace

    def position(rank: float) -> float:  # rank k at the left end, rank 1 at the right end
        return textspace + scale * (k - rank) / (k - 1)

    cd_y, axis_y = 0.5, 0.8
    first_row = max(axis_y + 0.3, axis_y + 0.12 + (len(groups) - 1) * _GROUP_STEP + 0.15)
    height = first_row + (math.ceil(k / 2) - 1) * _ROW + 0.12
    with plt.rc_context(PAPER_STYLE):
        figure = plt.figure(figsize=(width, height))
        ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_xlim(0.0, width)
        ax.set_ylim(height, 0.0)
        ax.set_axis_off()
        ax.text(width / 2, 0.05, _title(result, title), ha="center", va="top")
        _draw_axis(ax, k, position, axis_y)
        _draw_cd_interval(ax, result.critical_difference, k, position, cd_y)
        _draw_labels(ax, worst_first, ranks, position, axis_y, first_row, width, textspace)
        for index, group in enumerate(groups):
            y = axis_y + 0.12 + index * _GROUP_STEP
            left, right = position(ranks[group[-1]]) - 0.04, position(ranks[group[0]]) + 0.04
            ax.plot([left, right], [y, y], color="black", linewidth=2.0, solid_capstyle="butt")
    return figure


def _draw_axis(ax, k: int, position, axis_y: float) -> None:
    """The rank axis with ticks every 0.5 (longer at integers) and integer labels above."""
    ax.plot([position(k), position(1)], [axis_y, axis_y], **_LINE)
    for half in range(2 * k - 1):
        rank = 1 + half / 2
        tick = 0.1 if half % 2 == 0 else 0.05
        ax.plot([position(rank)] * 2, [axis_y - tick, axis_y], **_LINE)
    for rank in range(1, k + 1):
        ax.text(position(rank), axis_y - 0.12, str(rank), ha="center", va="bottom")


def _draw_cd_interval(ax, cd: float, k: int, position, cd_y: float) -> None:
    """The CD interval from the axis' left (worst) end, clipped to the axis, with its value."""
    begin, end = position(k), position(max(1.0, k - cd))
    ax.plot([begin, end], [cd_y, cd_y], **_LINE)
    for x in (begin, end):
        ax.plot([x, x], [cd_y - 0.04, cd_y + 0.04], **_LINE)
    ax.text((begin + end) / 2, cd_y - 0.06, f"CD = {cd:.2f}", ha="center", va="bottom")


def _draw_labels(ax, worst_first, ranks, position, axis_y, first_row, width, textspace):
    """Each method's elbow line from its rank down to its row and out to its label: the worse
    half on the left (worst on the top row), the better half on the right (best on top)."""
    k = len(worst_first)
    left_count = math.ceil(k / 2)
    for index, method in enumerate(worst_first):
        on_left = index < left_count
        row_y = first_row + (index if on_left else k - 1 - index) * _ROW
        end_x = textspace - 0.1 if on_left else width - textspace + 0.1
        x = position(ranks[method])
        color = method_color(method)
        ax.plot([x, x, end_x], [axis_y, row_y, row_y], **{**_LINE, "color": color})
        ax.text(
            end_x + (-0.05 if on_left else 0.05),
            row_y,
            method,
            ha="right" if on_left else "left",
            va="center",
            color=color,
        )
