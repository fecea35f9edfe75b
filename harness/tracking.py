"""MLflow tracking: one experiment per dataset, one run per (method, seed), nested trial runs.

Every run carries a `msabench.run_key` tag identifying what it is (stage, dataset, method, seed or
trial, config hash). Starting a run whose key already exists replaces the old run, so re-running a
finished stage never duplicates runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from harness.training import EpochLog  # noqa: E402

EXPERIMENT_PREFIX = "msabench"
ARTIFACT_ROOT = Path("mlartifacts")
RUN_KEY = "msabench.run_key"


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


def log_params(hparams: Mapping[str, Any]) -> None:
    mlflow.log_params({k: v for k, v in hparams.items()})


def log_epoch(log: EpochLog, prefix: str = "") -> None:
    """Per-epoch curves: train_<term> and valid_<metric>, at step = epoch."""
    values = {f"{prefix}train_{k}": v for k, v in log.train.items()}
    values.update({f"{prefix}valid_{k}": v for k, v in log.valid.items()})
    values[f"{prefix}epoch_seconds"] = log.seconds
    mlflow.log_metrics(_floats(values), step=log.epoch)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Tags on the active run, set after it started (e.g. facts a worker process reported)."""
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_final(metrics: Mapping[str, float], prefix: str) -> None:
    mlflow.log_metrics(_floats({f"{prefix}{k}": v for k, v in metrics.items()}))


def log_json_artifact(payload: Any, name: str) -> None:
    mlflow.log_text(json.dumps(payload, indent=2, sort_keys=True, default=str), name)


def log_text_artifact(text: str, name: str) -> None:
    mlflow.log_text(text, name)


def _floats(values: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}
