"""MLflow tracking: the one module that imports MLflow.

Conventions (docs/tracking.md): one experiment per dataset (`msabench/<dataset>`), one run per
(stage, method, seed) and nested trial runs under a tuning parent run. Every run carries
`standard_tags` (stage, dataset, method, seed, commit, data hash, hardware, built here and
nowhere else) and a `msabench.run_key` tag identifying what it is; starting a run whose key
already exists replaces the old run, so re-running a finished stage never duplicates runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from harness.provenance import git_commit  # noqa: E402

if TYPE_CHECKING:
    from harness.training.loop import EpochLog

EXPERIMENT_PREFIX = "msabench"
ARTIFACT_ROOT = Path("mlartifacts")
RUN_KEY = "msabench.run_key"
TAG_PREFIX = "msabench."


def standard_tags(
    stage: str,
    dataset: str,
    *,
    method: str | None = None,
    seed: int | None = None,
    data_hash: str | None = None,
    hardware: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, str]:
    """The tags every msabench run carries: `msabench.stage`, `.dataset`, and where they apply
    `.method`, `.seed`, `.data_hash`, the hardware facts (`.cpu`, `.cpu_capability`, `.os`,
    `.gpu`, ...), any `extra` as `msabench.<name>`; plus the code commit as both
    `msabench.git_commit` and MLflow's own `mlflow.source.git.commit`."""
    values: dict[str, Any] = {"stage": stage, "dataset": dataset, "method": method, "seed": seed}
    values["data_hash"] = data_hash
    values.update(hardware or {})
    values.update(extra)
    tags = {f"{TAG_PREFIX}{k}": str(v) for k, v in values.items() if v is not None}
    commit = git_commit()
    tags[f"{TAG_PREFIX}git_commit"] = commit
    tags["mlflow.source.git.commit"] = commit
    return tags


class Tracker:
    """Thin wrapper over the MLflow client for the harness's conventions."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)

    def experiment_id(self, dataset: str) -> str:
        """The experiment `msabench/<dataset>`, created (artifacts under mlartifacts/) if absent."""
        name = f"{EXPERIMENT_PREFIX}/{dataset}"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        location = (ARTIFACT_ROOT / dataset).resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def find_runs(self, experiment_id: str, key: str) -> list[Any]:
        """Active runs whose run key equals `key`."""
        return self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_KEY}` = '{key}'",
            run_view_type=ViewType.ACTIVE_ONLY,
        )

    def delete_runs(self, experiment_id: str, key: str) -> int:
        runs = self.find_runs(experiment_id, key)
        for run in runs:
            self.client.delete_run(run.info.run_id)
        return len(runs)

    def mark_runs(self, dataset: str, key: str, state_tag: str, status: str) -> None:
        """Tag every run with run key `key` `msabench.trial_state=<state_tag>` and end it with
        `status` (e.g. "STALE", "FAILED" for a dead worker's trial)."""
        for run in self.find_runs(self.experiment_id(dataset), key):
            self.client.set_tag(run.info.run_id, f"{TAG_PREFIX}trial_state", state_tag)
            self.client.set_terminated(run.info.run_id, status)

    @contextmanager
    def run(
        self,
        dataset: str,
        key: str,
        run_name: str,
        tags: Mapping[str, Any],
        nested: bool = False,
        resume: bool = False,
    ) -> Iterator[mlflow.ActiveRun]:
        """Start (or, with `resume`, continue) the run identified by `key`; a finished run with the
        same key is replaced unless resuming."""
        experiment_id = self.experiment_id(dataset)
        existing = self.find_runs(experiment_id, key)
        run_id = existing[0].info.run_id if (resume and existing) else None
        if run_id is None:
            self.delete_runs(experiment_id, key)
        all_tags = {RUN_KEY: key, **{k: str(v) for k, v in tags.items()}}
        with mlflow.start_run(
            run_id=run_id,
            experiment_id=None if run_id else experiment_id,
            run_name=None if run_id else run_name,
            nested=nested,
            tags=all_tags,
        ) as active:
            yield active

    def end_run(self, run_id: str, state_tag: str, status: str) -> None:
        """Mark a finished run (e.g. a pruned trial: "PRUNED", "KILLED")."""
        self.client.set_tag(run_id, f"{TAG_PREFIX}trial_state", state_tag)
        self.client.set_terminated(run_id, status)

    def log_curves(
        self,
        run_id: str,
        curves: Mapping[str, list[tuple[int, float]]],
        params: Mapping[str, Any] = (),
    ) -> None:
        """Whole metric curves at once ({name: [(step, value), ...]}) and parameters, in one
        batch (the robustness rate curves)."""
        now = int(time.time() * 1000)
        metrics = [
            Metric(name, float(value), now, step)
            for name, points in curves.items()
            for step, value in points
        ]
        params = [Param(k, str(v)) for k, v in dict(params).items()]
        self.client.log_batch(run_id, metrics=metrics, params=params)


def log_params(hparams: Mapping[str, Any]) -> None:
    mlflow.log_params({k: v for k, v in hparams.items()})


def log_epoch(log: EpochLog, prefix: str = "") -> None:
    """Per-epoch curves: train_<term> and valid_<metric>, at step = epoch."""
    values = {f"{prefix}train_{k}": v for k, v in log.train.items()}
    values.update({f"{prefix}valid_{k}": v for k, v in log.valid.items()})
    values[f"{prefix}epoch_seconds"] = log.seconds
    mlflow.log_metrics(_floats(values), step=log.epoch)


def set_hardware_tags(hardware: Mapping[str, str]) -> None:
    """The hardware facts as `msabench.<fact>` tags on the active run, set after it started
    (a worker process reports where it trained when it finishes)."""
    mlflow.set_tags({f"{TAG_PREFIX}{k}": str(v) for k, v in hardware.items()})


def log_final(metrics: Mapping[str, float], prefix: str) -> None:
    mlflow.log_metrics(_floats({f"{prefix}{k}": v for k, v in metrics.items()}))


def log_json_artifact(payload: Any, name: str) -> None:
    mlflow.log_text(json.dumps(payload, indent=2, sort_keys=True, default=str), name)


def log_text_artifact(text: str, name: str) -> None:
    mlflow.log_text(text, name)


def log_artifact(path: str | Path, folder: str) -> None:
    """One file into the active run's artifact folder `folder`."""
    mlflow.log_artifact(str(path), folder)


def log_artifacts(directory: str | Path, folder: str) -> None:
    """Every file under `directory` into the active run's artifact folder `folder`."""
    mlflow.log_artifacts(str(directory), artifact_path=folder)


def _floats(values: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}
