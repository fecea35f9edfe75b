"""Stage `train` (`msabench train DATASET METHOD`): train a method once per seed with its tuned
hyperparameters, evaluate each run once on the test split, and write per seed a `RunResult`
record (its metrics and what the run cost: `RunCost`, harness/training/cost.py), the test
predictions and the checkpoint under results/runs/<dataset>/<method>/.

The directory is replaced atomically. Each finished seed is also kept under
`paths.train_resume` (keyed by the resolved configuration and the digest of the code this stage
runs, `harness.code_identity`) until the whole directory is in place, so a run killed part-way
resumes with the seeds it finished, logs none of them twice, and never keeps seeds of other code.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch

from harness import paths
from harness.code_identity import code_digest
from harness.config import Params
from harness.data.loading import load_dataset
from harness.data.store import check_store_kind, read_manifest
from harness.data.types import SplitData
from harness.io_utils import atomic_directory, sha256_json
from harness.placement import worker_devices
from harness.provenance import git_commit, package_versions
from harness.records import RunResult, TuningRecord
from harness.tracking import (
    Tracker,
    log_cost,
    log_epoch,
    log_final,
    log_json_artifact,
    log_params,
    log_text_artifact,
    set_hardware_tags,
    standard_tags,
    text_model_tags,
)
from harness.training.checkpoints import Checkpoint, save_checkpoint
from harness.training.loop import LoopConfig
from harness.training.seed_runs import SeedOutcome, SeedTask, run_seed, run_seeds
from methods import load_method

log = logging.getLogger("msabench")


def run(params: Params, dataset: str, method: str) -> Path:
    """Train `method` on `dataset` over `params.seeds`; returns the runs directory."""
    resolved, tasks, test = _plan(params, dataset, method)
    # seeds finished by an interrupted run of this exact configuration and code are kept
    code = code_digest("train", (method,))
    resume = paths.train_resume(dataset, method) / sha256_json({**resolved, "code": code})[:16]
    kept = {task.seed for task in tasks if _finished_seed(resume, task.seed)}
    if kept:
        log.info("%s/%s: seeds %s kept from an interrupted run", method, dataset, sorted(kept))
    pending = [task for task in tasks if task.seed not in kept]
    outcomes = _outcomes(Tracker(params.tracking_uri), resolved, pending, test, params)
    target = paths.runs_dir(dataset, method)
    with atomic_directory(target) as tmp:
        for task in tasks:
            if task.seed not in kept:  # train it, log it, then keep it for a resumed run
                record, predictions, state = next(outcomes)
                checkpoint = Checkpoint(
                    method, dataset, task.seed, resolved["hparams"], resolved["data_hash"], state
                )
                _save_finished_seed(resume, record, predictions, checkpoint)
                log.info("%s/%s seed %d: test %s", method, dataset, task.seed,
                         _short(record.metrics))  # fmt: skip
            for name in _seed_files(dataset, method, task.seed):
                shutil.copyfile(resume / f"seed-{task.seed}" / name, tmp / name)
    shutil.rmtree(paths.train_resume(dataset, method), ignore_errors=True)
    return target


def _plan(params: Params, dataset: str, method: str) -> tuple[dict, list[SeedTask], SplitData]:
    """The resolved configuration (dataset, method, hyperparameters: defaults <- fixed <- tuned,
    loop, data hash), one task per seed, and the test split (ids and labels, not standardised:
    each seed run loads, memory-maps, the store itself)."""
    declared = params.dataset(dataset)
    method_cls = load_method(method)
    best = TuningRecord.load(
        paths.best_params_file(dataset, method), missing=f"run `msabench tune {dataset} {method}`"
    )
    store = paths.feature_store(dataset)
    spec, splits = load_dataset(store, standardize=False, splits=("test",))
    check_store_kind(declared.kind, spec.kind, dataset)
    hparams = method_cls.resolve_hparams(
        spec.kind, params.method(method).hparams, best.params, where=f"methods.{method}.hparams"
    )
    loop = LoopConfig.for_training(params, dataset)
    resolved = {
        "dataset": dataset,
        "method": method,
        "hparams": asdict(hparams),
        "loop": asdict(loop),
        "data_hash": read_manifest(store).data_hash,
    }
    if spec.tokens is not None:  # which text model, and how this method reads it
        resolved["text_model"] = method_cls.text_model_facts(hparams, spec)
    tasks = [SeedTask(method, hparams, store, dataset, loop, seed) for seed in params.seeds]
    return resolved, tasks, splits["test"]


def _outcomes(tracker: Tracker, resolved: dict, pending: list[SeedTask], test, params: Params):
    """(RunResult, predictions CSV, weights) per pending seed, in order, each inside its MLflow
    run. One process (`train.workers: 1` on CPU, one run on one GPU): in this process,
    per-epoch curves reach MLflow while training; more: seeds in worker processes (on CUDA,
    `train.runs_per_gpu` on each GPU), each run logged when it finishes, with the start and end
    times the worker measured."""
    devices = seed_devices(params)
    if (devices is None and params.train.workers <= 1) or (devices and len(devices) == 1):
        if devices:  # one run on one GPU: in this process, on that GPU
            pending = [replace(t, loop=replace(t.loop, device=devices[0])) for t in pending]
        return (
            _track_seed(tracker, resolved, task, test, lambda task, live: run_seed(task, live))
            for task in pending
        )
    finished = run_seeds(pending, params.train.workers, devices) if pending else iter(())
    return (
        _track_seed(tracker, resolved, task, test, lambda task, live: next(finished), False)
        for task in pending
    )


def seed_devices(params: Params) -> list[str] | None:
    """The device of each seed-training process on CUDA (`train.runs_per_gpu` on every GPU
    `device` names); None on CPU, where `train.workers` processes share the cores."""
    return worker_devices(params.device, params.train.runs_per_gpu, torch.cuda.device_count())


def _seed_files(dataset: str, method: str, seed: int) -> list[str]:
    """The names of one seed's outputs: record, test predictions, checkpoint."""
    return [
        paths.run_record(dataset, method, seed).name,
        paths.run_predictions(dataset, method, seed).name,
        paths.run_checkpoint(dataset, method, seed).name,
    ]


