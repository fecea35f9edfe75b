"""Statistics over seeds as pure functions: arrays in, numbers out, no I/O.

Conventions shared by every function here:

- ``S`` is the number of seeds (or of paired seeds); arrays are 1-D.
- NaN in, NaN out: a non-finite value anywhere in the input gives a NaN result (`holm` instead
  passes NaN entries through and leaves them out of the family). A metric that is undefined for
  one seed (e.g. Pearson correlation of a collapsed model) therefore never looks significant.
- Nothing here resamples, so no random generator is needed; `wilcoxon_signed_rank` is exact
  (scipy enumerates all 2^S sign flips when there are ties or zero differences and S <= 13).
- scipy's RuntimeWarnings for degenerate inputs are handled here and never leak.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "Summary",
    "holm",
    "paired_ttest",
    "summarize",
    "wilcoxon_min_holm_p",
    "wilcoxon_signed_rank",
]


@dataclass(frozen=True)
class Summary:
    """Mean over `n` values with sample std (ddof=1) and a t-based confidence interval."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: np.ndarray, confidence: float = 0.95) -> Summary:
    """Mean, sample std (ddof=1) and Student-t confidence interval of `values` (S,).

    With S = 1 the std and the interval are NaN. Raises ValueError if `values` is not 1-D or
    is empty, or if `confidence` is not in (0, 1).
    """
    array = _as_1d(values, "values")
    if array.size == 0:
        raise ValueError("values is empty; need at least one value to summarize")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = int(array.size)
    if not np.all(np.isfinite(array)):
        return Summary(n, math.nan, math.nan, math.nan, math.nan)
    mean = float(np.mean(array))
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    std = float(np.std(array, ddof=1))
    half_width = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half_width, mean + half_width)


def paired_ttest(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test (scipy.stats.ttest_rel) of `a` (S,) vs `b` (S,),
    paired by position (seed).

    Returns 1.0 when every difference is exactly zero, NaN with fewer than 2 pairs or any
    non-finite value. Constant non-zero differences have zero variance; scipy then reports
    t = +-inf and p = 0.0, which is passed on.
    """
    x, y = _paired(a, b)
    if x.size < 2 or not _all_finite(x, y):
        return math.nan
    if np.all(x - y == 0):
        return 1.0
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy_stats.ttest_rel(x, y).pvalue)


def wilcoxon_signed_rank(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of `a` (S,) vs `b` (S,), paired by
    position (seed), via scipy.stats.wilcoxon with its defaults (zero differences dropped,
    exact distribution for small S).

    With 5 seeds the smallest possible p is 2 / 2^5 = 0.0625. Returns 1.0 when every
    difference is exactly zero, NaN with no pairs or any non-finite value.
    """
    x, y = _paired(a, b)
    if x.size < 1 or not _all_finite(x, y):
        return math.nan
    if np.all(x - y == 0):
        return 1.0
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy_stats.wilcoxon(x, y, alternative="two-sided").pvalue)


def wilcoxon_min_holm_p(n_pairs: int, n_comparisons: int) -> float:
    """The smallest Holm-adjusted p-value the exact two-sided Wilcoxon signed-rank test can give
    in a family of `n_comparisons` tests none of which has more than `n_pairs` pairs:
    min(1, n_comparisons * 2 / 2**n_pairs).

    With n pairs the smallest two-sided p is 2 / 2^n (every difference of one sign: one of the
    2^n equally likely sign patterns, doubled for two sides); fewer pairs, or zero differences
    (which `wilcoxon_signed_rank` drops), only raise it. Holm multiplies the smallest p of the
    family by the family size, and every adjusted p is at least that product. So the test can
    reject at level alpha somewhere in the family only if this value is below alpha: with 5
    seeds and 80 comparisons it is 1.0 (80 * 0.0625 = 5, capped), with 12 seeds and 80
    comparisons 0.0390625. 0 pairs give 1.0. Raises ValueError for a negative `n_pairs` or
    `n_comparisons` below 1.
    """
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
    if n_comparisons < 1:
        raise ValueError(f"n_comparisons must be >= 1, got {n_comparisons}")
    if n_pairs == 0:
        return 1.0
    return min(1.0, n_comparisons * 2.0 / 2.0**n_pairs)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (K,) for the family `pvalues` (K,).

    Sorted ascending, the i-th (0-based) of m p-values becomes max over j <= i of
    min(1, (m - j) * p_(j)), returned in the input order. NaN entries stay NaN and are not
    counted in m. Raises ValueError for a value outside [0, 1] or an array that is not 1-D.
    """
    array = _as_1d(pvalues, "pvalues")
    finite = ~np.isnan(array)
    if np.any((array[finite] < 0) | (array[finite] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {array[finite].tolist()}")
    adjusted = np.full(array.shape, math.nan)
    index = np.flatnonzero(finite)
    if index.size == 0:
        return adjusted
    order = index[np.argsort(array[index], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * array[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def _as_1d(values: np.ndarray, what: str) -> np.ndarray:
    """`values` as a float64 1-D array; ValueError otherwise."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {array.shape}")
    return array


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`a` (S,) and `b` (S,) as float64 arrays of equal length; ValueError otherwise."""
    x, y = _as_1d(a, "a"), _as_1d(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    return x, y


def _all_finite(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(x)) and np.all(np.isfinite(y)))
