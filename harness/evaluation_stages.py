"""The stages that evaluate trained checkpoints (written by the train stage) without training:
`probe` (linear probes of a factorized model's representations, synthetic data) and
`robustness` (the missing-modality protocol for every method and seed). The CLI and dvc.yaml call
them; nothing here touches the validation-based model selection.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace

from harness import paths
from harness.checkpoints import load_checkpoint, restore_model
from harness.config import Params
from harness.data.loading import load_dataset
from harness.data.store import read_manifest
from harness.errors import DataError
from harness.io_utils import atomic_directory, write_json_atomic, write_text_atomic
from harness.metrics import METRICS
from harness.provenance import git_commit
from harness.robustness import (
    RobustnessRecord,
    RobustnessTask,
    describe_condition,
    evaluate_checkpoint,
    save_records,
)
from harness.tracking import Tracker, log_final, log_text_artifact
from harness.training import LoopConfig
from harness.workers import map_in_order, worker_threads

log = logging.getLogger("msabench")

FIGURE_METRICS = {"mosi": ("acc2_non0", "f1_non0", "acc7", "mae", "corr"),
                  "sims": ("acc2", "acc5", "f1", "mae", "corr")}  # fmt: skip


def probe(params: Params, dataset: str, method: str) -> dict:
    """Probe the factor representations of `method`'s first-seed trained model for the
    dataset's true latents (synthetic data only); write results/probes/<dataset>/<method>.*."""
    from harness import probes

    store = paths.feature_store(dataset)
    train_latents = probes.load_latents(store, "train")  # fails early without latents
    test_latents = probes.load_latents(store, "test")
    seed = params.seeds[0]
    spec, splits = load_dataset(store, splits=("train", "test"))
    checkpoint = load_checkpoint(paths.run_checkpoint(dataset, method, seed))
    model = restore_model(checkpoint, spec, read_manifest(store).data_hash)
    results = probes.probe_all(
        probes.representations(model, splits["train"]),
        train_latents,
        probes.representations(model, splits["test"]),
        test_latents,
    )
    summary = probes.separation(results)
    metrics = probes.as_metrics(results)
    table = probes.render_markdown(dataset, method, results, summary)
    tags = _tags(dataset, "probe", method=method, seed=seed)
    with Tracker(params.tracking_uri).run(
        dataset, f"probe/{dataset}/{method}", f"probe-{method}", tags
    ):
        log_final({k.replace(">", ""): v for k, v in metrics.items()}, prefix="r2_")
        log_text_artifact(table, "probes.md")
    json_path, md_path = paths.probe_files(dataset, method)
    write_json_atomic(json_path, metrics)
    write_text_atomic(md_path, table)
    for m, row in summary.items():
        log.info(
            "probe %s/%s %s: s %.3f (shared) vs %.3f (unique); u %.3f (unique) vs %.3f (shared)",
            method, dataset, m, row["shared_rep->s"], row["unique_rep->s"],
            row["unique_rep->u"], row["shared_rep->u"],
        )  # fmt: skip
    return {"results": probes.to_rows(results), "separation": summary}


