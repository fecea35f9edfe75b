"""Pooling a cross-validation group's folds into one set of (fold, seed) runs."""

from __future__ import annotations

import pytest

from harness.statistics.cross_validation import pool_folds


def _runs():
    return {
        "f1": {"a": {1: {"f1": 0.6}, 2: {"f1": 0.7}}, "b": {1: {"f1": 0.5}, 2: {"f1": 0.4}}},
        "f2": {"a": {1: {"f1": 0.8}, 2: {"f1": 0.9}}, "b": {1: {"f1": 0.3}}},
    }


def test_units_are_fold_major_and_shared_by_every_method() -> None:
    pooled = pool_folds("g", _runs(), ["f1", "f2"], [1, 2])
    assert pooled.units == {0: ("f1", 1), 1: ("f1", 2), 2: ("f2", 1), 3: ("f2", 2)}
    assert pooled.values["a"] == {0: {"f1": 0.6}, 1: {"f1": 0.7}, 2: {"f1": 0.8}, 3: {"f1": 0.9}}
    assert pooled.folds == ["f1", "f2"]


def test_a_method_missing_a_run_is_left_out_and_listed() -> None:
    pooled = pool_folds("g", _runs(), ["f1", "f2"], [1, 2])
    assert "b" not in pooled.values
    assert pooled.incomplete == {"b": [("f2", 2)]}


def test_no_folds_is_an_error() -> None:
    with pytest.raises(ValueError, match="group 'g': needs at least one fold"):
        pool_folds("g", _runs(), [], [1])
