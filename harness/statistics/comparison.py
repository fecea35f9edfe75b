"""Comparison frames computed from per-seed scores (and, when given, per-sample test
predictions): the statistics behind every table; `harness/reports/tables.py` renders them.

`compare_dataset` builds the long frame for one dataset's run records; `compare_values` does it
for any {method: {seed: {metric: value}}} (e.g. areas under missing-rate curves). One row per
(method, metric), per-seed values kept. Decisions:

- The best method per metric has the best *mean* in the metric's direction (`harness.metrics`);
  on a tie the method whose name sorts first wins. A method whose mean is NaN is never best.
- The 95% CI is the percentile bootstrap of the mean over seeds (`resampling.bootstrap_ci`),
  NaN with fewer than 2 seeds.
- Every other method is compared with the best:
  - paired by seed, on the seeds both have (`n_pairs`): two-sided paired t-test and Wilcoxon
    signed-rank test;
  - Almost Stochastic Order: epsilon_min of the best over the method (`aso_epsilon`, unpaired),
    with deepsig's Bonferroni correction over the table's comparisons; the best "almost
    stochastically dominates" the method when epsilon_min < 0.2;
  - with test predictions: the paired bootstrap over test samples of the seed-averaged metric
    (`harness.statistics.resampling.seed_averaged_metrics` on shared resampled test sets), the
    test-set variance that seed variance misses. Its resample count is raised to
    ceil(2 m / alpha) for m comparisons when the configured count is smaller, so a Monte-Carlo
    p-value can clear Holm's threshold at all (`sample_resamples`).
- Holm's correction runs across ALL comparisons of a table (every metric x every method compared
  with the best), separately for each test's p-values.
- A `sig_*` flag is true when that test's Holm-adjusted p < alpha *and* the method is worse
  than the best (on the paired seeds for the seed tests, on the test set for the sample test).
  `significant` is the paired t-test's flag (the `*` marker).
- Every resampling uses `CompareConfig.seed`, so the same records give the same frame.
- Seeds that collapsed (nearly constant test predictions) or fall far outside the method's
  other seeds are flagged (`seed_flags.flag_seeds`: `flagged_seeds`, `flag_rules`,
  `flag_reasons`) but kept
  in every statistic above; `mean_unflagged` / `std_unflagged` give the summary without them.
- The comparison table (`compare_dataset`) also tests every method against the best simple
  baseline (`compare.simple_baselines`) with the same two tests, Holm-corrected as a family of
  their own (`harness.statistics.baselines`: `BASELINE_COLUMNS`, `beats_baseline`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.config.sections import CompareConfig
from harness.errors import DataError, UnknownNameError
from harness.metrics import METRICS, is_better, metric_info
from harness.records import RunResult
from harness.statistics.baselines import BASELINE_COLUMNS, add_baseline_tests
from harness.statistics.resampling import (
    ASO_THRESHOLD,
    InsufficientDataError,
    aso_epsilon,
    bootstrap_ci,
    bootstrap_indices,
    paired_difference_test,
    seed_averaged_metrics,
)
from harness.statistics.seed_flags import SeedFlag, flag_seeds
from harness.statistics.significance import holm, paired_ttest, summarize, wilcoxon_signed_rank

__all__ = [
    "FRAME_COLUMNS",
    "TestPredictions",
    "compare_dataset",
    "compare_values",
]

FRAME_COLUMNS: tuple[str, ...] = (
    "dataset", "method", "metric", "higher_is_better", "n_seeds", "n_pairs", "mean", "std",
    "ci_low", "ci_high", "is_best", "difference", "p_ttest", "p_ttest_holm", "p_wilcoxon",
    "p_wilcoxon_holm", "p_sample", "p_sample_holm", "aso_epsilon", "sig_ttest",
    "sig_wilcoxon", "sig_sample", "aso_dominated", "significant", "n_comparisons", "alpha",
    "seed", "n_test_samples", "sample_resamples", "seeds", "values", "flagged_seeds",
    "flag_rules", "flag_reasons", "mean_unflagged", "std_unflagged", *BASELINE_COLUMNS,
)  # fmt: skip

_TESTS = ("ttest", "wilcoxon", "sample")  # the p-value tests, each Holm-corrected per table
_Series = dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (seeds (S,), values (S,))


@dataclass(frozen=True)
class TestPredictions:
    """Every run's test predictions on one test set: `truths` (N,) and, per method and seed,
    predictions (N,) in the same sample order."""

    __test__ = False  # not a pytest class

    kind: str
    truths: np.ndarray
    by_method: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)

    def matrix(self, method: str) -> np.ndarray:
        """(S, N) predictions of `method`, rows in seed order."""
        seeds = self.by_method[method]
        return np.stack([seeds[s] for s in sorted(seeds)])


def compare_dataset(
    records: list[RunResult],
    kind: str,
    settings: CompareConfig | None = None,
    predictions: TestPredictions | None = None,
) -> pd.DataFrame:
    """Comparison frame for the records of ONE dataset, metrics of `kind` ("mosi"/"sims").

    DataError if the records are empty, mix datasets or splits, repeat a seed for a method, or
    lack a metric."""
    if kind not in METRICS:
        raise UnknownNameError(f"unknown metric kind {kind!r}; valid kinds: {', '.join(METRICS)}")
    settings = settings or CompareConfig()
    dataset = _single_dataset(records)
    values = {
        method: {seed: record.metrics for seed, record in seeds.items()}
        for method, seeds in _records_by_method(records).items()
    }
    flags = flag_seeds(
        values,
        predictions.by_method if predictions is not None else None,
        predictions.truths if predictions is not None else None,
        constant_ratio=settings.flag_constant_ratio,
        level=settings.flag_outlier_level,
    )
    return compare_values(
        dataset, values, METRICS[kind], settings, predictions, flags, settings.simple_baselines
    )


def compare_values(
    title: str,
    values: dict[str, dict[int, dict[str, float]]],
    metrics: tuple[str, ...],
    settings: CompareConfig | None = None,
    predictions: TestPredictions | None = None,
    flags: list[SeedFlag] | None = None,
    baselines: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The comparison frame (columns `FRAME_COLUMNS`) of any per-seed scores: `values` is
    {method: {seed: {metric: value}}}; `title` fills the "dataset" column. With `predictions`
    the per-sample bootstrap test runs too (its methods must cover `values`' methods).
    `flags` (seed_flags.flag_seeds) mark seeds in every row of their method. `baselines`: the
    simple baselines every other method is tested against (`baselines.add_baseline_tests`;
    none by default: `compare_dataset` passes `settings.simple_baselines`).
    DataError if a method's seed lacks one of `metrics`."""
    settings = settings or CompareConfig()
    if not values:
        raise DataError(f"{title}: no values to compare")
    ordered = {m: dict(sorted(values[m].items())) for m in sorted(values)}
    if predictions is not None:
        _check_predictions(title, ordered, predictions)
    series = {metric: _metric_series(ordered, metric, title) for metric in metrics}
    bests = {metric: _best_method(metric, s) for metric, s in series.items()}
    n_comparisons = sum(len(series[m]) - 1 for m in metrics if bests[m] is not None)
    scores = _sample_scores(predictions, settings, n_comparisons)
    rows = []
    for metric in metrics:
        rows.extend(
            _metric_rows(title, metric, series[metric], bests[metric], settings, n_comparisons)
        )
    frame = pd.DataFrame(rows, columns=[*FRAME_COLUMNS, "_worse_on_pairs"])
    _add_sample_tests(frame, _sample_tests(bests, scores), predictions)
    _holm_across_table(frame, settings.alpha)
    _add_flags(frame, flags or [])
    sample_test = None if scores is None else scores.test
    add_baseline_tests(frame, series, baselines, settings.alpha, sample_test)
    return frame[list(FRAME_COLUMNS)]


