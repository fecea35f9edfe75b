"""Flagging seeds that collapsed or fell far outside the method's other seeds: pure functions,
arrays in, flags out.

A seed is flagged (never dropped) by either rule:

- **constant**: the standard deviation of its test predictions (N,) is below
  `constant_ratio` (default 0.05) times the test truths' standard deviation — the model
  predicts (nearly) one value whatever the input, e.g. a regression head stuck at the mean.
- **outlier**: on a continuous headline metric (MAE or Corr; AUC on the binary kind:
  accuracies move in steps of 1/N and tie often), the seed's score lies outside the `level`
  (default 99.9%) prediction interval of the method's other k seeds:
  |x - mean_k| > t_{(1+level)/2, k-1} * sd_k * sqrt(1 + 1/k), the interval for one new draw
  from the normal the other seeds came from. It needs k >= 3 other seeds (4 seeds in all).
  Under that normal model a seed is flagged by chance with probability 1 - level per metric
  (about 1% per method over 5 seeds and 2 metrics); a median/MAD rule (modified z > 3.5)
  flags 21% of methods at 5 normal seeds, measured, so it is not used.

Why flag and not drop: a method that collapses on one seed in five is less reliable, and the
table's mean +- std over every seed says so; dropping the seed after looking would make it look
better than it is. The flagged seeds and the mean +- std without them are shown beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from harness.metrics import metric_label

__all__ = ["OUTLIER_METRICS", "SeedFlag", "constant_flag", "flag_seeds", "outlier_flags"]

# continuous: no ties, no 1/N steps (the binary kind's AUC moves in steps of 1/(N+ N-))
OUTLIER_METRICS: tuple[str, ...] = ("mae", "corr", "auc")


@dataclass(frozen=True)
class SeedFlag:
    """One flagged seed of one method: the rule that fired ("constant" or "outlier") and a
    sentence with the numbers."""

    method: str
    seed: int
    rule: str
    reason: str


def constant_flag(predictions: np.ndarray, truths: np.ndarray, ratio: float) -> str | None:
    """The reason text if `predictions` (N,) are nearly constant, i.e. their std is below
    `ratio` x the std of `truths` (N,); None otherwise (also when the truths are constant)."""
    spread = float(np.std(truths))
    if not spread > 0.0:
        return None
    own = float(np.std(predictions))
    if own >= ratio * spread:
        return None
    return (
        f"predictions nearly constant (std {own:.4f}, {own / spread:.1%} of the test truths' "
        f"{spread:.4f}; rule: below {ratio:.0%})"
    )


def outlier_flags(values: np.ndarray, level: float) -> list[tuple[int, float, float]]:
    """Leave-one-out outliers of one method's per-seed scores `values` (S,): for every index i
    whose value lies outside the `level` prediction interval of the other S-1 values, the tuple
    (i, its value, the others' mean). Empty with fewer than 4 finite values."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be 1-D (S,), got shape {array.shape}")
    if array.size < 4 or not np.all(np.isfinite(array)):
        return []
    k = array.size - 1
    quantile = float(scipy_stats.t.ppf(0.5 + level / 2.0, df=k - 1))
    found = []
    for i, value in enumerate(array):
        others = np.delete(array, i)
        centre, spread = float(np.mean(others)), float(np.std(others, ddof=1))
        half_width = quantile * spread * math.sqrt(1.0 + 1.0 / k)
        if abs(value - centre) > half_width:
            found.append((i, float(value), centre))
    return found


def flag_seeds(
    scores: dict[str, dict[int, dict[str, float]]],
    predictions: dict[str, dict[int, np.ndarray]] | None,
    truths: np.ndarray | None,
    *,
    constant_ratio: float = 0.05,
    level: float = 0.999,
) -> list[SeedFlag]:
    """Every flagged seed of every method, in method and seed order, one flag per (method,
    seed) (the constant rule first: it is the cause when both fire).

    scores: {method: {seed: {metric: value}}}; predictions: {method: {seed: (N,)}} with the
    test `truths` (N,), or None to apply the outlier rule alone."""
    flags: dict[tuple[str, int], SeedFlag] = {}
    for method in sorted(scores):
        seeds = sorted(scores[method])
        for seed in seeds:
            if predictions is None or truths is None or seed not in predictions.get(method, {}):
                continue
            reason = constant_flag(predictions[method][seed], truths, constant_ratio)
            if reason is not None:
                flags[(method, seed)] = SeedFlag(method, seed, "constant", reason)
        for metric in OUTLIER_METRICS:
            if not all(metric in scores[method][s] for s in seeds):
                continue
            values = np.array([_number(scores[method][s][metric]) for s in seeds])
            for index, value, centre in outlier_flags(values, level):
                key = (method, seeds[index])
                if key in flags:
                    continue
                flags[key] = SeedFlag(
                    method, seeds[index], "outlier",
                    f"{metric_label(metric)} {value:.4g} lies outside the {level:.1%} "
                    f"prediction interval of the other seeds (their mean {centre:.4g})",
                )  # fmt: skip
    return [flags[key] for key in sorted(flags)]


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)
