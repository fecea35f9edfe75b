"""Stage `compare` (`msabench compare`): per benchmark dataset, the significance-tested
comparison table with the "beats the best simple baseline" marks and the cost table under it
(results/tables/<dataset>.md/.tex/.csv), its figures and their data (results/figures/<dataset>/,
accuracy against training time among them), an MLflow run `compare-<dataset>` holding them; then the
headline DVC metrics files results/metrics/<dataset>/<method>.json (four metrics each: what
`dvc metrics show` prints) and the full summary results/metrics.json (a plain output). It
reads only run records, test predictions and tuning studies, so the same inputs give the same
bytes."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from harness import paths
from harness.config import Params
from harness.errors import DataError
from harness.io_utils import atomic_directory, write_text_atomic
from harness.metrics import METRICS, metric_info, metric_label
from harness.records import RunResult, TuningRecord, load_records
from harness.reports.comparison_figures import (
    accuracy_cost_figure,
    seed_points_figure,
    tuning_history_figure,
)
from harness.reports.comparison_files import summary_metrics, write_comparison
from harness.reports.cost import has_costs
from harness.reports.figures import save_figure
from harness.reports.headline import headline_rows, write_headline
from harness.statistics.comparison import TestPredictions, compare_dataset, compare_values
from harness.statistics.cost import accuracy_cost_points, cost_frame
from harness.statistics.cross_validation import PooledRuns, pool_folds
from harness.statistics.seed_flags import flag_seeds
from harness.tracking import (
    Tracker,
    log_artifact,
    log_artifacts,
    log_final,
    log_params,
    set_description,
    set_tags,
    standard_tags,
)
from harness.tuning.history import history_csv, tuning_histories

log = logging.getLogger("msabench")


def run(params: Params) -> dict:
    """Compare every benchmark dataset; returns results/metrics.json's content
    ({dataset: {method: {metric: mean}}})."""
    records = benchmark_records(params)
    summary, headline = {}, {}
    for dataset in params.benchmark.datasets:
        kind = params.dataset(dataset).kind
        part = [r for r in records if r.dataset == dataset]
        predictions = load_test_predictions(part, kind)
        frame = compare_dataset(part, kind, params.compare, predictions)
        cost = cost_frame(part)
        write_comparison(frame, part, paths.tables_dir(), cost)
        _write_figures(params, dataset, kind, frame, cost)
        _log_comparison_run(params, dataset, frame)
        summary[dataset] = summary_metrics(frame)
        headline[dataset] = headline_rows(summary[dataset], kind)
        log.info("compare %s: %d methods x %d seeds", dataset, frame["method"].nunique(),
                 int(frame["n_seeds"].max()))  # fmt: skip
    for group, folds in benchmark_groups(params).items():
        frame = _compare_group(params, group, folds, records)
        if frame is not None:
            summary[group] = summary_metrics(frame)
            headline[group] = headline_rows(summary[group], params.dataset(folds[0]).kind)
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    write_text_atomic(paths.metrics_file(), text)
    write_headline(headline)
    return summary


def benchmark_groups(params: Params) -> dict[str, tuple[str, ...]]:
    """The cross-validation groups every fold of which is a benchmark dataset."""
    return {
        group: folds
        for group, folds in params.groups.items()
        if all(fold in params.benchmark.datasets for fold in folds)
    }


def _compare_group(
    params: Params, group: str, folds: tuple[str, ...], records: list[RunResult]
) -> pd.DataFrame | None:
    """results/tables/<group>.md/.tex/.csv: the group's folds pooled into (fold, seed) runs
    (`harness.statistics.cross_validation`), compared with the seed tests and ASO paired by
    fold and seed (no test-sample bootstrap: each fold has its own test samples); the cost
    table over every fold's runs. None (and a log line) when no method has every run."""
    part = [r for r in records if r.dataset in folds]
    runs: dict = {}
    for r in part:
        runs.setdefault(r.dataset, {}).setdefault(r.method, {})[r.seed] = r.metrics
    pooled = pool_folds(group, runs, folds, params.seeds)
    if not pooled.values:
        log.info("compare %s: no method has every fold at every seed", group)
        return None
    kind = params.dataset(folds[0]).kind
    settings = params.compare
    flags = flag_seeds(pooled.values, None, None, constant_ratio=settings.flag_constant_ratio,
                       level=settings.flag_outlier_level)  # fmt: skip
    frame = compare_values(group, pooled.values, METRICS[kind], settings, None, flags,
                           settings.simple_baselines)  # fmt: skip
    kept = [r for r in part if r.method in pooled.values]
    write_comparison(frame, kept, paths.tables_dir(), cost_frame(kept), _group_note(pooled))
    log.info("compare %s: %d methods x %d folds x %d seeds", group, len(pooled.values),
             len(folds), len(params.seeds))  # fmt: skip
    return frame


