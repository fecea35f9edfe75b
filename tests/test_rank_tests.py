"""Friedman + Nemenyi across datasets: by hand, against autorank, and the clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.statistics.ranks import friedman_nemenyi
from harness.statistics.resampling import InsufficientDataError


def test_mean_ranks_and_critical_difference_by_hand() -> None:
    scores = np.array([[0.9, 0.8, 0.7], [0.8, 0.9, 0.7], [0.9, 0.7, 0.8], [0.9, 0.8, 0.7]])
    result = friedman_nemenyi(scores, ["a", "b", "c"])
    assert result.mean_ranks == {"a": 1.25, "b": 2.0, "c": 2.75}
    # q_0.05(3, inf) / sqrt(2) = 2.3437; CD = 2.3437 * sqrt(3 * 4 / (6 * 4)) = 1.6572
    assert result.critical_difference == pytest.approx(1.6572, abs=1e-3)
    assert not result.differs("a", "c")  # 1.5 < CD with 4 datasets
    lower = friedman_nemenyi(1 - scores, ["a", "b", "c"], higher_is_better=False)
    assert lower.mean_ranks == result.mean_ranks


def test_ties_and_identical_methods_give_no_significance() -> None:
    result = friedman_nemenyi(np.full((5, 4), 0.5), ["a", "b", "c", "d"])
    assert result.pvalue == 1.0 and set(result.mean_ranks.values()) == {2.5}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_autorank(seed: int) -> None:
    autorank = pytest.importorskip("autorank")
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({f"m{i}": rng.normal(0.7 + 0.02 * i, 0.03, size=8) for i in range(5)})
    reference = autorank.autorank(data, alpha=0.05, force_mode="nonparametric", order="descending")
    ours = friedman_nemenyi(data.to_numpy(), list(data.columns))
    assert ours.pvalue == pytest.approx(reference.pvalue, rel=1e-9)
    assert ours.critical_difference == pytest.approx(reference.cd, rel=1e-4)  # q differs at 1e-5
    for method, row in reference.rankdf.iterrows():
        assert ours.mean_ranks[method] == pytest.approx(row["meanrank"])


def test_too_few_methods_or_datasets_is_a_clear_message() -> None:
    with pytest.raises(InsufficientDataError, match="got 2 method.*at least 3"):
        friedman_nemenyi(np.ones((4, 2)), ["a", "b"])
    with pytest.raises(InsufficientDataError, match="got 1 dataset.*at least 2"):
        friedman_nemenyi(np.ones((1, 3)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="NaN or inf"):
        friedman_nemenyi(np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]]), ["a", "b", "c"])
