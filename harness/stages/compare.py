"""Stage `compare` (`msabench compare`): per benchmark dataset, the significance-tested
comparison table (results/tables/<dataset>.md/.tex/.csv), its figures and their data
(results/figures/<dataset>/), an MLflow run `compare-<dataset>` holding them; then the DVC
metrics file results/metrics.json. It reads only run records, test predictions and tuning
studies, so the same inputs give the same bytes."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from harness import paths
from harness.config import Params
from harness.errors import DataError
from harness.io_utils import atomic_directory, write_text_atomic
from harness.metrics import METRICS
from harness.records import RunResult, load_records
from harness.reports.comparison_figures import seed_points_figure, tuning_history_figure
from harness.reports.figures import METRIC_LABELS, save_figure
from harness.reports.tables import summary_metrics, write_comparison
from harness.statistics.comparison import TestPredictions, compare_dataset
from harness.tracking import (
    Tracker,
    log_artifact,
    log_artifacts,
    log_final,
    log_params,
    standard_tags,
)
from harness.tuning.history import history_csv, tuning_histories

log = logging.getLogger("msabench")


def run(params: Params) -> dict:
    """Compare every benchmark dataset; returns results/metrics.json's content
    ({dataset: {method: {metric: mean}}})."""
    records = benchmark_records(params)
    summary = {}
    for dataset in params.benchmark.datasets:
        kind = params.dataset(dataset).kind
        part = [r for r in records if r.dataset == dataset]
        predictions = load_test_predictions(part, kind)
        frame = compare_dataset(part, kind, params.compare, predictions)
        write_comparison(frame, part, paths.tables_dir())
        _write_figures(params, dataset, kind, frame)
        _log_comparison_run(params, dataset, frame)
        summary[dataset] = summary_metrics(frame)
        log.info("compare %s: %d methods x %d seeds", dataset, frame["method"].nunique(),
                 int(frame["n_seeds"].max()))  # fmt: skip
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    write_text_atomic(paths.metrics_file(), text)
    return summary


def benchmark_records(params: Params) -> list[RunResult]:
    """Every benchmark dataset x method x seed run record; DataError naming what is missing."""
    records = [
        r
        for r in load_records(paths.all_runs())
        if r.dataset in params.benchmark.datasets
        and r.method in params.benchmark.methods
        and r.seed in params.seeds
    ]
    have = {(r.dataset, r.method, r.seed) for r in records}
    missing = [
        f"{d}/{m}/seed {s}"
        for d in params.benchmark.datasets
        for m in params.benchmark.methods
        for s in params.seeds
        if (d, m, s) not in have
    ]
    if missing:
        raise DataError(
            f"{paths.all_runs()}: no run record for {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; run `msabench train` for them first"
        )
    return records


def load_test_predictions(records: list[RunResult], kind: str) -> TestPredictions:
    """`TestPredictions` of one dataset's `records` from their seed-<s>-test-predictions.csv
    files; DataError if a file is missing or the files disagree on the test samples."""
    truths: np.ndarray | None = None
    ids: list[str] | None = None
    by_method: dict[str, dict[int, np.ndarray]] = {}
    for record in records:
        path = paths.run_predictions(record.dataset, record.method, record.seed)
        try:
            table = pd.read_csv(path, dtype={"id": str})
        except FileNotFoundError:
            raise DataError(f"{path}: not found; run `msabench train` again") from None
        if list(table.columns) != ["id", "prediction", "label"]:
            raise DataError(f"{path}: expected columns id,prediction,label, got {list(table)}")
        if ids is None:
            ids, truths = table["id"].tolist(), table["label"].to_numpy(np.float64)
        elif table["id"].tolist() != ids or not np.array_equal(table["label"], truths):
            raise DataError(
                f"{path}: its test samples or labels differ from the other runs of "
                f"{record.dataset}; re-run `msabench train {record.dataset} {record.method}`"
            )
        by_method.setdefault(record.method, {})[record.seed] = table["prediction"].to_numpy(
            np.float64
        )
    assert truths is not None
    return TestPredictions(kind, truths, by_method)


def _write_figures(params: Params, dataset: str, kind: str, frame: pd.DataFrame) -> None:
    """Per-seed scores with mean and CI (one panel per metric), the tuning histories, and the
    data behind both as CSV (DVC plots read them)."""
    scores = frame.explode(["seeds", "values"])[["method", "metric", "seeds", "values"]]
    scores = scores.rename(columns={"seeds": "seed", "values": "value"})
    histories = tuning_histories(dataset, params.benchmark.methods)
    select = params.train.select_metric
    with atomic_directory(paths.figures_dir(dataset)) as tmp:
        write_text_atomic(tmp / "seed-scores.csv", scores.to_csv(index=False))
        save_figure(seed_points_figure(frame, METRICS[kind], f"{dataset}: test scores per seed"),
                    tmp / "seed-scores")  # fmt: skip
        write_text_atomic(tmp / "tuning-history.csv", history_csv(histories))
        write_text_atomic(tmp / "tuning-best.csv", _best_so_far_wide(histories))
        label = f"validation {METRIC_LABELS.get(select, select)}"
        save_figure(tuning_history_figure(histories, f"{dataset}: tuning", label),
                    tmp / "tuning-history")  # fmt: skip


def _best_so_far_wide(histories: pd.DataFrame) -> str:
    """CSV: one row per trial number, one column per method with its best score so far (for a
    DVC linear plot with one line per method)."""
    wide = histories.pivot(index="trial", columns="method", values="best")
    return wide.reset_index().to_csv(index=False)


def _log_comparison_run(params: Params, dataset: str, frame: pd.DataFrame) -> None:
    """MLflow run `compare-<dataset>` (tags stage=compare, dataset, the methods and seeds): the
    seed-mean of every metric per method as `<method>/<metric>`, the comparison settings as
    params, the tables and figures as artifacts."""
    tags = standard_tags(
        "compare", dataset, methods=",".join(pd.unique(frame["method"])),
        seeds=",".join(str(s) for s in params.seeds),
    )  # fmt: skip
    with Tracker(params.tracking_uri).run(
        dataset, f"compare/{dataset}", f"compare-{dataset}", tags
    ):
        means = {f"{r['method']}/{r['metric']}": r["mean"] for _, r in frame.iterrows()}
        log_final({k: v for k, v in means.items() if np.isfinite(v)}, prefix="")
        log_params({f"compare.{k}": v for k, v in params.compare.to_dict().items()})
        for suffix in ("md", "tex", "csv"):
            log_artifact(paths.tables_dir() / f"{dataset}.{suffix}", "tables")
        log_artifacts(paths.figures_dir(dataset), "figures")
