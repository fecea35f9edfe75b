"""The headline metrics files that `dvc metrics show` prints: one small JSON per dataset and
method, results/metrics/<dataset>/<method>.json, holding four seed-mean metrics under their
display labels ({"MAE": 0.71, "Corr": 0.62, "Acc-2 (has-0)": 75.3, "F1 (has-0)": 75.1}).

Decisions:

- DVC prints one row per metrics file and one column per key, so one file per (dataset, method)
  gives a table of methods by four metrics that fits a terminal (`dvc metrics show`); the full
  summaries (results/metrics.json: every metric; ranks; robustness areas; probes) are plain
  outputs, shown with `dvc metrics show <file>`.
- Values are the seed means of the comparison table, in the table's units (accuracy and F1 in
  percent; MAE and Corr as they are), NaN as null; numbers only, no prose.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness import paths
from harness.io_utils import atomic_directory, write_text_atomic
from harness.metrics import metric_info, metric_label

__all__ = ["HEADLINE_METRICS", "headline_dir", "headline_file", "headline_rows", "write_headline"]

# per dataset kind: the metrics of `dvc metrics show`, in column order
HEADLINE_METRICS: dict[str, tuple[str, ...]] = {
    "mosi": ("mae", "corr", "acc2_has0", "f1_has0"),
    "mosei": ("mae", "corr", "acc2_has0", "f1_has0"),
    "sims": ("mae", "corr", "acc2", "f1"),
    "binary": ("f1_weighted", "auc", "accuracy", "precision"),
}


def headline_dir() -> Path:
    """The folder of every headline metrics file (a DVC metrics output of the compare stage)."""
    return paths.RESULTS / "metrics"


def headline_file(dataset: str, method: str) -> Path:
    """results/metrics/<dataset>/<method>.json."""
    return headline_dir() / dataset / f"{method}.json"


def headline_rows(
    summary: dict[str, dict[str, float | None]], kind: str
) -> dict[str, dict[str, float | None]]:
    """{method: {metric label: seed mean in table units}} of one dataset's `summary`
    ({method: {metric: mean}}, `harness.reports.comparison_files.summary_metrics`); KeyError
    if a method lacks a headline metric of `kind`."""
    rows = {}
    for method, means in summary.items():
        rows[method] = {}
        for metric in HEADLINE_METRICS[kind]:
            value = means[metric]
            scale = 100.0 if metric_info(metric).percent else 1.0
            scaled = None if value is None else round(value * scale, 10)
            rows[method][metric_label(metric)] = scaled
    return rows


def write_headline(rows: dict[str, dict[str, dict[str, float | None]]]) -> list[Path]:
    """Replace results/metrics/ atomically with one file per dataset and method of `rows`
    ({dataset: `headline_rows`}); returns the paths written."""
    written = []
    with atomic_directory(headline_dir()) as tmp:
        for dataset, methods in rows.items():
            for method, values in methods.items():
                text = json.dumps(values, indent=2, allow_nan=False) + "\n"
                write_text_atomic(tmp / dataset / f"{method}.json", text)
                written.append(headline_file(dataset, method))
    return written
