"""Statistics that resample, as pure functions of arrays and an explicit seed (issue 7's layer;
`harness/statistics/significance.py` holds the closed-form ones). Every random draw comes from
`numpy.random.default_rng(seed)` (ASO: the legacy generator, seeded as deepsig seeds it), so the
same inputs and seed give the same numbers, bit for bit.

- `bootstrap_ci`: percentile bootstrap confidence interval of the mean over seeds, S values.
- `aso_epsilon`: Almost Stochastic Order (Dror et al., ACL 2019; del Barrio et al. 2018),
  computed as `deepsig.aso` (the reference implementation) computes it but vectorized, about 200x
  faster (deepsig takes seconds per comparison; a table makes dozens): epsilon_min in [0, 1],
  A stochastically dominant over B (better) when epsilon_min < 0.2 (deepsig's recommended
  threshold); about 0.5 for similar score distributions, near 1 when B dominates or for
  identical ones.
- `paired_bootstrap_test`: paired bootstrap over test samples of any metric of predictions
  (N samples), the test-set variance that seed variance misses (Koehn 2004; Dror et al. 2018);
  `seed_averaged_bootstrap_test`: the same for every metric of a kind at once, on the
  seed-averaged metric of methods trained over several seeds (vectorized).

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
    dt: float = 0.005,
) -> float:
    """epsilon_min of A over B by Almost Stochastic Order, computed exactly as `deepsig.aso`
    (v1.2.8) computes it, vectorized: scores (S_a,), (S_b,) need not be paired; A is deemed
    better when the result is < `ASO_THRESHOLD`. For a lower-is-better metric (MAE) both are
    negated first. `num_comparisons` > 1 applies deepsig's Bonferroni correction to
    `confidence`. tests/test_resampling.py checks equality with deepsig on its own examples.

    deepsig draws bootstrap iteration i (1..n_bootstrap) from `np.random.seed(seed + i)`;
    this re-seeds a private `RandomState` with seed + i, the same stream, without touching
    numpy's global state.
    Where the Wasserstein distance of two distributions is 0 (identical scores) the violation
    ratio is 0.5, as in deepsig (which warns). NaN anywhere gives NaN."""
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    for name, array in (("scores_a", a), ("scores_b", b)):
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
        if array.size < 2:
            raise InsufficientDataError(
                f"ASO: {name} has {array.size} score(s); it needs at least 2 per method"
            )
    if n_bootstrap < 1 or num_comparisons < 1:
        raise ValueError(
            f"n_bootstrap and num_comparisons must be positive, got {n_bootstrap}, "
            f"{num_comparisons}"
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.nan
    if not higher_is_better:
        a, b = -a, -b
    if num_comparisons > 1:
        confidence += (1.0 - confidence) / num_comparisons
    t = np.arange(dt, 1, dt)  # (T,) the integration grid
    sorted_a, sorted_b = np.sort(a), np.sort(b)
    ratio = float(_violation_ratios(_quantiles(sorted_a, t), _quantiles(sorted_b, t), dt))
    draws_a = np.empty((n_bootstrap, a.size))
    draws_b = np.empty((n_bootstrap, b.size))
    state = np.random.RandomState()  # a private legacy generator, re-seeded per iteration
    for i in range(n_bootstrap):
        state.seed(seed + i + 1)
        draws_a[i] = state.uniform(0, 1, a.size)
        draws_b[i] = state.uniform(0, 1, b.size)
    resampled_a = np.sort(_quantiles(sorted_a, draws_a), axis=1)  # (B, S_a)
    resampled_b = np.sort(_quantiles(sorted_b, draws_b), axis=1)
    samples = _violation_ratios(_quantiles(resampled_a, t), _quantiles(resampled_b, t), dt)
    const = np.sqrt(a.size * b.size / (a.size + b.size))
    sigma_hat = np.std(const * (samples - ratio))
    epsilon = ratio - (1 / const) * sigma_hat * _normal_ppf(1 - confidence)
    return float(np.clip(epsilon, 0, 1))


def _quantiles(sorted_scores: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Empirical quantile function of each row of `sorted_scores` ((S,) or (B, S), ascending)
    at probabilities `p` ((T,) shared, or (B, T) per row): the ceil(S p)-th smallest score,
    clipped to the valid range (deepsig's `get_quantile_function`). Returns (T,) or (B, T)."""
    n = sorted_scores.shape[-1]
    index = np.clip(np.ceil(n * p).astype(np.int64) - 1, 0, n - 1)
    if sorted_scores.ndim == 1:
        return sorted_scores[index]
    if index.ndim == 1:
        index = np.broadcast_to(index, (sorted_scores.shape[0], index.size))
    return np.take_along_axis(sorted_scores, index, axis=1)


def _violation_ratios(f: np.ndarray, g: np.ndarray, dt: float) -> np.ndarray:
    """deepsig's `compute_violation_ratio` for quantile values f = F^-1(t), g = G^-1(t) on the
    grid (..., T): the share of the squared Wasserstein distance where F^-1 < G^-1 (the first
    grid point left out of the numerator, as deepsig does); 0.5 where the distance is 0."""
    diff = g - f
    squared_distance = np.sum(diff**2 * dt, axis=-1)
    violating = np.where(f >= g, 0.0, diff)
    integral = np.sum(violating[..., 1:] ** 2 * dt, axis=-1)
    safe = np.where(squared_distance == 0, 1.0, squared_distance)
    return np.where(squared_distance == 0, 0.5, integral / safe)


