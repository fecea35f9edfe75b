"""Stage `rank` (`msabench rank`): Friedman test and Nemenyi critical difference across the
benchmark datasets on seed-averaged scores (from the comparison CSVs the compare stage wrote),
one analysis and critical-difference diagram per shared headline metric, written to
results/ranks/ (ranks.md, cd-<metric>.png/.pdf) and results/ranks.json (a plain output, not
merged into the headline `dvc metrics show`: `dvc metrics diff --targets results/ranks.json`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness import paths
from harness.config import Params
from harness.errors import DataError
from harness.io_utils import atomic_directory, write_text_atomic
from harness.metrics import METRICS, metric_info, metric_label
from harness.reports.cd_diagram import cd_diagram_figure
from harness.reports.comparison_files import read_comparison_csv
from harness.reports.figures import save_figure
from harness.statistics.ranks import friedman_nemenyi
from harness.statistics.resampling import InsufficientDataError
from harness.tracking import Tracker, log_artifacts, standard_tags

# the metrics a CD diagram is drawn for when several are shared (one diagram each)
CD_METRICS = ("acc2_non0", "acc2", "f1_non0", "f1", "acc7", "mae", "corr")


def run(params: Params) -> dict:
    """Friedman + Nemenyi across the benchmark datasets on seed-averaged scores (from the
    comparison CSVs), one analysis and CD diagram per shared headline metric, written to
    results/ranks/ (ranks.md, cd-<metric>.png/.pdf) and results/ranks.json. With
    fewer than 2 datasets (or 3 methods) the report says why no test ran and gives the
    per-dataset ranks. Returns the ranks.json dict."""
    frames = []
    for dataset in params.benchmark.datasets:
        path = paths.tables_dir() / f"{dataset}.csv"
        if not path.is_file():
            raise DataError(f"{path}: not found; run `msabench compare` first")
        frames.append(read_comparison_csv(path))
    means = pd.concat(frames, ignore_index=True)
    means = means[means["method"].isin(params.benchmark.methods)]
    shared = set.intersection(
        *(set(METRICS[params.dataset(d).kind]) for d in params.benchmark.datasets)
    )
    metrics = [m for m in CD_METRICS if m in shared] or sorted(shared)
    report, summary = [], {}
    with atomic_directory(paths.ranks_dir()) as tmp:
        for metric in metrics:
            table = means[means["metric"] == metric].pivot(
                index="dataset", columns="method", values="mean"
            )
            table = table.loc[list(params.benchmark.datasets), list(params.benchmark.methods)]
            section, entry = _rank_metric(metric, table, params.compare.alpha, tmp)
            report.append(section)
            summary[metric] = entry
        write_text_atomic(tmp / "ranks.md", _rank_intro(params) + "\n".join(report))
    write_text_atomic(paths.RESULTS / "ranks.json", json.dumps(summary, indent=2) + "\n")
    tags = standard_tags("rank", ",".join(params.benchmark.datasets))
    with Tracker(params.tracking_uri).run("benchmark", "rank", "rank-across-datasets", tags):
        log_artifacts(paths.ranks_dir(), "ranks")
    return summary


def _rank_intro(params: Params) -> str:
    return (
        "# Ranks across datasets\n\n"
        f"Datasets: {', '.join(params.benchmark.datasets)}; methods: "
        f"{', '.join(params.benchmark.methods)}. Each method's score on a dataset is its mean "
        "over seeds; rank 1 = best on that dataset (ties share the average rank). Friedman "
        "test on the ranks, Nemenyi post-hoc critical difference (Demšar, JMLR 2006), "
        f"alpha = {params.compare.alpha:g}.\n\n"
    )


def _rank_metric(metric: str, table: pd.DataFrame, alpha: float, out: Path) -> tuple[str, dict]:
    """The report section and ranks.json entry of one metric; draws its CD diagram."""
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
        cd_diagram_figure(result, f"{metric_label(metric)}: mean rank across datasets (1 = best)"),
        out / f"cd-{metric}",
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