def _finished_seed(resume: Path, seed: int) -> bool:
    """True if `resume` holds seed `seed` complete (its folder appears only when whole)."""
    return (resume / f"seed-{seed}").is_dir()


def _save_finished_seed(
    resume: Path, record: RunResult, predictions: str, checkpoint: Checkpoint
) -> None:
    """Keep a finished seed (after its MLflow run ended) in `resume`/seed-<s>/, atomically."""
    dataset, method, seed = record.dataset, record.method, record.seed
    record_name, predictions_name, checkpoint_name = _seed_files(dataset, method, seed)
    with atomic_directory(resume / f"seed-{seed}") as tmp:
        record.save(tmp / record_name)
        (tmp / predictions_name).write_text(predictions)
        save_checkpoint(tmp / checkpoint_name, checkpoint)


def _track_seed(
    tracker: Tracker,
    resolved: dict,
    task: SeedTask,
    test: SplitData,
    produce: Callable[[SeedTask, list], SeedOutcome],
    in_process: bool = True,
) -> tuple:
    """One MLflow run around `produce(task, live_callbacks) -> SeedOutcome`: tags, params, the
    per-epoch curves (live, or replayed from the outcome's history if they were not logged
    live), final metrics and artifacts. Returns (RunResult, predictions CSV text, weights).

    The run spans the seed's training as measured where it ran (`SeedOutcome.started_at`,
    `ended_at`). `in_process` False (trained in a worker, `produce` only collects the outcome):
    the run is created once the outcome is in, back-dated to its start; a seed that failed in
    its worker still gets its run, FAILED."""
    dataset, method, seed = resolved["dataset"], resolved["method"], task.seed
    config_hash = sha256_json(resolved)
    tags = standard_tags(
        "train", dataset, method=method, seed=seed, data_hash=resolved["data_hash"],
        config_hash=config_hash, **text_model_tags(resolved.get("text_model", {})),
    )  # fmt: skip
    key, run_name = f"train/{dataset}/{method}/seed-{seed}", f"{method}-seed{seed}"
    outcome = None if in_process else _collect(tracker, dataset, key, run_name, tags, task, produce)
    started_at = None if outcome is None else outcome.started_at
    with tracker.run(dataset, key, run_name, tags, started_at=started_at) as active:
        log_params(resolved["hparams"])
        logged: list[int] = []

        def live(epoch_log) -> None:
            log_epoch(epoch_log)
            logged.append(epoch_log.epoch)

        if outcome is None:
            outcome = produce(task, [live])
        if outcome.seed != seed:
            raise RuntimeError(f"seed runs out of order: expected {seed}, got {outcome.seed}")
        for epoch_log in outcome.history:
            if epoch_log.epoch not in logged:
                log_epoch(epoch_log)
        record = _record(resolved, config_hash, outcome)
        set_hardware_tags(outcome.hardware)
        log_final(outcome.test_metrics, prefix="test_")
        log_final(outcome.best_valid, prefix="best_valid_")
        log_final({"best_epoch": outcome.best_epoch, "wall_time_s": record.wall_time_s}, "")
        log_cost(outcome.cost)
        csv_text = _predictions_csv(test.ids, outcome.predictions, test.labels)
        log_json_artifact(record.to_dict(), "record.json")
        log_json_artifact(resolved, "config.json")
        log_text_artifact(csv_text, "test_predictions.csv")
    tracker.finish_run(active.info.run_id, outcome.ended_at)
    return record, csv_text, outcome.state


def _collect(
    tracker: Tracker,
    dataset: str,
    key: str,
    run_name: str,
    tags: dict,
    task: SeedTask,
    produce: Callable[[SeedTask, list], SeedOutcome],
) -> SeedOutcome:
    """The outcome of a seed trained in a worker; if it failed there, its run is logged FAILED
    (as a seed failing in this process is) and the error raised."""
    try:
        return produce(task, [])
    except BaseException:
        with tracker.run(dataset, key, run_name, tags):
            raise


def _record(resolved: dict, config_hash: str, outcome: SeedOutcome) -> RunResult:
    return RunResult(
        method=resolved["method"],
        dataset=resolved["dataset"],
        seed=outcome.seed,
        split="test",
        metrics=outcome.test_metrics,
        valid_metrics=outcome.best_valid,
        hparams=resolved["hparams"],
        config_hash=config_hash,
        data_hash=resolved["data_hash"],
        git_commit=git_commit(),
        package_versions=package_versions(),
        wall_time_s=outcome.wall_time_s,
        best_epoch=outcome.best_epoch,
        epochs_run=outcome.epochs_run,
        device=outcome.device,
        hardware=outcome.hardware,
        text_model=dict(resolved.get("text_model", {})),
        cost=outcome.cost,
    )


def _predictions_csv(ids, predictions, labels) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "prediction", "label"])
    for sample_id, prediction, label in zip(ids, predictions, labels.tolist(), strict=True):
        writer.writerow([sample_id, repr(float(prediction)), repr(float(label))])
    return buffer.getvalue()


def _short(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
