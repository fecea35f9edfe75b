"""MLflow tracking: the one module that imports MLflow.

Conventions (docs/tracking.md): one experiment per dataset (`msabench/<dataset>`), one run per
(stage, method, seed) and nested trial runs under a tuning parent run. Every run carries
`standard_tags` (stage, dataset, method, seed, commit, data hash, hardware, built here and
nowhere else) and a `msabench.run_key` tag identifying what it is; starting a run whose key
already exists replaces the old run, so re-running a finished stage never duplicates runs.

Portable store: experiments keep their artifacts at `mlflow-artifacts:/<dataset>` URIs, never at
an absolute path. MLflow turns a relative artifact location into an absolute one when it creates
the experiment (`SqlAlchemyStore.create_experiment` -> `resolve_uri_if_local`, against the cwd of
that moment), so a relative location is impossible; an `mlflow-artifacts:` URI is kept as given
and resolved when read: by the tracking server (`mlflow ui`/`mlflow server`) against its
`--artifacts-destination`, `./mlartifacts` by default, and in the harness against `mlartifacts/`
beside the SQLite database (`local_artifact_root`). Copying or moving the project folder (the
database and `mlartifacts/` together) therefore keeps every artifact link.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, ViewType  # noqa: E402
from mlflow.store.artifact.artifact_repository_registry import (  # noqa: E402
    _artifact_repository_registry,
)
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository  # noqa: E402
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from mlflow.tracking.context.registry import resolve_tags  # noqa: E402
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE  # noqa: E402

from harness.db_locks import MLFLOW_SCHEMA_KEY, is_postgresql, schema_lock  # noqa: E402
from harness.provenance import git_commit  # noqa: E402

if TYPE_CHECKING:
    from harness.records.cost import RunCost
    from harness.training.loop import EpochLog

EXPERIMENT_PREFIX = "msabench"
ARTIFACT_ROOT = Path("mlartifacts")  # beside the SQLite database; the server's default destination
SERVED_SCHEME = "mlflow-artifacts"
RUN_KEY = "msabench.run_key"
TAG_PREFIX = "msabench."
DESCRIPTION_TAG = MLFLOW_RUN_NOTE  # "mlflow.note.content": a run's or experiment's description
# MLflow 3's UI opens an experiment without this tag in its GenAI view ("Evaluation runs", no
# per-epoch charts); "custom_model_development" opens the Model training view (runs table, charts)
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"

log = logging.getLogger("msabench")
_WARNED: set[tuple[str, str]] = set()  # (tracking URI, experiment) warned about in this process


def local_artifact_root(tracking_uri: str) -> Path:
    """Where `mlflow-artifacts:/` URIs live when the harness writes them itself: `mlartifacts/`
    beside the database of a `sqlite:///` tracking URI, else under the current directory (the
    project root). Absolute."""
    if tracking_uri.startswith("sqlite:///"):
        database = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
        if database and database != ":memory:":
            return (Path(database).parent / ARTIFACT_ROOT).resolve()
    return ARTIFACT_ROOT.resolve()


def _served_artifacts_repository(
    artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
):
    """The artifact repository of an `mlflow-artifacts:/<path>` URI: through the tracking server
    when the tracking URI is one (http/https) or the URI names a server; else the local folder
    `local_artifact_root(tracking URI)/<path>`, the file the server serves under that URI."""
    tracking = tracking_uri or mlflow.get_tracking_uri()
    parsed = urlparse(artifact_uri)
    if parsed.netloc or urlparse(tracking).scheme in ("http", "https"):
        return MlflowArtifactsRepository(artifact_uri, tracking, registry_uri)
    folder = local_artifact_root(tracking) / parsed.path.lstrip("/")
    return LocalArtifactRepository(folder.as_uri(), tracking, registry_uri)


# MLflow's own repository for the scheme needs an http tracking URI; the stages log to SQLite
_artifact_repository_registry.register(SERVED_SCHEME, _served_artifacts_repository)


def experiment_description(dataset: str) -> str:
    """The Markdown description (`mlflow.note.content`) of experiment `msabench/<dataset>`."""
    if dataset == "benchmark":
        holds = "the rank stage's run `rank-across-datasets` (Friedman/Nemenyi across datasets)"
    elif dataset == "papers":
        holds = "the paper stage's runs `paper-<table>`, one per regenerated published table"
    else:
        holds = (
            f"every run on dataset `{dataset}`: per method a tuning parent run `tune-<method>` "
            "with nested trial runs `<method>-trial-<n>`, one training run `<method>-seed<s>` "
            f"per seed, probe and robustness runs, and the comparison run `compare-{dataset}` "
            "(its description names the best method per metric)"
        )
    return (
        f"msabench, {holds}.\n\n"
        "Filter on `tags.msabench.stage` (tune, train, probe, robustness, compare, rank, paper), "
        "`tags.msabench.method`, `tags.msabench.seed`, `tags.msabench.trial_state` (PRUNED, "
        "STALE); e.g. the training runs: `tags.msabench.stage = 'train'`. "
        "Every run is identified by its `msabench.run_key` tag (docs/tracking.md)."
    )


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


def text_model_tags(facts: Mapping[str, str]) -> dict[str, str]:
    """`standard_tags` extras for a run on a dataset with token ids (`facts`: name, revision,
    sha256, encoder, as `MsaMethod.text_model_facts`): `msabench.text_model` (name@revision),
    `.text_model_sha256`, `.text_encoder`; none for an empty `facts`."""
    if not facts:
        return {}
    return {
        "text_model": f"{facts['name']}@{facts['revision']}",
        "text_model_sha256": facts["sha256"],
        "text_encoder": facts["encoder"],
    }


class Tracker:
    """Thin wrapper over the MLflow client for the harness's conventions."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        # on PostgreSQL, of jobs starting together only one creates MLflow's tables
        shared = is_postgresql(tracking_uri)
        with schema_lock(tracking_uri, MLFLOW_SCHEMA_KEY) if shared else nullcontext():
            self.client = MlflowClient(tracking_uri)
        self._checked: set[str] = set()  # experiments whose description and location were checked

    def experiment_id(self, dataset: str) -> str:
        """The experiment `msabench/<dataset>` with its description, created if absent with the
        portable artifact location `mlflow-artifacts:/<dataset>` (module docstring)."""
        name = f"{EXPERIMENT_PREFIX}/{dataset}"
        experiment = self.client.get_experiment_by_name(name)
        description = experiment_description(dataset)
        if experiment is None:
            return self.client.create_experiment(
                name,
                artifact_location=f"{SERVED_SCHEME}:/{dataset}",
                tags={DESCRIPTION_TAG: description, KIND_TAG: KIND},
            )
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            self.client.restore_experiment(experiment_id)
        if experiment_id not in self._checked:
            self._checked.add(experiment_id)
            if experiment.tags.get(DESCRIPTION_TAG) != description:
                self.client.set_experiment_tag(experiment_id, DESCRIPTION_TAG, description)
            if KIND_TAG not in experiment.tags:  # a user's own choice of view is kept
                self.client.set_experiment_tag(experiment_id, KIND_TAG, KIND)
            if (self.tracking_uri, name) not in _WARNED and _is_absolute(experiment):
                _WARNED.add((self.tracking_uri, name))
                log.warning(
                    "MLflow experiment %s keeps its artifacts at the absolute location %s (made "
                    "before portable stores): its artifact links break if the project folder "
                    "moves; delete mlflow.db and mlartifacts/ and re-run the stages to fix that",
                    name, experiment.artifact_location,
                )  # fmt: skip
        return experiment_id

    def find_runs(self, experiment_id: str, key: str) -> list[Any]:
        """Active runs whose run key equals `key`."""
        return self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_KEY}` = '{key}'",
            run_view_type=ViewType.ACTIVE_ONLY,
        )

    def log_artifacts_to(self, dataset: str, key: str, directory: str | Path, folder: str) -> int:
        """Every file under `directory` into artifact folder `folder` of the runs with run key
        `key` (another stage's runs, e.g. a tuning parent run); returns how many runs."""
        runs = self.find_runs(self.experiment_id(dataset), key)
        for run in runs:
            self.client.log_artifacts(run.info.run_id, str(directory), folder)
        return len(runs)

    def tag_runs(self, dataset: str, key: str, tags: Mapping[str, Any]) -> int:
        """Set `tags` (values as strings) on the runs with run key `key` (another stage's runs,
        e.g. the compare stage flagging a seed's training run); returns how many runs."""
        runs = self.find_runs(self.experiment_id(dataset), key)
        for run in runs:
            for name, value in tags.items():
                self.client.set_tag(run.info.run_id, name, str(value))
        return len(runs)

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
        started_at: float | None = None,
    ) -> Iterator[mlflow.ActiveRun]:
        """Start (or, with `resume`, continue) the run identified by `key`; a finished run with the
        same key is replaced unless resuming. `started_at` (seconds since the epoch): the run's
        start time when the work began earlier, elsewhere (a seed trained in a worker process);
        default now."""
        experiment_id = self.experiment_id(dataset)
        existing = self.find_runs(experiment_id, key)
        run_id = existing[0].info.run_id if (resume and existing) else None
        if run_id is None:
            self.delete_runs(experiment_id, key)
        all_tags = {RUN_KEY: key, **{k: str(v) for k, v in tags.items()}}
        if run_id is None and started_at is not None:
            run_id = self._create_run(experiment_id, run_name, all_tags, nested, started_at)
        with mlflow.start_run(
            run_id=run_id,
            experiment_id=None if run_id else experiment_id,
            run_name=None if run_id else run_name,
            nested=nested,
            tags=all_tags,
        ) as active:
            yield active

    def _create_run(
        self, experiment_id: str, run_name: str, tags: dict[str, str], nested: bool, started: float
    ) -> str:
        """A new run started at `started` (seconds since the epoch) with `tags` and the context
        tags `mlflow.start_run` would add (user, source, parent run when `nested`)."""
        tags = dict(tags)
        parent = mlflow.active_run()
        if nested and parent is not None:
            tags[MLFLOW_PARENT_RUN_ID] = parent.info.run_id
        created = self.client.create_run(
            experiment_id, start_time=_millis(started), tags=resolve_tags(tags), run_name=run_name
        )
        return created.info.run_id

    def finish_run(self, run_id: str, ended_at: float) -> None:
        """End the finished run `run_id` at `ended_at` (seconds since the epoch): when its work
        really ended (a seed trained in a worker ends before its results are logged)."""
        self.client.set_terminated(run_id, "FINISHED", end_time=_millis(ended_at))

    def end_run(self, run_id: str, state_tag: str, status: str) -> None:
        """Mark a finished run (e.g. a pruned trial: "PRUNED", "FINISHED")."""
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
    """Per-epoch curves: train_<term>, valid_<metric>, epoch_seconds and learning_rate (the
    main optimiser's, after the recipe's scheduler), at step = epoch."""
    values = {f"{prefix}train_{k}": v for k, v in log.train.items()}
    values.update({f"{prefix}valid_{k}": v for k, v in log.valid.items()})
    values[f"{prefix}epoch_seconds"] = log.seconds
    values[f"{prefix}learning_rate"] = log.learning_rate
    mlflow.log_metrics(_floats(values), step=log.epoch)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Tags on the active run, values as strings."""
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def set_description(markdown: str) -> None:
    """The active run's description (`mlflow.note.content`, Markdown, shown on its page)."""
    mlflow.set_tag(DESCRIPTION_TAG, markdown)


def set_hardware_tags(hardware: Mapping[str, str]) -> None:
    """The hardware facts as `msabench.<fact>` tags on the active run, set after it started
    (a worker process reports where it trained when it finishes)."""
    mlflow.set_tags({f"{TAG_PREFIX}{k}": str(v) for k, v in hardware.items()})


def log_cost(cost: RunCost) -> None:
    """A training run's cost on the active run: every number as metric `cost.<field>`
    (`cost.parameters_trained`, `cost.train_seconds_total`, ...; `cost.peak_gpu_memory_mb` only
    on CUDA) and where it ran as tag `msabench.device` ("cpu: <CPU> (<n> threads)",
    "cuda: <GPU>")."""
    log_final(cost.metrics(), prefix="cost.")
    mlflow.set_tag(f"{TAG_PREFIX}device", cost.device)


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


def _millis(seconds: float) -> int:
    return int(round(seconds * 1000))


def _is_absolute(experiment: Any) -> bool:
    """True for an experiment made before portable stores: artifacts at a local absolute path."""
    return urlparse(experiment.artifact_location).scheme in ("", "file")