def _add_flags(frame: pd.DataFrame, flags: list[SeedFlag]) -> None:
    """Fill the flag columns: per row, the method's flagged seeds and reasons, and mean/std
    over its other seeds (equal to mean/std where nothing is flagged)."""
    by_method: dict[str, list[SeedFlag]] = {}
    for flag in flags:
        by_method.setdefault(flag.method, []).append(flag)
    seeds_col, rules_col, reasons_col, means, stds = [], [], [], [], []
    for _, row in frame.iterrows():
        own = by_method.get(row["method"], [])
        flagged = {f.seed for f in own}
        kept = [v for s, v in zip(row["seeds"], row["values"], strict=True) if s not in flagged]
        summary = summarize(np.array(kept, dtype=np.float64)) if kept else None
        seeds_col.append([f.seed for f in own])
        rules_col.append([f.rule for f in own])
        reasons_col.append([f.reason for f in own])
        means.append(summary.mean if summary else math.nan)
        stds.append(summary.std if summary else math.nan)
    frame["flagged_seeds"], frame["flag_rules"] = seeds_col, rules_col
    frame["flag_reasons"] = reasons_col
    frame["mean_unflagged"], frame["std_unflagged"] = means, stds


def _single_dataset(records: list[RunResult]) -> str:
    if not records:
        raise DataError("no run records to compare")
    datasets = sorted({r.dataset for r in records})
    if len(datasets) > 1:
        raise DataError(f"records mix datasets {datasets}; compare one dataset at a time")
    splits = sorted({r.split for r in records})
    if len(splits) > 1:
        raise DataError(f"records for {datasets[0]!r} mix splits {splits}")
    return datasets[0]


