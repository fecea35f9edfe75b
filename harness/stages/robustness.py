"""Stage `robustness` (`msabench robustness DATASET`): every benchmark method's checkpoint of
every seed under the missing-modality protocol (harness/evaluation/robustness.py); writes
results/robustness/<dataset>/ (records.json, robustness.md, areas.csv, lost_areas.csv,
curves.csv, one figure per condition) and the summary results/robustness/<dataset>.json (a
plain output: `dvc metrics diff --targets results/robustness/<dataset>.json`); logs one MLflow
run per (method, seed) and a summary run."""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from harness import paths
from harness.config import Params
from harness.data.spec import MODALITIES
from harness.data.store import read_manifest
from harness.errors import DataError
from harness.evaluation.robustness import RobustnessTask, describe_condition, evaluate_checkpoint
from harness.io_utils import atomic_directory, write_text_atomic
from harness.metrics import METRICS
from harness.placement import worker_devices
from harness.provenance import hardware_facts
from harness.records import RobustnessRecord
from harness.records.robustness import save_records
from harness.reports import figures
from harness.reports import robustness as report
from harness.tracking import Tracker, log_artifacts, log_final, standard_tags
from harness.training.loop import resolve_device
from harness.workers import map_in_order, worker_threads

log = logging.getLogger("msabench")

FIGURE_METRICS = {"mosi": ("acc2_non0", "f1_non0", "acc7", "mae", "corr"),
                  "sims": ("acc2", "acc5", "f1", "mae", "corr")}  # fmt: skip
FIGURE_METRICS["mosei"] = FIGURE_METRICS["mosi"]


def run(params: Params, dataset: str) -> dict:
    """Evaluate, tabulate and plot; returns the metrics summary
    ({condition: {method: {metric: mean area}}})."""
    kind = params.dataset(dataset).kind
    present = read_manifest(paths.feature_store(dataset)).modalities
    if set(present) != set(MODALITIES):
        return _not_applicable(dataset, present)
    records = _evaluate(params, dataset)
    # the areas' tables: bootstrap CIs and the seed tests; ASO is left to the main tables
    settings = replace(params.compare, aso=False)
    frames = report.area_frames(records, dataset, kind, settings)
    summary = report.metrics_summary(frames)
    lost = report.lost_area_frames(records, dataset, kind, settings)
    text = report.render_report(dataset, frames, lost, params.robustness.missing_seed)
    curves = report.curve_frame(records, kind)
    tracker = Tracker(params.tracking_uri)
    missing_seed = params.robustness.missing_seed
    areas = report.areas(records, kind)
    _log_model_runs(tracker, dataset, records, areas, missing_seed, params.device)
    with atomic_directory(paths.robustness_dir(dataset)) as tmp:
        save_records(tmp / "records.json", records)
        write_text_atomic(tmp / "robustness.md", text)
        write_text_atomic(tmp / "areas.csv", report.areas_csv(frames))
        write_text_atomic(tmp / "lost_areas.csv", report.areas_csv(lost))
        write_text_atomic(tmp / "curves.csv", curves.to_csv(index=False))
        for condition in frames:
            figure = figures.rate_curves_figure(
                curves[curves["condition"] == condition],
                f"{dataset}: {describe_condition(condition)}",
                FIGURE_METRICS.get(kind, METRICS[kind]),
            )
            figures.save_figure(figure, tmp / f"curves-{condition}")
        tags = standard_tags("robustness", dataset, missing_seed=missing_seed)
        with tracker.run(dataset, f"robustness/{dataset}", f"robustness-{dataset}", tags):
            log_artifacts(tmp, "robustness")
    write_text_atomic(paths.robustness_metrics(dataset), report.dumps_metrics(summary))
    return summary


def _not_applicable(dataset: str, present: tuple[str, ...]) -> dict:
    """The stage's outputs for a dataset without all three modalities (a text-only one): the
    protocol drops modalities of a text/audio/vision dataset, so there is nothing to evaluate.
    An empty record list, a report saying why, and empty metrics (so DVC records the outputs and
    a second run is a no-op)."""
    reason = (
        f"The missing-modality protocol drops text, audio and vision; dataset '{dataset}' has "
        f"{', '.join(present)} only, so it is not evaluated here."
    )
    log.info("robustness %s: not applicable (%s only)", dataset, ", ".join(present))
    with atomic_directory(paths.robustness_dir(dataset)) as tmp:
        save_records(tmp / "records.json", [])
        write_text_atomic(tmp / "robustness.md", f"# Robustness: {dataset}\n\n{reason}\n")
    write_text_atomic(paths.robustness_metrics(dataset), report.dumps_metrics({}))
    return {}


def _evaluate(params: Params, dataset: str) -> list[RobustnessRecord]:
    """Every (method, seed) checkpoint swept over conditions and rates, in worker processes."""
    tasks = [
        RobustnessTask(
            dataset,
            method,
            seed,
            paths.run_checkpoint(dataset, method, seed),
            paths.feature_store(dataset),
            params.robustness.missing_seed,
            params.eval_batch_size,  # the batch size every evaluation uses
            params.device,
            params.num_threads,
        )  # fmt: skip
        for method in params.benchmark.methods
        for seed in params.seeds
    ]
    absent = [str(t.checkpoint) for t in tasks if not t.checkpoint.is_file()]
    if absent:
        raise DataError(
            f"no checkpoint {', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}; "
            f"run `msabench train {dataset} <method>` first"
        )
    workers = params.robustness.workers
    devices = worker_devices(
        params.device, params.robustness.runs_per_gpu, torch.cuda.device_count()
    )
    processes = len(devices) if devices is not None else workers
    if processes > 1:
        threads = worker_threads(params.num_threads, processes)
        tasks = [replace(task, num_threads=threads) for task in tasks]
    records: list[RobustnessRecord] = []
    for task, task_records in zip(
        tasks, map_in_order(evaluate_checkpoint, tasks, workers, devices), strict=True
    ):
        records.extend(task_records)
        log.info("robustness %s/%s seed %d: %d conditions x rates", task.method, dataset,
                 task.seed, len(task_records))  # fmt: skip
    return records


def _log_model_runs(
    tracker: Tracker,
    dataset: str,
    records: list[RobustnessRecord],
    areas: dict,
    missing_seed: int,
    device: str,
) -> None:
    """One MLflow run per (method, seed): each condition's metric curve (step = rate x 10) and
    its area, so the UI plots the curves and filters them by dataset, method and seed."""
    hardware = hardware_facts(resolve_device(device))
    curves: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
    for r in records:
        by_name = curves.setdefault((r.method, r.seed), {})
        for name, value in r.metrics.items():
            by_name.setdefault(f"{r.condition}/{name}", []).append((round(r.rate * 10), value))
    for (method, seed), model_curves in sorted(curves.items()):
        area_values = {
            f"area/{condition}/{name}": value
            for condition, methods in areas.items()
            for name, value in methods[method][seed].items()
        }
        key = f"robustness/{dataset}/{method}/seed-{seed}"
        tags = standard_tags("robustness", dataset, method=method, seed=seed, hardware=hardware)
        with tracker.run(dataset, key, f"{method}-seed{seed}-robustness", tags) as active:
            run_params = {"missing_seed": missing_seed, "rate_step": "rate x 10"}
            tracker.log_curves(active.info.run_id, model_curves, run_params)
            log_final(area_values, prefix="")
