"""The reporting stages: `compare` (per-dataset tables, figures, MLflow comparison runs),
`rank` (Friedman + Nemenyi across datasets, critical-difference diagrams) and `paper`
(a published table regenerated beside this project's runs). Each reads only run records,
test predictions, tuning studies and comparison CSVs, so the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from harness import paths
from harness.config import Params
from harness.errors import DataError
from harness.io_utils import atomic_directory, write_text_atomic
from harness.metrics import METRICS, metric_info
from harness.provenance import git_commit
from harness.records import RunResult, load_records
from harness.tracking import Tracker, log_final

log = logging.getLogger("msabench")

# the metrics a CD diagram is drawn for when several are shared (one diagram each)
CD_METRICS = ("acc2_non0", "acc2", "f1_non0", "f1", "acc7", "mae", "corr")


def _settings(params: Params):
    from harness.comparison import ComparisonSettings

    return ComparisonSettings(**asdict(params.compare))


def benchmark_records(params: Params) -> list[RunResult]:
    """Every benchmark dataset x method x seed run record; DataError naming what is missing."""
    records = [
        r
        for r in load_records(paths.all_runs())
        if r.dataset in params.benchmark_datasets
        and r.method in params.benchmark_methods
        and r.seed in params.seeds
    ]
    have = {(r.dataset, r.method, r.seed) for r in records}
    missing = [
        f"{d}/{m}/seed {s}"
        for d in params.benchmark_datasets
        for m in params.benchmark_methods
        for s in params.seeds
        if (d, m, s) not in have
    ]
    if missing:
        raise DataError(
            f"{paths.all_runs()}: no run record for {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; run `msabench train` for them first"
        )
    return records


def load_test_predictions(records: list[RunResult], kind: str):
    """`TestPredictions` of one dataset's `records` from their seed-<s>-test-predictions.csv
    files; DataError if a file is missing or the files disagree on the test samples."""
    from harness.comparison import TestPredictions

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


def compare(params: Params) -> dict:
    """Per benchmark dataset: the comparison table (results/tables/<d>.md/.tex/.csv), its
    figures and figure data (results/figures/<d>/), an MLflow run `compare-<d>` holding them;
    then results/metrics.json ({dataset: {method: {metric: mean}}}). Returns that dict."""
    from harness.reporting import summary_metrics, write_comparison

    records = benchmark_records(params)
    summary = {}
    for dataset in params.benchmark_datasets:
        kind = params.dataset(dataset).kind
        part = [r for r in records if r.dataset == dataset]
        predictions = load_test_predictions(part, kind)
        frame = write_comparison(part, kind, paths.tables_dir(), _settings(params), predictions)
        _write_figures(params, dataset, kind, frame)
        _log_comparison_run(params, dataset, frame)
        summary[dataset] = summary_metrics(frame)
        log.info("compare %s: %d methods x %d seeds", dataset, frame["method"].nunique(),
                 int(frame["n_seeds"].max()))  # fmt: skip
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    write_text_atomic(paths.metrics_file(), text)
    return summary


def _write_figures(params: Params, dataset: str, kind: str, frame: pd.DataFrame) -> None:
    """Per-seed scores with mean and CI (one panel per metric), the tuning histories, and the
    data behind both as CSV (DVC plots read them)."""
    from harness.comparison_figures import seed_points_figure, tuning_history_figure
    from harness.figures import METRIC_LABELS, save_figure
    from harness.tuning_history import history_csv, tuning_histories

    scores = frame.explode(["seeds", "values"])[["method", "metric", "seeds", "values"]]
    scores = scores.rename(columns={"seeds": "seed", "values": "value"})
    histories = tuning_histories(dataset, params.benchmark_methods)
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
    """MLflow run `compare-<dataset>` (tags stage=compare, dataset, the methods): the
    seed-mean of every metric per method as `<method>/<metric>`, the tables and figures as
    artifacts."""
    import mlflow

    tracker = Tracker(params.tracking_uri)
    tags = {
        "msabench.dataset": dataset,
        "msabench.stage": "compare",
        "msabench.methods": ",".join(pd.unique(frame["method"])),
        "msabench.seeds": ",".join(str(s) for s in params.seeds),
        "mlflow.source.git.commit": git_commit(),
    }
    with tracker.run(dataset, f"compare/{dataset}", f"compare-{dataset}", tags):
        means = {f"{r['method']}/{r['metric']}": r["mean"] for _, r in frame.iterrows()}
        log_final({k: v for k, v in means.items() if np.isfinite(v)}, prefix="")
        mlflow.log_params(
            {f"compare.{k}": v for k, v in asdict(params.compare).items()}
        )  # fmt: skip
        for suffix in ("md", "tex", "csv"):
            mlflow.log_artifact(str(paths.tables_dir() / f"{dataset}.{suffix}"), "tables")
        mlflow.log_artifacts(str(paths.figures_dir(dataset)), artifact_path="figures")


# ------------------------------------------------------------------------------------- rank


def rank(params: Params) -> dict:
    """Friedman + Nemenyi across the benchmark datasets on seed-averaged scores (from the
    comparison CSVs), one analysis and CD diagram per shared headline metric, written to
    results/ranks/ (ranks.md, cd-<metric>.png/.pdf) and results/ranks.json (DVC metrics). With
    fewer than 2 datasets (or 3 methods) the report says why no test ran and gives the
    per-dataset ranks. Returns the ranks.json dict."""
    from harness.reporting import read_comparison_csv

    frames = []
    for dataset in params.benchmark_datasets:
        path = paths.tables_dir() / f"{dataset}.csv"
        if not path.is_file():
            raise DataError(f"{path}: not found; run `msabench compare` first")
        frames.append(read_comparison_csv(path))
    means = pd.concat(frames, ignore_index=True)
    means = means[means["method"].isin(params.benchmark_methods)]
    shared = set.intersection(
        *(set(METRICS[params.dataset(d).kind]) for d in params.benchmark_datasets)
    )
    metrics = [m for m in CD_METRICS if m in shared] or sorted(shared)
    report, summary = [], {}
    with atomic_directory(paths.ranks_dir()) as tmp:
        for metric in metrics:
            table = means[means["metric"] == metric].pivot(
                index="dataset", columns="method", values="mean"
            )
            table = table.loc[list(params.benchmark_datasets), list(params.benchmark_methods)]
            section, entry = _rank_metric(metric, table, params.compare.alpha, tmp)
            report.append(section)
            summary[metric] = entry
        write_text_atomic(tmp / "ranks.md", _rank_intro(params) + "\n".join(report))
    write_text_atomic(paths.RESULTS / "ranks.json", json.dumps(summary, indent=2) + "\n")
    tracker = Tracker(params.tracking_uri)
    tags = {"msabench.stage": "rank", "msabench.dataset": ",".join(params.benchmark_datasets),
            "mlflow.source.git.commit": git_commit()}  # fmt: skip
    with tracker.run("benchmark", "rank", "rank-across-datasets", tags):
        import mlflow

        mlflow.log_artifacts(str(paths.ranks_dir()), artifact_path="ranks")
    return summary


def _rank_intro(params: Params) -> str:
    return (
        "# Ranks across datasets\n\n"
        f"Datasets: {', '.join(params.benchmark_datasets)}; methods: "
        f"{', '.join(params.benchmark_methods)}. Each method's score on a dataset is its mean "
        "over seeds; rank 1 = best on that dataset (ties share the average rank). Friedman "
        "test on the ranks, Nemenyi post-hoc critical difference (Demšar, JMLR 2006), "
        f"alpha = {params.compare.alpha:g}.\n\n"
    )


def _rank_metric(metric: str, table: pd.DataFrame, alpha: float, out: Path) -> tuple[str, dict]:
    """The report section and ranks.json entry of one metric; draws its CD diagram."""
    from harness.cd_diagram import cd_diagram_figure
    from harness.figures import save_figure
    from harness.rank_tests import friedman_nemenyi
    from harness.resampling import InsufficientDataError

    higher = metric_info(metric).higher_is_better
    methods = list(table.columns)
    ranks = table.rank(axis=1, ascending=not higher)  # (N datasets, k methods), 1 = best
    entry = {
        "n_datasets": int(table.shape[0]),
        "ranks_per_dataset": {
            d: {m: float(r) for m, r in row.items()} for d, row in ranks.iterrows()
        },
    }
    try:
        result = friedman_nemenyi(table.to_numpy(), methods, higher_is_better=higher, alpha=alpha)
    except InsufficientDataError as exc:
        entry.update(mean_ranks=None, friedman_p=None, critical_difference=None, note=str(exc))
        body = ranks.T.round(2).to_markdown()
        return (f"## {metric}\n\nNo Friedman test and no CD diagram: {exc}. Ranks per "
                f"dataset:\n\n{body}\n"), entry  # fmt: skip
    save_figure(
        cd_diagram_figure(result, f"{metric}: mean rank across datasets"), out / f"cd-{metric}"
    )
    ordered = sorted(result.mean_ranks.items(), key=lambda item: (item[1], item[0]))
    entry.update(
        mean_ranks={m: float(r) for m, r in ordered},
        friedman_statistic=float(result.statistic),
        friedman_p=float(result.pvalue),
        critical_difference=float(result.critical_difference),
    )
    lines = "\n".join(f"| {m} | {r:.2f} |" for m, r in ordered)
    verdict = "differ" if result.pvalue < alpha else "do not differ significantly"
    return (
        f"## {metric}\n\n![CD diagram](cd-{metric}.png)\n\n| method | mean rank |\n|---|---|\n"
        f"{lines}\n\nFriedman chi² = {result.statistic:.3f}, p = {result.pvalue:.4g} over "
        f"{result.n_datasets} datasets: the methods {verdict} at alpha = {alpha:g}. Nemenyi "
        f"critical difference = {result.critical_difference:.3f} ranks; methods joined by a bar "
        "in the diagram are within it of each other.\n"
    ), entry


# ------------------------------------------------------------------------------------ paper


def papers(params: Params) -> list[Path]:
    """Every table of params `paper.tables` into results/papers/ (replacing the folder: a
    table dropped from the list disappears), one MLflow run each; returns the Markdown paths."""
    from harness.paper_tables import paper_table

    tables = [paper_table(name) for name in params.paper.tables]  # unknown names fail first
    runs, tracker = _paper_runs(params), Tracker(params.tracking_uri)
    with atomic_directory(paths.papers_dir()) as tmp:
        for table in tables:
            _write_paper(params, table, runs, tmp, tracker)
    return [paths.papers_dir() / f"{table.name}.md" for table in tables]


def paper(params: Params, name: str) -> Path:
    """Regenerate the registered paper table `name` into results/papers/<name>.md/.tex/.csv
    (beside the others). Returns the Markdown path."""
    from harness.paper_tables import paper_table

    table = paper_table(name)
    _write_paper(
        params, table, _paper_runs(params), paths.papers_dir(), Tracker(params.tracking_uri)
    )
    return paths.papers_dir() / f"{name}.md"


def _paper_runs(params: Params) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """{dataset: {method: {seed: test metrics}}} of every run record of a mapped dataset (all
    registered methods, the params' seeds)."""
    mapped = {d for d in params.paper.datasets.values() if d is not None}
    runs: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for record in load_records(paths.all_runs()):
        if record.dataset in mapped and record.seed in params.seeds:
            runs.setdefault(record.dataset, {}).setdefault(record.method, {})[record.seed] = (
                record.metrics
            )
    return runs


def _write_paper(params: Params, table, runs: dict, out_dir: Path, tracker: Tracker) -> None:
    from harness.paper_render import write_paper_table
    from harness.paper_report import reproduce_table

    frame = reproduce_table(table, runs, dict(params.paper.datasets), seed=params.compare.seed)
    written = write_paper_table(table, frame, out_dir)
    tags = {"msabench.stage": "paper", "msabench.paper_table": table.name,
            "mlflow.source.git.commit": git_commit()}  # fmt: skip
    with tracker.run("papers", f"paper/{table.name}", f"paper-{table.name}", tags):
        import mlflow

        for path in written:
            mlflow.log_artifact(str(path), "paper")
