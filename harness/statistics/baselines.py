"""Does a method beat the best simple baseline? The bar of issue 21: unimodal models, a
late-fusion Transformer and a linear floor (`compare.simple_baselines`); a method whose
machinery buys nothing does not clear it. `harness.statistics.comparison` adds these columns
to every comparison frame (`BASELINE_COLUMNS`); `harness/reports/tables.py` marks them.

Decisions (docs/statistics.md, "Beating the best simple baseline"):

- Per metric, the best baseline is the baseline in the run with the best mean over seeds in the
  metric's direction (`harness.metrics`), the first in name order on an exact tie; a baseline
  whose mean is NaN is never best. Baselines are not tested against each other.
- Every other method with a finite mean is compared with it by the tests the table already uses
  against the best method: the paired t-test over the seeds both have, and (with test
  predictions) the paired bootstrap over test samples of the seed-averaged metric, on the same
  resampled test sets. Both are two-sided, as the table's other tests are; requiring the
  direction as well makes each a one-sided test at alpha / 2, which is conservative.
- Holm's correction runs across all these comparisons of the table (every metric x every
  non-baseline method), separately for each test: a family of its own, apart from the
  comparisons with the best method.
- A method beats the best baseline on a metric (`beats_baseline`) when its mean over seeds is
  better than the baseline's, the Holm-adjusted t-test p < alpha, and, where the sample test
  ran, its Holm-adjusted p < alpha with the test-set difference in the same direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.metrics import is_better
from harness.statistics.significance import holm, paired_ttest, summarize

__all__ = ["BASELINE_COLUMNS", "SampleTest", "add_baseline_tests", "best_baseline"]

BASELINE_COLUMNS: tuple[str, ...] = (
    "is_baseline", "baseline", "baseline_difference", "p_baseline_ttest",
    "p_baseline_ttest_holm", "p_baseline_sample", "p_baseline_sample_holm", "beats_baseline",
    "n_baseline_comparisons",
)  # fmt: skip

# (method, against, metric) -> (observed difference method - against on the test set, its
# two-sided bootstrap p): the table's paired bootstrap over test samples
SampleTest = Callable[[str, str, str], tuple[float, float]]
_Series = dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (seeds (S,), values (S,))


def best_baseline(metric: str, means: dict[str, float], baselines: Sequence[str]) -> str | None:
    """The baseline of `baselines` with the best mean in `means` ({method: mean}) for
    `metric`; the first in name order on an exact tie; None if no baseline has a finite mean."""
    best: str | None = None
    for name in sorted(b for b in baselines if b in means):
        mean = means[name]
        if not math.isnan(mean) and (best is None or is_better(metric, mean, means[best])):
            best = name
    return best


def add_baseline_tests(
    frame: pd.DataFrame,
    series: dict[str, _Series],
    baselines: Sequence[str],
    alpha: float,
    sample_test: SampleTest | None = None,
) -> None:
    """Fill `BASELINE_COLUMNS` of a comparison `frame` (one row per method and metric) in place.

    `series`: {metric: {method: (seeds (S,), values (S,))}}, the frame's per-seed scores;
    `baselines`: the configured simple baselines (those absent from the frame are ignored);
    `sample_test`: the per-sample bootstrap, None without test predictions (the rule then
    rests on the t-test alone)."""
    present = sorted(set(baselines) & set(frame["method"]))
    frame["is_baseline"] = frame["method"].isin(present)
    frame["baseline"] = ""
    for column in ("baseline_difference", *(f"p_baseline_{t}{h}" for t in ("ttest", "sample")
                                            for h in ("", "_holm"))):  # fmt: skip
        frame[column] = math.nan
    frame["beats_baseline"] = False
    frame["n_baseline_comparisons"] = 0
    tests = []  # (frame index, better in mean, test-set difference better)
    for index, row in frame.iterrows():
        metric_series = series[row["metric"]]
        means = {m: summarize(values).mean for m, (_, values) in metric_series.items()}
        against = best_baseline(row["metric"], means, present)
        if against is None or row["method"] in present or math.isnan(means[row["method"]]):
            continue
        tests.append((index, *_compare(frame, index, row, metric_series, means, against,
                                       sample_test)))  # fmt: skip
    _holm_and_mark(frame, tests, alpha, sample_test is not None)


def _compare(
    frame: pd.DataFrame,
    index: Any,
    row: pd.Series,
    series: _Series,
    means: dict[str, float],
    against: str,
    sample_test: SampleTest | None,
) -> tuple[bool, bool]:
    """Fill one row's comparison with `against`; returns (better in mean, better on the test
    set (True without the sample test))."""
    method, metric = row["method"], row["metric"]
    frame.at[index, "baseline"] = against
    frame.at[index, "baseline_difference"] = means[method] - means[against]
    (seeds, values), (base_seeds, base_values) = series[method], series[against]
    _, mine, theirs = np.intersect1d(seeds, base_seeds, return_indices=True)
    frame.at[index, "p_baseline_ttest"] = paired_ttest(values[mine], base_values[theirs])
    on_test_set = True
    if sample_test is not None:
        difference, p = sample_test(method, against, metric)
        frame.at[index, "p_baseline_sample"] = p
        on_test_set = is_better(metric, difference, 0.0)
    return is_better(metric, means[method], means[against]), on_test_set


def _holm_and_mark(
    frame: pd.DataFrame, tests: list[tuple[Any, bool, bool]], alpha: float, with_samples: bool
) -> None:
    """Holm across the baseline comparisons (each test its own family) and the marks."""
    frame["n_baseline_comparisons"] = len(tests)
    if not tests:
        return
    rows = [index for index, _, _ in tests]
    ttest = holm(frame.loc[rows, "p_baseline_ttest"].to_numpy(dtype=np.float64))
    frame.loc[rows, "p_baseline_ttest_holm"] = ttest
    passed = ttest < alpha
    if with_samples:
        sample = holm(frame.loc[rows, "p_baseline_sample"].to_numpy(dtype=np.float64))
        frame.loc[rows, "p_baseline_sample_holm"] = sample
        passed &= sample < alpha
    for (index, better, on_test_set), ok in zip(tests, passed, strict=True):
        frame.at[index, "beats_baseline"] = bool(ok and better and on_test_set)
