"""Comparing methods across datasets: the Friedman test on ranks with the Nemenyi post-hoc
critical difference (Demsar, JMLR 2006), as a pure function of a datasets x methods score matrix.
It matches `autorank` (force_mode="nonparametric"): the same mean ranks and p-value, and the
critical difference to 1e-5 relative (the two evaluate the studentized-range quantile slightly
differently); tests/test_rank_tests.py checks it against autorank.

Scores are seed-averaged, one row per dataset (N rows), one column per method (k columns).
Rank 1 is the best method on a dataset; ties share the average rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from harness.statistics.resampling import InsufficientDataError


@dataclass(frozen=True)
class FriedmanNemenyi:
    methods: tuple[str, ...]
    mean_ranks: dict[str, float]  # 1 = best
    statistic: float  # Friedman chi-square
    pvalue: float
    critical_difference: float  # two methods differ when their mean ranks differ by more
    n_datasets: int
    alpha: float

    def differs(self, a: str, b: str) -> bool:
        """True if methods a and b differ by more than the critical difference."""
        return abs(self.mean_ranks[a] - self.mean_ranks[b]) > self.critical_difference


def friedman_nemenyi(
    scores: np.ndarray,
    methods: tuple[str, ...] | list[str],
    higher_is_better: bool = True,
    alpha: float = 0.05,
) -> FriedmanNemenyi:
    """Friedman test and Nemenyi critical difference for `scores` (N, k).

    CD = q_alpha(k) / sqrt(2) * sqrt(k (k + 1) / (6 N)), q_alpha the studentized range quantile
    with infinite degrees of freedom. InsufficientDataError with fewer than 3 methods or 2
    datasets (the Friedman test is undefined there); ValueError for NaN scores."""
    matrix = np.asarray(scores, dtype=np.float64)
    methods = tuple(methods)
    if matrix.ndim != 2 or matrix.shape[1] != len(methods):
        raise ValueError(
            f"scores: expected (datasets, {len(methods)} methods), got shape {matrix.shape}"
        )
    n, k = matrix.shape
    if k < 3:
        raise InsufficientDataError(
            f"Friedman test: got {k} method(s); it compares at least 3 (use a paired test for 2)"
        )
    if n < 2:
        raise InsufficientDataError(
            f"Friedman test: got {n} dataset(s); ranking across datasets needs at least 2"
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError("scores: NaN or inf; average the seeds of every method first")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    oriented = -matrix if higher_is_better else matrix
    ranks = np.vstack([scipy_stats.rankdata(row) for row in oriented])  # (N, k), 1 = best
    if np.all(ranks == ranks[:, :1]):
        statistic, pvalue = 0.0, 1.0  # every method tied on every dataset
    else:
        result = scipy_stats.friedmanchisquare(*matrix.T)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    q_alpha = float(scipy_stats.studentized_range.ppf(1.0 - alpha, k, np.inf)) / math.sqrt(2.0)
    critical_difference = q_alpha * math.sqrt(k * (k + 1) / (6.0 * n))
    mean_ranks = {m: float(r) for m, r in zip(methods, ranks.mean(axis=0), strict=True)}
    return FriedmanNemenyi(methods, mean_ranks, statistic, pvalue, critical_difference, n, alpha)