def _records_by_method(records: list[RunResult]) -> dict[str, dict[int, RunResult]]:
    """{method: {seed: record}}, methods and seeds sorted; DataError on a duplicate seed."""
    by_method: dict[str, dict[int, RunResult]] = {}
    for record in records:
        seeds = by_method.setdefault(record.method, {})
        if record.seed in seeds:
            raise DataError(
                f"method {record.method!r} has two records for seed {record.seed} "
                f"on dataset {record.dataset!r}"
            )
        seeds[record.seed] = record
    return {m: dict(sorted(by_method[m].items())) for m in sorted(by_method)}


def _check_predictions(title: str, values: dict, predictions: TestPredictions) -> None:
    for method, seeds in values.items():
        have = predictions.by_method.get(method, {})
        missing = sorted(set(seeds) - set(have))
        if missing:
            raise DataError(f"{title}: no test predictions for {method} seed(s) {missing}")
        for seed in seeds:
            if have[seed].shape != predictions.truths.shape:
                raise DataError(
                    f"{title}: {method} seed {seed} has {have[seed].shape[0]} test predictions, "
                    f"the test set {predictions.truths.shape[0]}"
                )


def _metric_series(
    values: dict[str, dict[int, dict[str, float]]], metric: str, title: str
) -> _Series:
    """method -> (seeds (S,), values (S,)) of `metric`; DataError if a seed lacks it."""
    series: _Series = {}
    for method, seed_metrics in values.items():
        for seed, metrics in seed_metrics.items():
            if metric not in metrics:
                raise DataError(
                    f"record {method}/{title}/seed {seed} lacks metric {metric!r} "
                    f"(has: {', '.join(metrics)})"
                )
        seeds = np.array(list(seed_metrics), dtype=np.int64)
        raw = [m[metric] for m in seed_metrics.values()]
        array = np.array([math.nan if v is None else float(v) for v in raw])  # null = NaN
        series[method] = (seeds, array)
    return series


def _best_method(metric: str, series: _Series) -> str | None:
    """The method with the best mean (first in order on a tie); None if every mean is NaN."""
    means = {m: summarize(values).mean for m, (_, values) in series.items()}
    best: str | None = None
    for method, mean in means.items():
        if not math.isnan(mean) and (best is None or is_better(metric, mean, means[best])):
            best = method
    return best


