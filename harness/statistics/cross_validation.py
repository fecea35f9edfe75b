"""Cross-validation groups: the folds of one dataset (MUStARD's five, each a dataset of its own
with `group: <name>`, tuned and trained on its own folds) pooled into one set of per-run scores,
so that a group is compared, tabulated and set beside published numbers like any dataset: the
mean over folds and seeds, tests paired by (fold, seed).

A run unit is one (fold, seed) pair, numbered fold_index x S + seed_index (0-based, folds in
the group's order, seeds in the params' order), so every method's unit k is the same fold and
seed and the paired tests pair them. A method is pooled only with every fold at every seed: one
with a run missing is left out (a mean over fewer folds is not comparable) and listed in
`incomplete`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Runs = Mapping[str, Mapping[str, Mapping[int, Mapping[str, float]]]]  # dataset-method-seed

__all__ = ["PooledRuns", "pool_folds"]


@dataclass(frozen=True)
class PooledRuns:
    """A group's runs pooled over its folds: `values` {method: {unit: {metric: value}}},
    `units` {unit: (fold dataset, seed)}, `incomplete` {method: [(fold, seed) missing]}."""

    group: str
    values: dict[str, dict[int, dict[str, float]]]
    units: dict[int, tuple[str, int]]
    incomplete: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @property
    def folds(self) -> list[str]:
        return list(dict.fromkeys(fold for fold, _ in self.units.values()))


def pool_folds(group: str, runs: Runs, folds: Sequence[str], seeds: Sequence[int]) -> PooledRuns:
    """Pool `runs` ({dataset: {method: {seed: metrics}}}) of the fold datasets `folds` at
    `seeds` into one group (the module docstring). ValueError for no folds or no seeds."""
    if not folds or not seeds:
        raise ValueError(f"group {group!r}: needs at least one fold and one seed")
    units = {
        f * len(seeds) + s: (fold, seed)
        for f, fold in enumerate(folds)
        for s, seed in enumerate(seeds)
    }
    methods = sorted({m for fold in folds for m in runs.get(fold, {})})
    values: dict[str, dict[int, dict[str, float]]] = {}
    incomplete: dict[str, list[tuple[str, int]]] = {}
    for method in methods:
        missing = [
            (fold, seed)
            for fold, seed in units.values()
            if seed not in runs.get(fold, {}).get(method, {})
        ]
        if missing:
            incomplete[method] = missing
            continue
        values[method] = {
            unit: dict(runs[fold][method][seed]) for unit, (fold, seed) in units.items()
        }
    return PooledRuns(group, values, units, incomplete)