def _group_note(pooled: PooledRuns) -> str:
    """The paragraph under a group table's heading: what its runs are."""
    folds = pooled.folds
    seeds = len(pooled.units) // len(folds)
    note = (
        f"Cross-validation group `{pooled.group}`: {len(folds)} folds ({', '.join(folds)}), each "
        f"tuned on a validation split carved from its own training fold and trained over "
        f"{seeds} seeds; every number below is over the {len(pooled.units)} (fold, seed) runs "
        f'(a "seed" in the legend is one run: run k is fold k // {seeds} + 1 at the params\' '
        f"seed k % {seeds} + 1). Paired tests pair the same fold and seed; there is no "
        "test-sample bootstrap, because each fold has its own test samples."
    )
    if pooled.incomplete:
        left = ", ".join(sorted(pooled.incomplete))
        note += f" Left out (a fold or seed without a run): {left}."
    return note


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


def _write_figures(
    params: Params, dataset: str, kind: str, frame: pd.DataFrame, cost: pd.DataFrame
) -> None:
    """Per-seed scores with mean and CI (one panel per metric), the tuning histories, the
    selection metric against training time when the runs measured their cost, and the data
    behind each as CSV (DVC plots read them)."""
    scores = frame.explode(["seeds", "values"])[["method", "metric", "seeds", "values"]]
    scores = scores.rename(columns={"seeds": "seed", "values": "value"})
    histories = tuning_histories(dataset, params.benchmark.methods)
    select = params.select_metric_for(dataset)
    with atomic_directory(paths.figures_dir(dataset)) as tmp:
        write_text_atomic(tmp / "seed-scores.csv", scores.to_csv(index=False))
        save_figure(seed_points_figure(frame, METRICS[kind], f"{dataset}: test scores per seed"),
                    tmp / "seed-scores")  # fmt: skip
        write_text_atomic(tmp / "tuning-history.csv", history_csv(histories))
        write_text_atomic(tmp / "tuning-best.csv", _best_so_far_wide(histories))
        save_figure(tuning_history_figure(histories, f"{dataset}: tuning", select),
                    tmp / "tuning-history")  # fmt: skip
        if has_costs(cost):
            _write_cost_figure(tmp, dataset, frame, cost, select)


def _write_cost_figure(
    folder: Path, dataset: str, frame: pd.DataFrame, cost: pd.DataFrame, select: str
) -> None:
    """cost.png/.pdf and cost.csv: the selection metric `select` (the frame's first metric if
    the table lacks it) against training seconds, one point per method."""
    metric = select if select in set(frame["metric"]) else str(frame["metric"].iloc[0])
    points = accuracy_cost_points(frame, cost, metric)
    write_text_atomic(folder / "cost.csv", points.to_csv(index=False))
    title = f"{dataset}: {metric_label(metric)} against training time"
    save_figure(accuracy_cost_figure(points, metric, title), folder / "cost")


def _best_so_far_wide(histories: pd.DataFrame) -> str:
    """CSV: one row per trial number, one column per method with its best score so far (for a
    DVC linear plot with one line per method)."""
    wide = histories.pivot(index="trial", columns="method", values="best")
    return wide.reset_index().to_csv(index=False)


def _log_comparison_run(params: Params, dataset: str, frame: pd.DataFrame) -> None:
    """MLflow run `compare-<dataset>` (tags stage=compare, dataset, the methods and seeds, the
    best method per metric as `msabench.best.<metric>`; a Markdown headline as its description):
    the seed-mean of every metric per method as `<method>/<metric>`, the comparison settings as
    params, the tables and figures as artifacts. Then each method's tuning history onto its
    tuning parent run (`_log_tuning_figures`)."""
    tags = standard_tags(
        "compare", dataset, methods=",".join(pd.unique(frame["method"])),
        seeds=",".join(str(s) for s in params.seeds),
    )  # fmt: skip
    tracker = Tracker(params.tracking_uri)
    with tracker.run(dataset, f"compare/{dataset}", f"compare-{dataset}", tags):
        means = {f"{r['method']}/{r['metric']}": r["mean"] for _, r in frame.iterrows()}
        log_final({k: v for k, v in means.items() if np.isfinite(v)}, prefix="")
        log_params({f"compare.{k}": v for k, v in params.compare.to_dict().items()})
        set_tags({f"msabench.best.{metric}": name for metric, name in best_methods(frame).items()})
        set_description(run_headline(dataset, frame, params.select_metric_for(dataset)))
        for suffix in ("md", "tex", "csv"):
            log_artifact(paths.tables_dir() / f"{dataset}.{suffix}", "tables")
        log_artifacts(paths.figures_dir(dataset), "figures")
    _tag_flagged_seeds(tracker, dataset, frame)
    _log_tuning_figures(tracker, params, dataset)