def _metric_rows(
    dataset: str,
    metric: str,
    series: _Series,
    best: str | None,
    settings: CompareConfig,
    n_comparisons: int,
) -> list[dict[str, Any]]:
    """Rows for one metric: summaries, bootstrap CIs, seed tests and ASO against the best."""
    higher = metric_info(metric).higher_is_better
    rows = []
    for method, (seeds, values) in series.items():
        summary = summarize(values)
        low, high = _bootstrap_bounds(values, settings)
        row: dict[str, Any] = {
            "dataset": dataset, "method": method, "metric": metric, "higher_is_better": higher,
            "n_seeds": summary.n, "n_pairs": summary.n, "mean": summary.mean,
            "std": summary.std, "ci_low": low, "ci_high": high, "is_best": method == best,
            "difference": math.nan, "p_ttest": math.nan, "p_ttest_holm": math.nan,
            "p_wilcoxon": math.nan, "p_wilcoxon_holm": math.nan, "p_sample": math.nan,
            "p_sample_holm": math.nan, "aso_epsilon": math.nan, "sig_ttest": False,
            "sig_wilcoxon": False, "sig_sample": False, "aso_dominated": False,
            "significant": False, "n_comparisons": n_comparisons, "alpha": settings.alpha,
            "seed": settings.seed, "n_test_samples": 0,
            "sample_resamples": settings.sample_resamples, "seeds": seeds.tolist(),
            "values": values.tolist(),
        }  # fmt: skip
        if best is not None and method != best:
            row.update(_paired_tests(series[method], series[best], metric))
            row["difference"] = summary.mean - summarize(series[best][1]).mean
            if settings.aso:
                row["aso_epsilon"] = _aso(series[best][1], values, higher, settings, n_comparisons)
                row["aso_dominated"] = bool(row["aso_epsilon"] < ASO_THRESHOLD)
        rows.append(row)
    return rows


def _bootstrap_bounds(values: np.ndarray, settings: CompareConfig) -> tuple[float, float]:
    try:
        ci = bootstrap_ci(values, settings.seed, settings.confidence, settings.ci_resamples)
    except InsufficientDataError:
        return math.nan, math.nan
    return ci.low, ci.high


def _aso(
    best: np.ndarray,
    other: np.ndarray,
    higher: bool,
    settings: CompareConfig,
    n_comparisons: int,
) -> float:
    try:
        return aso_epsilon(
            best,
            other,
            settings.seed,
            higher_is_better=higher,
            confidence=settings.confidence,
            num_comparisons=max(n_comparisons, 1),
            n_bootstrap=settings.aso_bootstrap,
        )
    except InsufficientDataError:
        return math.nan


def _paired_tests(
    other: tuple[np.ndarray, np.ndarray], best: tuple[np.ndarray, np.ndarray], metric: str
) -> dict[str, Any]:
    """Paired t-test and Wilcoxon of `other` against `best` on their common seeds, and whether
    `other` is worse on those seeds (the direction the seed tests' flags need)."""
    common, i_other, i_best = np.intersect1d(other[0], best[0], return_indices=True)
    a, b = other[1][i_other], best[1][i_best]
    worse = common.size > 0 and is_better(metric, float(np.mean(b)), float(np.mean(a)))
    return {
        "n_pairs": int(common.size),
        "p_ttest": paired_ttest(a, b),
        "p_wilcoxon": wilcoxon_signed_rank(a, b),
        "_worse_on_pairs": worse,
    }


def sample_resamples(configured: int, n_comparisons: int, alpha: float) -> int:
    """The number of test-set resamples a table uses: the configured number, raised to
    ceil(2 m / alpha) when that is larger, so that the smallest attainable p, 1 / (R + 1), can
    pass Holm's first threshold alpha / m with room to spare (m comparisons)."""
    return max(configured, math.ceil(2 * max(n_comparisons, 1) / alpha))


