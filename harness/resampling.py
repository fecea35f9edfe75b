"""Statistics that resample, as pure functions of arrays and an explicit seed (issue 7's layer;
`harness/stats.py` holds the closed-form ones). Every random draw comes from
`numpy.random.default_rng(seed)` (or deepsig's own seeded generator), so the same inputs and seed
give the same numbers, bit for bit.

- `bootstrap_ci`: percentile bootstrap confidence interval of the mean over seeds, S values.
- `aso_epsilon`: Almost Stochastic Order (Dror et al., ACL 2019; del Barrio et al. 2018) via
  `deepsig.aso`, the reference implementation: epsilon_min in [0, 1], A stochastically dominant
  over B (better) when epsilon_min < 0.2 (deepsig's recommended threshold); about 0.5 for
  similar score distributions, near 1 when B dominates, 1 for identical ones.
- `paired_bootstrap_test`: paired bootstrap over test samples of any metric of predictions
  (N samples), the test-set variance that seed variance misses (Koehn 2004; Dror et al. 2018).

Too few values for a procedure raise `InsufficientDataError` (a ValueError) with a sentence that
says how many were given and how many it needs, never a crash inside scipy or deepsig.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ASO_THRESHOLD = 0.2  # deepsig's recommendation: reject "A not better" when epsilon_min < 0.2


class InsufficientDataError(ValueError):
    """Fewer observations than the procedure needs."""


@dataclass(frozen=True)
class BootstrapCI:
    mean: float
    low: float
    high: float
    confidence: float
    n_resamples: int


def bootstrap_ci(
    values: np.ndarray, seed: int, confidence: float = 0.95, n_resamples: int = 10_000
) -> BootstrapCI:
    """Percentile bootstrap CI of the mean of `values` (S,) with S >= 2: resample S values with
    replacement `n_resamples` times, take the (1 - c)/2 and (1 + c)/2 quantiles of the means.
    Constant values give the degenerate interval [v, v]. NaN anywhere gives NaN bounds."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {array.shape}")
    if array.size < 2:
        raise InsufficientDataError(
            f"bootstrap CI: got {array.size} value(s); a bootstrap over seeds needs at least 2"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    if not np.all(np.isfinite(array)):
        return BootstrapCI(math.nan, math.nan, math.nan, confidence, n_resamples)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, array.size, size=(n_resamples, array.size))  # (R, S)
    means = array[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return BootstrapCI(float(array.mean()), float(low), float(high), confidence, n_resamples)


def aso_epsilon(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    seed: int,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    num_comparisons: int = 1,
    n_bootstrap: int = 1000,
) -> float:
    """epsilon_min of A over B (deepsig.aso, Bonferroni-corrected for `num_comparisons`);
    scores (S_a,), (S_b,) need not be paired. For a lower-is-better metric (MAE) both are
    negated first, so "A better" keeps meaning epsilon_min < ASO_THRESHOLD."""
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    for name, array in (("scores_a", a), ("scores_b", b)):
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
        if array.size < 2:
            raise InsufficientDataError(
                f"ASO: {name} has {array.size} score(s); it needs at least 2 per method"
            )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.nan
    if np.array_equal(np.sort(a), np.sort(b)):
        return 1.0  # identical score distributions: deepsig divides by zero and returns 1.0
    if not higher_is_better:
        a, b = -a, -b
    from deepsig import aso  # imported here: it costs about 3 s and only the report needs it

    return float(
        aso(
            a.tolist(),
            b.tolist(),
            confidence_level=confidence,
            num_comparisons=num_comparisons,
            num_bootstrap_iterations=n_bootstrap,
            num_jobs=1,
            show_progress=False,
            seed=seed,
        )
    )


def paired_bootstrap_test(
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    truths: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    seed: int,
    n_resamples: int = 2000,
) -> tuple[float, float]:
    """(observed difference metric(A) - metric(B), two-sided p-value) of the paired bootstrap
    over test samples: resample the N sample indices with replacement, recompute both metrics
    on the same indices, and count how often the resampled difference, shifted to mean zero
    (the null), is at least as extreme as the observed one (Efron & Tibshirani's shift method;
    the p-value is (count + 1) / (R + 1), never 0). `metric(predictions (N,), truths (N,))`;
    identical predictions give difference 0 and p = 1."""
    a = np.asarray(predictions_a, dtype=np.float64)
    b = np.asarray(predictions_b, dtype=np.float64)
    y = np.asarray(truths, dtype=np.float64)
    if not (a.ndim == b.ndim == y.ndim == 1 and a.shape == b.shape == y.shape):
        raise ValueError(
            f"predictions and truths must be 1-D of one length, got {a.shape}, {b.shape}, {y.shape}"
        )
    if a.size < 2:
        raise InsufficientDataError(
            f"paired bootstrap: got {a.size} test sample(s); it needs at least 2"
        )
    observed = metric(a, y) - metric(b, y)
    if np.array_equal(a, b):
        return 0.0, 1.0
    if not math.isfinite(observed):
        return observed, math.nan
    rng = np.random.default_rng(seed)
    differences = np.empty(n_resamples)
    for r in range(n_resamples):
        index = rng.integers(0, a.size, size=a.size)
        differences[r] = metric(a[index], y[index]) - metric(b[index], y[index])
    finite = differences[np.isfinite(differences)]
    null = finite - finite.mean()
    extreme = int(np.sum(np.abs(null) >= abs(observed)))
    return observed, (extreme + 1) / (finite.size + 1)
