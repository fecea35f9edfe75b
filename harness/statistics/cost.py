"""What each method cost on one dataset, from its runs' `RunCost` records: a pure function of the
records (`cost_frame`), rendered by `harness/reports/cost.py` (table) and
`harness/reports/comparison_figures.py` (accuracy against training time).

Decisions:

- One row per method (name order): the mean over the seeds whose record has a cost (`n_runs`),
  and the sample std (ddof=1; NaN with one run) of the three times, which vary between seeds
  (epochs run, machine load); parameter counts are the same for every seed of a method.
- A record written before costs were measured (`cost` None) is left out; a method without any
  has NaN everywhere and `n_runs` 0. The GPU peak is NaN where no run of the method had one.
- `device` and `inference_batch_size` are the distinct values of the method's runs, joined
  with "; " (one value in a normal run).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.records import RunResult

__all__ = ["COST_COLUMNS", "TIMES", "accuracy_cost_points", "cost_frame"]

TIMES = ("train_seconds_total", "train_seconds_per_epoch", "inference_ms_per_sample")
_MEANS = ("parameters_total", "parameters_trained", *TIMES, "peak_host_memory_mb",
          "peak_gpu_memory_mb")  # fmt: skip
COST_COLUMNS: tuple[str, ...] = (
    "method", "n_runs", *_MEANS, *(f"{name}_std" for name in TIMES), "inference_batch_size",
    "inference_samples", "device",
)  # fmt: skip


def cost_frame(records: list[RunResult]) -> pd.DataFrame:
    """(M, len(COST_COLUMNS)) frame: per method of `records` (one dataset), the mean cost over
    its seeds (the std for the times) and where it ran."""
    rows = []
    for method in sorted({r.method for r in records}):
        costs = [r.cost for r in records if r.method == method and r.cost is not None]
        row: dict = {"method": method, "n_runs": len(costs)}
        for name in _MEANS:
            row[name] = _mean([getattr(c, name) for c in costs])
        for name in TIMES:
            row[f"{name}_std"] = _std([getattr(c, name) for c in costs])
        row["inference_batch_size"] = _distinct([c.inference_batch_size for c in costs])
        row["inference_samples"] = _distinct([c.inference_samples for c in costs])
        row["device"] = _distinct([c.device for c in costs])
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COST_COLUMNS))


def _mean(values: list) -> float:
    """Mean of the values that are not None; NaN when none is."""
    numbers = [float(v) for v in values if v is not None]
    return float(np.mean(numbers)) if numbers else math.nan


def _std(values: list) -> float:
    """Sample std (ddof=1) of the values; NaN with fewer than two."""
    numbers = [float(v) for v in values if v is not None]
    return float(np.std(numbers, ddof=1)) if len(numbers) > 1 else math.nan


def _distinct(values: list) -> str:
    """The distinct values in first-seen order, joined with "; " ("" for none)."""
    return "; ".join(str(v) for v in dict.fromkeys(values))


def accuracy_cost_points(frame: pd.DataFrame, cost: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per method with a measured cost: its training seconds (mean and std over seeds)
    beside its `metric` score (mean and std over seeds) from the comparison `frame` (one
    dataset); columns method, train_seconds_total, train_seconds_total_std, metric, mean, std,
    n_seeds. The data of the accuracy-against-cost figure (and its CSV)."""
    scores = frame[frame["metric"] == metric].drop_duplicates("method")
    scores = scores[["method", "metric", "mean", "std", "n_seeds"]]
    times = cost.loc[cost["n_runs"] > 0, ["method", "train_seconds_total",
                                          "train_seconds_total_std"]]  # fmt: skip
    points = times.merge(scores, on="method", how="inner")
    return points[["method", "train_seconds_total", "train_seconds_total_std", "metric", "mean",
                   "std", "n_seeds"]].reset_index(drop=True)  # fmt: skip
