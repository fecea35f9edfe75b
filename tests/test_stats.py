"""Statistics over seeds, on small cases whose answers are checked by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from harness.statistics.significance import (
    Summary,
    holm,
    paired_ttest,
    summarize,
    wilcoxon_signed_rank,
)

T_975_DF2 = 4.302652729911275  # Student t quantile 0.975 with 2 degrees of freedom (tables)


def test_summarize_by_hand() -> None:
    s = summarize(np.array([1.0, 2.0, 3.0]))
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    half = T_975_DF2 * 1.0 / math.sqrt(3)
    assert s.ci_low == pytest.approx(2.0 - half)
    assert s.ci_high == pytest.approx(2.0 + half)


def test_summarize_constant_and_single() -> None:
    assert summarize(np.array([0.5, 0.5])) == Summary(2, 0.5, 0.0, 0.5, 0.5)
    single = summarize(np.array([0.7]))
    assert single.n == 1 and single.mean == 0.7
    assert math.isnan(single.std) and math.isnan(single.ci_low) and math.isnan(single.ci_high)


def test_summarize_nan_in_nan_out_and_bad_input() -> None:
    assert math.isnan(summarize(np.array([0.1, np.nan])).mean)
    with pytest.raises(ValueError, match="empty"):
        summarize(np.array([]))
    with pytest.raises(ValueError, match="1-D"):
        summarize(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="confidence"):
        summarize(np.array([1.0, 2.0]), confidence=95)


def test_paired_ttest_by_hand() -> None:
    # differences [1, 2, 3]: mean 2, sd 1, t = 2 * sqrt(3), df = 2.
    # For df = 2 the two-sided p is 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14).
    p = paired_ttest(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    assert p == pytest.approx(1 - math.sqrt(12 / 14))


def test_paired_ttest_degenerate_cases() -> None:
    same = np.array([0.8, 0.81, 0.79])
    assert paired_ttest(same, same.copy()) == 1.0
    assert math.isnan(paired_ttest(np.array([0.8]), np.array([0.7])))
    assert math.isnan(paired_ttest(np.array([0.8, np.nan]), np.array([0.7, 0.6])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert paired_ttest(np.array([1.5, 2.5, 3.5]), np.array([1.0, 2.0, 3.0])) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        paired_ttest(np.zeros(3), np.zeros(2))


def test_paired_ttest_is_symmetric() -> None:
    a, b = np.array([0.81, 0.79, 0.83, 0.80]), np.array([0.78, 0.79, 0.80, 0.76])
    assert paired_ttest(a, b) == pytest.approx(paired_ttest(b, a))


def test_wilcoxon_five_positive_differences() -> None:
    a = np.array([0.80, 0.81, 0.82, 0.83, 0.84])
    assert wilcoxon_signed_rank(a, a - 0.01 * np.arange(1, 6)) == pytest.approx(0.0625)
    # tied |d| and a zero difference (dropped): 4 positive differences -> 2 / 2^4, exactly
    diffs = np.array([1.0, 1.0, 2.0, 0.0, 3.0])
    assert wilcoxon_signed_rank(diffs, np.zeros(5)) == pytest.approx(0.125)


def test_wilcoxon_mixed_signs_by_hand() -> None:
    # differences [1, -2, 3, 4, 5]: ranks 1..5, W- = 2. Subsets of {1..5} with sum <= 2:
    # {}, {1}, {2} -> P(W <= 2) = 3/32, two-sided p = 6/32.
    diffs = np.array([1.0, -2.0, 3.0, 4.0, 5.0])
    assert wilcoxon_signed_rank(diffs, np.zeros(5)) == pytest.approx(6 / 32)


def test_wilcoxon_degenerate_cases() -> None:
    same = np.array([0.5, 0.6])
    assert wilcoxon_signed_rank(same, same.copy()) == 1.0
    assert math.isnan(wilcoxon_signed_rank(np.array([]), np.array([])))
    assert math.isnan(wilcoxon_signed_rank(np.array([np.nan, 1.0]), np.array([0.0, 0.0])))
    assert wilcoxon_signed_rank(np.array([1.0]), np.array([0.0])) == 1.0


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, max(0.06, 1 * 0.04)
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])


def test_holm_caps_at_one_and_is_monotone() -> None:
    np.testing.assert_allclose(holm(np.array([0.5, 0.6])), [1.0, 1.0])
    p = np.array([0.002, 0.2, 0.011, 0.04, 0.013])
    adjusted = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p)


def test_holm_nan_excluded_from_family() -> None:
    adjusted = holm(np.array([0.01, np.nan, 0.04]))
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert holm(np.array([])).shape == (0,)
    assert np.all(np.isnan(holm(np.array([np.nan, np.nan]))))


def test_holm_single_and_bad_input() -> None:
    np.testing.assert_allclose(holm(np.array([0.03])), [0.03])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm(np.array([0.5, 1.5]))
