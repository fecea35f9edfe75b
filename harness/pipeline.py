"""The stages that build results (fetch, tune, train, compare) as functions; the CLI and dvc.yaml
call them. Stages that evaluate trained checkpoints are in harness/evaluation_stages.py."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from harness import paths, training
from harness.checkpoints import Checkpoint, save_checkpoint
from harness.config import DatasetConfig, Params
from harness.data.loading import load_dataset
from harness.data.store import read_manifest
from harness.data.types import DATASET_KINDS
from harness.errors import ConfigError, DataError
from harness.io_utils import atomic_directory, sha256_json
from harness.provenance import git_commit, package_versions, source_hash
from harness.records import RunResult
from harness.seed_runs import SeedOutcome, SeedTask, run_seed, run_seeds
from harness.tracking import (
    Tracker,
    log_epoch,
    log_final,
    log_json_artifact,
    log_params,
    log_text_artifact,
    set_tags,
)
from harness.training import LoopConfig
from harness.tuning import TuningJob, run_study, write_best_params
from methods import METHODS

log = logging.getLogger("msabench")


def fetch(
    params: Params,
    dataset: str,
    source_path: Path | None = None,
    file_format: str | None = None,
    kind: str | None = None,
) -> Path:
    """Build the canonical feature store of `dataset` under features/<dataset>/.

    With `file_format` (CLI `--format`), the files at `source_path` are read in that format
    whether or not the dataset is declared in params.yaml (kind from `kind`, else the
    declaration's, else "mosi"); otherwise the declaration says where the data come from."""
    from harness.data.sources import fetch_dataset  # the file readers (pandas): this stage only

    if file_format is None:
        config = params.dataset(dataset)
    else:
        if source_path is None:
            raise ConfigError("--format: needs --path, the file or folder to read")
        declared = params.datasets.get(dataset)
        kind = kind or (declared.kind if declared else "mosi")
        if kind not in DATASET_KINDS:
            raise ConfigError(f"--kind: expected one of {', '.join(DATASET_KINDS)}, got {kind!r}")
        options = {**(declared.options if declared else {}), "format": file_format, "kind": kind}
        config = DatasetConfig(dataset, "file", kind, options)
    target = paths.feature_store(dataset)
    fetch_dataset(config, target, source_path=source_path)
    manifest = read_manifest(target)
    log.info("fetched %s: %s (data hash %s)", dataset, _sizes(manifest), manifest.data_hash[:12])
    return target


def tune(
    params: Params, dataset: str, method: str, storage: str | None = None, worker: int = 0
) -> Path:
    """Tune `method` on `dataset` (train + validation splits only); write best_params.json.
    `storage`: a PostgreSQL URL shared by several workers (None: the local journal file);
    `worker`: this worker's index (sampler seed offset, MLflow parent run)."""
    method_cls = METHODS.get(method)
    config = params.dataset(dataset)
    store = paths.feature_store(dataset)
    spec, splits = load_dataset(store, splits=("train", "valid"))  # the test split is not read
    job = TuningJob(
        dataset=dataset,
        method_cls=method_cls,
        method_config=params.method(method),
        spec=spec,
        data_hash=read_manifest(store).data_hash,
        train=splits["train"],
        valid=splits["valid"],
        params=params,
    )
    _check_kind(config.kind, spec.kind, dataset)
    tracker = Tracker(params.tracking_uri)
    result = run_study(job, paths.study_storage(dataset, method), tracker, storage, worker)
    target = paths.best_params_file(dataset, method)
    write_best_params(target, job, result)
    log.info(
        "tuned %s on %s: best valid %s = %.4f (%d complete, %d pruned)",
        method,
        dataset,
        params.train.select_metric,
        result.best_value,
        result.n_complete,
        result.n_pruned,
    )
    return target


def train(params: Params, dataset: str, method: str) -> Path:
    """Train `method` on `dataset` once per seed with the tuned hyperparameters; write one
    RunResult record, the test predictions and the checkpoint per seed (the directory is replaced
    atomically). Each finished seed is also kept under `paths.train_resume` (keyed by the
    resolved configuration and the code) until the whole directory is in place, so a run killed
    part-way resumes with the seeds it finished and logs none of them twice."""
    method_cls = METHODS.get(method)
    method_config = params.method(method)
    declared_kind = params.dataset(dataset).kind
    best = _read_best_params(dataset, method)
    store = paths.feature_store(dataset)
    # the spec and the test ids/labels only; each seed run loads (memory-maps) the store itself
    spec, splits = load_dataset(store, standardize=False, splits=("test",))
    _check_kind(declared_kind, spec.kind, dataset)
    test = splits["test"]
    hparams = method_cls.resolve_hparams(
        spec.kind, method_config.hparams, best["params"], where=f"methods.{method}.hparams"
    )
    loop = LoopConfig(
        max_epochs=params.train.max_epochs,
        patience=params.train.patience,
        select_metric=params.train.select_metric,
        device=params.device,
        num_threads=params.num_threads,
        amp=params.amp,
    )
    data_hash = read_manifest(store).data_hash
    resolved = {
        "dataset": dataset,
        "method": method,
        "hparams": asdict(hparams),
        "loop": asdict(loop),
        "data_hash": data_hash,
    }
    tracker = Tracker(params.tracking_uri)
    target = paths.runs_dir(dataset, method)
    tasks = [SeedTask(method, hparams, store, dataset, loop, seed) for seed in params.seeds]
    # seeds finished by an interrupted run of this exact configuration and code are kept
    code = source_hash(sys.modules[method_cls.__module__], training)
    resume = paths.train_resume(dataset, method) / sha256_json({**resolved, "code": code})[:16]
    kept = {task.seed for task in tasks if _finished_seed(resume, task.seed)}
    pending = [task for task in tasks if task.seed not in kept]
    if kept:
        log.info("%s/%s: seeds %s kept from an interrupted run", method, dataset, sorted(kept))
    workers = params.train.workers
    if workers <= 1:  # in this process: per-epoch curves reach MLflow while training
        outcomes = (
            _track_seed(tracker, resolved, task, test, lambda task, live: run_seed(task, live))
            for task in pending
        )
    else:  # seeds in worker processes; each run's curves are logged when it finishes
        finished = run_seeds(pending, workers) if pending else iter(())
        outcomes = (
            _track_seed(tracker, resolved, task, test, lambda task, live: next(finished))
            for task in pending
        )
    with atomic_directory(target) as tmp:
        for task in tasks:
            seed = task.seed
            if seed not in kept:  # train it, log it, then keep it for a resumed run
                record, predictions, state = next(outcomes)
                checkpoint = Checkpoint(
                    method, dataset, seed, resolved["hparams"], data_hash, state
                )
                _save_finished_seed(resume, record, predictions, checkpoint)
                log.info("%s/%s seed %d: test %s", method, dataset, seed, _short(record.metrics))
            for name in _seed_files(dataset, method, seed):
                shutil.copyfile(resume / f"seed-{seed}" / name, tmp / name)
    shutil.rmtree(paths.train_resume(dataset, method), ignore_errors=True)
    return target


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


def _track_seed(tracker: Tracker, resolved: dict, task: SeedTask, test, produce) -> tuple:
    """One MLflow run around `produce(task, live_callbacks) -> SeedOutcome`: tags, params, the
    per-epoch curves (live, or replayed from the outcome's history if they were not logged
    live), final metrics and artifacts. Returns (RunResult, predictions CSV text, weights)."""
    dataset, method, seed = resolved["dataset"], resolved["method"], task.seed
    config_hash = sha256_json(resolved)
    tags = {
        "msabench.dataset": dataset,
        "msabench.method": method,
        "msabench.seed": seed,
        "msabench.stage": "train",
        "msabench.config_hash": config_hash,
        "msabench.data_hash": resolved["data_hash"],
        "msabench.git_commit": git_commit(),
        "mlflow.source.git.commit": git_commit(),
    }
    key = f"train/{dataset}/{method}/seed-{seed}"
    with tracker.run(dataset, key, f"{method}-seed{seed}", tags):
        log_params(resolved["hparams"])
        logged: list[int] = []

        def live(epoch_log) -> None:
            log_epoch(epoch_log)
            logged.append(epoch_log.epoch)

        outcome: SeedOutcome = produce(task, [live])
        if outcome.seed != seed:
            raise RuntimeError(f"seed runs out of order: expected {seed}, got {outcome.seed}")
        for epoch_log in outcome.history:
            if epoch_log.epoch not in logged:
                log_epoch(epoch_log)
        record = RunResult(
            method=method,
            dataset=dataset,
            seed=seed,
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
        )
        set_tags({f"msabench.{k}": v for k, v in outcome.hardware.items()})
        log_final(outcome.test_metrics, prefix="test_")
        log_final(outcome.best_valid, prefix="best_valid_")
        log_final({"best_epoch": outcome.best_epoch, "wall_time_s": record.wall_time_s}, "")
        csv_text = _predictions_csv(test.ids, outcome.predictions, test.labels)
        log_json_artifact(record.to_dict(), "record.json")
        log_json_artifact(resolved, "config.json")
        log_text_artifact(csv_text, "test_predictions.csv")
    return record, csv_text, outcome.state


def _read_best_params(dataset: str, method: str) -> dict:
    path = paths.best_params_file(dataset, method)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: not found; run `msabench tune {dataset} {method}` first"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(payload.get("params"), dict):
        raise DataError(f"{path}: expected a 'params' mapping of tuned hyperparameters")
    return payload


def _check_kind(declared: str, stored: str, dataset: str) -> None:
    if declared != stored:
        raise DataError(
            f"features/{dataset}: stored kind '{stored}' differs from params.yaml "
            f"datasets.{dataset}.kind '{declared}'; run `msabench fetch {dataset}` again"
        )


def _predictions_csv(ids, predictions, labels) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "prediction", "label"])
    for sample_id, prediction, label in zip(ids, predictions, labels.tolist(), strict=True):
        writer.writerow([sample_id, repr(float(prediction)), repr(float(label))])
    return buffer.getvalue()


def _sizes(manifest) -> str:
    return ", ".join(f"{name} {info.n}" for name, info in manifest.splits.items())


def _short(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
