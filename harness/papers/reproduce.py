"""Published paper tables regenerated from this project's runs, in the paper's own layout.

`reproduce_table` is a pure function: a `PaperTable` (harness.papers.tables), per-seed TEST metrics
``runs = {project dataset: {method: {seed: {metric: fraction}}}}`` and a mapping from the paper's
dataset names to project datasets in, one long frame out: one row per (paper row, block, column)
in the paper's order, nothing dropped. Values are converted to the paper's unit (the column's
`scale`) before any statistic, so mean, std, CI and difference are all in the paper's units.

- mean over seeds; std is the sample std (ddof=1); the CI is the percentile bootstrap CI of the
  mean (`harness.statistics.resampling.bootstrap_ci`) drawn with the caller's `seed` for every
  cell, so the same inputs and seed give the same frame, bit for bit.
- difference = mean - reported; inside_ci = reported in [ci_low, ci_high] (None when either is
  missing).
- status (`STATUSES`), first match wins: "method not implemented" (the row has no project
  method), "dataset not mapped" (no project dataset stands for the paper's), "dataset not run"
  (mapped, but absent from runs), "method not run" (no seeds of this method on it), "metric not
  recorded" (its runs lack the column's metric, e.g. a CH-SIMS block mapped to a MOSI-kind
  dataset), "too few seeds" (one seed: mean shown, no std or CI), "reported n/a" (reproduced,
  no public number), "ok".

The renderers and the writer are in `harness.papers.render`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.papers.tables import PaperColumn, PaperTable
from harness.statistics.resampling import bootstrap_ci

__all__ = ["FRAME_COLUMNS", "STATUSES", "reproduce_table"]

Runs = Mapping[str, Mapping[str, Mapping[int, Mapping[str, float | None]]]]

STATUSES: dict[str, str] = {
    "ok": "reproduced and compared with the reported value",
    "reported n/a": "reproduced; the paper's number is not public",
    "too few seeds": "one seed only: mean shown, no std or CI",
    "method not implemented": "this project does not implement the method",
    "dataset not mapped": "no project dataset stands for the paper's dataset",
    "dataset not run": "the mapped project dataset has no runs",
    "method not run": "the method has no runs on the mapped dataset",
    "metric not recorded": "the method's runs lack this metric",
}
_WITH_NUMBERS = ("ok", "reported n/a", "too few seeds")

FRAME_COLUMNS: tuple[str, ...] = (
    "table", "paper_dataset", "project_dataset", "label", "method", "column", "metric", "scale",
    "reported", "n_seeds", "mean", "std", "ci_low", "ci_high", "difference", "inside_ci",
    "status", "confidence", "n_resamples", "ci_seed",
)  # fmt: skip

_EMPTY: dict[str, Any] = {
    "n_seeds": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
    "difference": math.nan, "inside_ci": None,
}  # fmt: skip


@dataclass(frozen=True)
class _Bootstrap:
    seed: int
    confidence: float
    n_resamples: int


def reproduce_table(
    table: PaperTable,
    runs: Runs,
    dataset_map: Mapping[str, str | None],
    seed: int,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
) -> pd.DataFrame:
    """The long frame (`FRAME_COLUMNS`) comparing `table`'s reported numbers with `runs`.

    `runs`: {project dataset: {method: {seed: {metric: value}}}}, per-seed test metrics as
    fractions (None counts as NaN). `dataset_map`: {paper dataset: project dataset or None}.
    One row per (row, block, column) in the paper's order; see the module docstring for the
    statistics and the status vocabulary."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    bootstrap = _Bootstrap(seed, confidence, n_resamples)
    rows: list[dict[str, Any]] = []
    for row in table.rows:
        for block in table.blocks:
            project = dataset_map.get(block.dataset) or None
            for column, reported in zip(block.columns, row.reported_for(block), strict=True):
                base = {
                    "table": table.name, "paper_dataset": block.dataset,
                    "project_dataset": project, "label": row.label, "method": row.method,
                    "column": column.label, "metric": column.metric, "scale": column.scale,
                    "reported": math.nan if reported is None else float(reported),
                    "confidence": confidence, "n_resamples": n_resamples, "ci_seed": seed,
                }  # fmt: skip
                cell = _reproduce_cell(
                    row.method, column, project, runs, base["reported"], bootstrap
                )
                rows.append(base | cell)
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def _reproduce_cell(
    method: str | None,
    column: PaperColumn,
    project: str | None,
    runs: Runs,
    reported: float,
    bootstrap: _Bootstrap,
) -> dict[str, Any]:
    """The statistics and status of one (row, column) cell."""
    status = _blocking_status(method, project, runs)
    if status is not None:
        return _EMPTY | {"status": status}
    assert method is not None and project is not None
    per_seed = runs[project][method]
    if any(column.metric not in per_seed[s] for s in per_seed):
        return _EMPTY | {"status": "metric not recorded"}
    values = np.array(
        [_as_float(per_seed[s][column.metric]) for s in sorted(per_seed)], dtype=np.float64
    )  # (S,) fractions, seeds in order
    return _statistics(values * column.scale, reported, bootstrap)


def _blocking_status(method: str | None, project: str | None, runs: Runs) -> str | None:
    """The status that leaves a cell without numbers, or None if it can be reproduced."""
    if method is None:
        return "method not implemented"
    if project is None:
        return "dataset not mapped"
    if project not in runs:
        return "dataset not run"
    if not runs[project].get(method):
        return "method not run"
    return None


def _as_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _statistics(values: np.ndarray, reported: float, bootstrap: _Bootstrap) -> dict[str, Any]:
    """mean, std (ddof=1), bootstrap CI, difference, inside_ci and status of `values` (S,)."""
    mean = float(np.mean(values))
    result: dict[str, Any] = _EMPTY | {"n_seeds": int(values.size), "mean": mean}
    if values.size < 2:
        return result | {"difference": mean - reported, "status": "too few seeds"}
    ci = bootstrap_ci(
        values,
        seed=bootstrap.seed,
        confidence=bootstrap.confidence,
        n_resamples=bootstrap.n_resamples,
    )
    computable = all(math.isfinite(v) for v in (reported, ci.low, ci.high))
    return result | {
        "std": float(np.std(values, ddof=1)),
        "ci_low": ci.low,
        "ci_high": ci.high,
        "difference": mean - reported,
        "inside_ci": bool(ci.low <= reported <= ci.high) if computable else None,
        "status": "ok" if math.isfinite(reported) else "reported n/a",
    }


# ---------------------------------------------------------------------------------- rendering