def _tag_flagged_seeds(tracker: Tracker, dataset: str, frame: pd.DataFrame) -> None:
    """Tag every seed's training run `msabench.flagged` = the rule that flagged it
    ("constant", "outlier") or "none", with the reason as `msabench.flag_reason`
    (`harness/statistics/seed_flags.py`); re-set on every compare, so a changed rule shows."""
    rows = frame.drop_duplicates("method")
    for _, row in rows.iterrows():
        flags = zip(row["flagged_seeds"], row["flag_rules"], row["flag_reasons"], strict=True)
        flagged = {seed: (rule, reason) for seed, rule, reason in flags}
        for seed in row["seeds"]:
            rule, reason = flagged.get(seed, ("none", ""))
            tags = {"msabench.flagged": rule, "msabench.flag_reason": reason}
            tracker.tag_runs(dataset, f"train/{dataset}/{row['method']}/seed-{seed}", tags)


def best_methods(frame: pd.DataFrame) -> dict[str, str]:
    """{metric: its best method}, the table's (the frame's `is_best`: the best mean, the first
    method in order on an exact tie), in the frame's metric order."""
    best = frame[frame["is_best"].astype(bool)].drop_duplicates("metric")
    return dict(zip(best["metric"], best["method"], strict=True))


def _metric_title(metric: str) -> str:
    """The label of `metric`, "(%)" if shown in percent, and its direction: "MAE ↓",
    "Acc-7 (%) ↑"."""
    info = metric_info(metric)
    percent = " (%)" if info.percent else ""
    return f"{metric_label(metric)}{percent} {'↑' if info.higher_is_better else '↓'}"


def _score(metric: str, row: pd.Series) -> str:
    """The row's mean ± std as the tables print it: percent metrics x100 with 2 decimals, else
    4."""
    scale, decimals = (100.0, 2) if metric_info(metric).percent else (1.0, 4)
    mean, std = float(row["mean"]) * scale, float(row["std"]) * scale
    return f"{mean:.{decimals}f}" + (f" ± {std:.{decimals}f}" if np.isfinite(std) else "")


def run_headline(dataset: str, frame: pd.DataFrame, select: str) -> str:
    """The compare run's description (Markdown): the best method on the selection metric
    `select` first, then the best method per metric (mean ± std over seeds)."""
    best = frame[frame["is_best"].astype(bool)].drop_duplicates("metric").set_index("metric")
    lines = []
    if select in best.index:
        row = best.loc[select]
        lines += [f"**Best {_metric_title(select)}: {row['method']} {_score(select, row)}** "
                  f"({int(row['n_seeds'])} seeds)", ""]  # fmt: skip
    lines.append(f"{dataset}: {frame['method'].nunique()} methods, test split, mean ± std over "
                 f"seeds. Best per metric:")  # fmt: skip
    lines += ["", "| metric | best | mean ± std | seeds |", "|---|---|---|---|"]
    for metric, row in best.iterrows():
        lines.append(f"| {_metric_title(metric)} | {row['method']} | {_score(metric, row)} | "
                     f"{int(row['n_seeds'])} |")  # fmt: skip
    lines += ["", f"Every method and the significance tests: artifact `tables/{dataset}.md`."]
    return "\n".join(lines)


def _log_tuning_figures(tracker: Tracker, params: Params, dataset: str) -> None:
    """Each method's tuning history (the comparison figure's drawing, one method) as artifacts
    figures/tuning-history.png/.pdf of its study's tuning parent run (run key tune/<study>),
    where that run is in this tracking store."""
    histories = tuning_histories(dataset, params.benchmark.methods)
    with tempfile.TemporaryDirectory() as tmp:
        for method, part in histories.groupby("method", sort=False):
            study = TuningRecord.load(paths.best_params_file(dataset, method)).study_name
            folder = Path(tmp) / method
            folder.mkdir()
            title = f"{dataset}: tuning {method}"
            save_figure(tuning_history_figure(part, title, params.select_metric_for(dataset)),
                        folder / "tuning-history")  # fmt: skip
            if not tracker.log_artifacts_to(dataset, f"tune/{study}", folder, "figures"):
                log.info("compare %s: no MLflow run tune/%s in this store; its tuning figure "
                         "is not logged", dataset, study)  # fmt: skip