@dataclass(frozen=True)
class _SampleScores:
    """Every method's seed-averaged metrics on the test set (`observed`: {method: {metric:
    (1,)}}) and on the shared resampled test sets (`resampled`: {method: {metric: (R,)}}), and
    its (S, N) prediction matrix."""

    observed: dict[str, dict[str, np.ndarray]]
    resampled: dict[str, dict[str, np.ndarray]]
    matrices: dict[str, np.ndarray]

    def test(self, method: str, against: str, metric: str) -> tuple[float, float]:
        """(observed difference method - against, two-sided p) of the paired bootstrap."""
        identical = np.array_equal(self.matrices[method], self.matrices[against])
        return paired_difference_test(
            float(self.observed[method][metric][0] - self.observed[against][metric][0]),
            self.resampled[method][metric] - self.resampled[against][metric],
            identical,
        )


def _sample_scores(
    predictions: TestPredictions | None, settings: CompareConfig, n_comparisons: int
) -> _SampleScores | None:
    """Every method scored once on the same resampled test sets (None without predictions);
    each comparison then subtracts."""
    if predictions is None:
        return None
    truths = predictions.truths
    resamples = sample_resamples(settings.sample_resamples, n_comparisons, settings.alpha)
    index = bootstrap_indices(truths.size, resamples, settings.seed)
    kind = predictions.kind
    matrices = {method: predictions.matrix(method) for method in sorted(predictions.by_method)}
    observed, resampled = {}, {}
    for method, matrix in matrices.items():
        observed[method] = seed_averaged_metrics(kind, matrix, truths)
        resampled[method] = seed_averaged_metrics(kind, matrix, truths, index)
    return _SampleScores(observed, resampled, matrices)


def _sample_tests(
    bests: dict[str, str | None], scores: _SampleScores | None
) -> dict[tuple[str, str], tuple[float, float]]:
    """{(method, metric): (difference, p)} of the per-sample bootstrap of each method against
    each metric's best."""
    if scores is None:
        return {}
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for metric, best in bests.items():
        if best is None:
            continue
        for method in scores.matrices:
            if method != best:
                results[(method, metric)] = scores.test(method, best, metric)
    return results


def _add_sample_tests(
    frame: pd.DataFrame,
    tests: dict[tuple[str, str], tuple[float, float]],
    predictions: TestPredictions | None,
) -> None:
    frame["_sample_worse"] = False
    if predictions is None:
        return
    frame["n_test_samples"] = int(predictions.truths.shape[0])
    frame["sample_resamples"] = sample_resamples(
        int(frame["sample_resamples"].iloc[0]), int(frame["n_comparisons"].iloc[0]),
        float(frame["alpha"].iloc[0]),
    )  # fmt: skip
    for index, row in frame.iterrows():
        key = (row["method"], row["metric"])
        if key in tests:
            difference, p = tests[key]
            frame.at[index, "p_sample"] = p
            worse = difference != 0.0 and not is_better(row["metric"], difference, 0.0)
            frame.at[index, "_sample_worse"] = worse


def _holm_across_table(frame: pd.DataFrame, alpha: float) -> None:
    """Holm-adjust each test's p-values across every comparison in `frame` and set the flags."""
    on_pairs = frame["_worse_on_pairs"].eq(True).to_numpy()  # NaN (no comparison): False
    on_samples = frame["_sample_worse"].eq(True).to_numpy()
    worse = {"ttest": on_pairs, "wilcoxon": on_pairs, "sample": on_samples}
    for test in _TESTS:
        adjusted = holm(frame[f"p_{test}"].to_numpy(dtype=np.float64))
        frame[f"p_{test}_holm"] = adjusted
        frame[f"sig_{test}"] = (adjusted < alpha) & worse[test]
    frame["significant"] = frame["sig_ttest"]