def robustness(params: Params, dataset: str) -> dict:
    """Evaluate every benchmark method's checkpoint of every seed under the missing-modality
    protocol; write results/robustness/<dataset>/ (records.json, robustness.md, areas.csv,
    curves.csv, one figure per condition) and results/robustness/<dataset>.json; log a run per
    (method, seed) and a summary run to MLflow. Returns the metrics summary."""
    from harness import figures, robustness_report
    from harness.comparison import ComparisonSettings

    kind = params.dataset(dataset).kind
    tasks = [
        RobustnessTask(
            dataset,
            method,
            seed,
            paths.run_checkpoint(dataset, method, seed),
            paths.feature_store(dataset),
            params.robustness.missing_seed,
            LoopConfig.eval_batch_size,  # the batch size every evaluation uses
            params.device,
            params.num_threads,
        )  # fmt: skip
        for method in params.benchmark_methods
        for seed in params.seeds
    ]
    absent = [str(t.checkpoint) for t in tasks if not t.checkpoint.is_file()]
    if absent:
        raise DataError(
            f"no checkpoint {', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}; "
            f"run `msabench train {dataset} <method>` first"
        )
    workers = params.robustness.workers
    if workers > 1:
        threads = worker_threads(params.num_threads, workers)
        tasks = [replace(task, num_threads=threads) for task in tasks]
    records: list[RobustnessRecord] = []
    for task, task_records in zip(
        tasks, map_in_order(evaluate_checkpoint, tasks, workers), strict=True
    ):
        records.extend(task_records)
        log.info("robustness %s/%s seed %d: %d conditions x rates", task.method, dataset,
                 task.seed, len(task_records))  # fmt: skip
    # the areas' tables: bootstrap CIs and the seed tests; ASO is left to the main tables
    settings = ComparisonSettings(**asdict(params.compare), aso=False)
    frames = robustness_report.area_frames(records, dataset, kind, settings)
    summary = robustness_report.metrics_summary(frames)
    lost = robustness_report.lost_area_frames(records, dataset, kind, settings)
    report = robustness_report.render_report(dataset, frames, lost, params.robustness.missing_seed)
    curves = robustness_report.curve_frame(records, kind)
    tracker = Tracker(params.tracking_uri)
    _log_model_runs(
        tracker, dataset, records, robustness_report.areas(records, kind),
        params.robustness.missing_seed,
    )  # fmt: skip
    with atomic_directory(paths.robustness_dir(dataset)) as tmp:
        save_records(tmp / "records.json", records)
        write_text_atomic(tmp / "robustness.md", report)
        write_text_atomic(tmp / "areas.csv", robustness_report.areas_csv(frames))
        write_text_atomic(tmp / "lost_areas.csv", robustness_report.areas_csv(lost))
        write_text_atomic(tmp / "curves.csv", curves.to_csv(index=False))
        for condition in frames:
            figure = figures.rate_curves_figure(
                curves[curves["condition"] == condition],
                f"{dataset}: {describe_condition(condition)}",
                FIGURE_METRICS.get(kind, METRICS[kind]),
            )
            figures.save_figure(figure, tmp / f"curves-{condition}")
        tags = _tags(dataset, "robustness")
        with tracker.run(dataset, f"robustness/{dataset}", f"robustness-{dataset}", tags):
            import mlflow

            mlflow.log_artifacts(str(tmp), artifact_path="robustness")
    write_text_atomic(paths.robustness_metrics(dataset), robustness_report.dumps_metrics(summary))
    return summary


def _log_model_runs(
    tracker: Tracker, dataset: str, records: list[RobustnessRecord], areas: dict, missing_seed: int
) -> None:
    """One MLflow run per (method, seed): each condition's metric curve (step = rate x 10) and
    its area, so the UI plots the curves and filters them by dataset, method and seed."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    by_model: dict[tuple[str, int], list[Metric]] = {}
    for r in records:
        for name, value in r.metrics.items():
            by_model.setdefault((r.method, r.seed), []).append(
                Metric(f"{r.condition}/{name}", float(value), now, round(r.rate * 10))
            )
    for (method, seed), metrics in sorted(by_model.items()):
        area_values = {
            f"area/{condition}/{name}": value
            for condition, methods in areas.items()
            for name, value in methods[method][seed].items()
        }
        key = f"robustness/{dataset}/{method}/seed-{seed}"
        tags = _tags(dataset, "robustness", method=method, seed=seed)
        with tracker.run(dataset, key, f"{method}-seed{seed}-robustness", tags) as active:
            params = [Param("missing_seed", str(missing_seed)), Param("rate_step", "rate x 10")]
            tracker.client.log_batch(active.info.run_id, metrics=metrics, params=params)
            log_final(area_values, prefix="")


def _tags(dataset: str, stage: str, **extra) -> dict:
    tags = {"msabench.dataset": dataset, "msabench.stage": stage,
            "mlflow.source.git.commit": git_commit()}  # fmt: skip
    tags.update({f"msabench.{k}": v for k, v in extra.items()})
    return tags