def _normal_ppf(q: float) -> float:
    from scipy.stats import norm  # scipy.stats is imported only where a procedure needs it

    return float(norm.ppf(q))


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
    return observed, bootstrap_p_value(observed, differences)


def seed_averaged_bootstrap_test(
    kind: str,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    truths: np.ndarray,
    seed: int,
    n_resamples: int = 1000,
) -> dict[str, tuple[float, float]]:
    """Paired bootstrap over test samples of every metric of `kind`, for methods trained over
    several seeds: {metric: (observed difference, two-sided p)}.

    `predictions_a` (S_a, N) and `predictions_b` (S_b, N) hold each seed's test predictions
    (rows need not pair); `truths` (N,). The statistic is the difference of the seed-averaged
    metric, mean_s metric(A_s) - mean_s metric(B_s), i.e. the difference of the table's means;
    each resample draws N sample indices with replacement (`bootstrap_indices`), the same for
    every seed of both methods, and p comes from `bootstrap_p_value`. A table computes
    `seed_averaged_metrics` once per method and subtracts; this composes the same steps for
    one pair."""
    a, b, y = _prediction_arrays(predictions_a, predictions_b, truths)
    index = bootstrap_indices(y.size, n_resamples, seed)
    observed_a, observed_b = seed_averaged_metrics(kind, a, y), seed_averaged_metrics(kind, b, y)
    resampled_a = seed_averaged_metrics(kind, a, y, index)
    resampled_b = seed_averaged_metrics(kind, b, y, index)
    identical = np.array_equal(a, b)
    return {
        metric: paired_difference_test(
            float(observed_a[metric][0] - observed_b[metric][0]),
            resampled_a[metric] - resampled_b[metric],
            identical,
        )
        for metric in observed_a
    }


def _prediction_arrays(
    predictions_a: np.ndarray, predictions_b: np.ndarray, truths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.atleast_2d(np.asarray(predictions_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(predictions_b, dtype=np.float64))
    y = np.asarray(truths, dtype=np.float64)
    if y.ndim != 1 or a.shape[1:] != y.shape or b.shape[1:] != y.shape:
        raise ValueError(
            f"predictions must be (seeds, N) and truths (N,), got {a.shape}, {b.shape}, {y.shape}"
        )
    if y.size < 2:
        raise InsufficientDataError(
            f"paired bootstrap: got {y.size} test sample(s); it needs at least 2"
        )
    return a, b, y


def bootstrap_indices(n_samples: int, n_resamples: int, seed: int) -> np.ndarray:
    """(R, N) sample indices drawn with replacement from `default_rng(seed)`: resample r is
    row r. They depend only on (N, R, seed), so every method is scored on the same sets."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    return np.random.default_rng(seed).integers(0, n_samples, size=(n_resamples, n_samples))


def seed_averaged_metrics(
    kind: str,
    predictions: np.ndarray,
    truths: np.ndarray,
    index: np.ndarray | None = None,
    chunk: int = 1000,
) -> dict[str, np.ndarray]:
    """{metric: (R,)}: the mean over the S rows of `predictions` (S, N) of each metric of
    `kind` on the resampled test sets `index` (R, N) (None: the test set itself, R = 1).
    Resamples are scored `chunk` rows at a time, so memory stays O(chunk x N)."""
    from harness.statistics.batch_metrics import compute_metrics_batch

    if index is None:
        index = np.arange(truths.size)[None, :]
    totals: dict[str, np.ndarray] = {}
    for start in range(0, index.shape[0], chunk):
        rows = index[start : start + chunk]
        labels = truths[rows]
        for prediction in predictions:
            for metric, values in compute_metrics_batch(kind, prediction[rows], labels).items():
                part = totals.setdefault(metric, np.zeros(index.shape[0]))
                part[start : start + rows.shape[0]] += values
    return {metric: values / predictions.shape[0] for metric, values in totals.items()}


def paired_difference_test(
    observed: float, differences: np.ndarray, identical: bool = False
) -> tuple[float, float]:
    """(observed, two-sided p) for an observed difference and its resampled values (R,):
    (0, 1) for identical predictions, NaN p for a non-finite observed difference, else
    `bootstrap_p_value`."""
    if identical:
        return 0.0, 1.0
    if not math.isfinite(observed):
        return observed, math.nan
    return observed, bootstrap_p_value(observed, differences)


def bootstrap_p_value(observed: float, differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of `observed` against resampled `differences` (R,) shifted
    to mean zero (the null; Efron & Tibshirani's shift method), counting only finite
    resamples: (count + 1) / (R' + 1). Its smallest value is 1 / (R' + 1), so a family of m
    Holm-corrected tests needs R > m / alpha to be able to reject at all."""
    finite = differences[np.isfinite(differences)]
    if finite.size == 0:
        return math.nan
    null = finite - finite.mean()
    extreme = int(np.sum(np.abs(null) >= abs(observed)))
    return (extreme + 1) / (finite.size + 1)
