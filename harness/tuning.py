"""Hyperparameter tuning with Optuna, on the validation split only.

One study per (dataset, method), stored in an Optuna journal file so an interrupted study resumes
where it stopped, or in a PostgreSQL database that several workers share
(`harness.study_storage`). The study name carries a hash of everything that defines the search
(data, fixed hyperparameters, search space, budget, method code), so changing any of it starts a
new study in the same storage instead of mixing incompatible trials. Each trial is a nested MLflow
run under a parent run per study (per worker); a median pruner reads per-epoch validation scores.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness import training
from harness.config import MethodConfig, Params
from harness.data.types import DataSpec, SplitData
from harness.errors import NonFiniteLossError
from harness.io_utils import sha256_json, write_json_atomic
from harness.metrics import metric_info
from harness.provenance import git_commit, source_hash
from harness.study_storage import (
    FAILURE_ATTR,
    StudyStorage,
    counted_trials,
    open_storage,
    recover_stale_trials,
    requeue,
    running_trials,
)
from harness.tracking import Tracker, log_epoch, log_final, log_params
from harness.training import EpochLog, LoopConfig, RunContext
from methods.base import MsaMethod
from methods.search_space import (
    SearchSpace,
    defaults_inside,
    describe,
    override_space,
    suggest_all,
)

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
WORKER_SEED_STRIDE = 100_003  # worker k samples with sampler_seed + done + k * this
POLL_S = 2.0  # how often a worker whose budget is used up checks others' running trials


@dataclass(frozen=True)
class TuneResult:
    study_name: str
    best_value: float
    best_params: dict[str, Any]
    n_complete: int
    n_pruned: int


@dataclass(frozen=True)
class TuningJob:
    """Everything one study needs."""

    dataset: str
    method_cls: type[MsaMethod]
    method_config: MethodConfig
    spec: DataSpec
    data_hash: str
    train: SplitData
    valid: SplitData
    params: Params

    @property
    def space(self) -> SearchSpace:
        """The method's space with params.yaml's overrides; hyperparameters fixed under
        `methods.<m>.hparams` are not tuned (a fixed value is never silently overridden)."""
        where = f"methods.{self.method_cls.name}.search_space"
        space = override_space(self.method_cls.SEARCH_SPACE, self.method_config.search_space, where)
        return {k: v for k, v in space.items() if k not in self.method_config.hparams}

    @property
    def loop(self) -> LoopConfig:
        tune = self.params.tune
        return LoopConfig(
            max_epochs=tune.max_epochs,
            patience=tune.patience,
            select_metric=self.params.train.select_metric,
            device=self.params.device,
            progress=False,
            num_threads=self.params.num_threads,
            amp=self.params.amp,
        )

    def default_point(self) -> dict[str, Any]:
        """The method's defaults (with the fixed hparams) restricted to the tuned dimensions."""
        where = f"methods.{self.method_cls.name}.hparams"
        defaults = self.method_cls.resolve_hparams(
            self.spec.kind, self.method_config.hparams, where=where
        )
        return defaults_inside(self.space, asdict(defaults))

    def study_name(self) -> str:
        identity = {
            "dataset": self.dataset,
            "data_hash": self.data_hash,
            "method": self.method_cls.name,
            "fixed": dict(self.method_config.hparams),
            "space": describe(self.space),
            "tune": asdict(self.params.tune),
            "select_metric": self.params.train.select_metric,
            "code": source_hash(sys.modules[self.method_cls.__module__], training),
        }
        return f"{self.dataset}.{self.method_cls.name}.{sha256_json(identity)[:12]}"


def run_study(
    job: TuningJob,
    storage_path: Path,
    tracker: Tracker,
    storage_url: str | None = None,
    worker: int = 0,
) -> TuneResult:
    """Run (or resume, or join) the study until it holds `tune.n_trials` counted trials and no
    trial is still running; returns the study's result.

    `storage_url` None: the journal file `storage_path`, one process. A PostgreSQL URL: the
    study is shared by every worker that names it; `worker` (0, 1, ...) offsets the sampler
    seed and names this worker's MLflow parent run. See `harness.study_storage`."""
    name = job.study_name()
    tune = job.params.tune
    direction = (
        "maximize" if metric_info(job.params.train.select_metric).higher_is_better else "minimize"
    )
    opened = open_storage(storage_path, storage_url, _StaleTrialHandler(tracker, job.dataset, name))
    with opened.reservation(name):  # one worker creates the study and enqueues the defaults
        probe = optuna.create_study(
            study_name=name, storage=opened.storage, load_if_exists=True, direction=direction
        )
        if tune.enqueue_defaults and not probe.get_trials(deepcopy=False):
            # trial 0 tries the method's (published) defaults, so the tuned configuration is
            # never worse on validation than the one the paper ships
            probe.enqueue_trial(job.default_point())
        if not opened.shared:
            for trial in recover_stale_trials(probe):
                _mark_stale(tracker, job.dataset, name, trial.number)
    done = len(probe.get_trials(deepcopy=False, states=DONE_STATES))
    study = optuna.load_study(
        study_name=name,
        storage=opened.storage,
        # offset by the trials already done so a resumed study does not repeat its samples,
        # and by the worker so that workers sharing a study sample differently
        sampler=optuna.samplers.TPESampler(
            seed=tune.sampler_seed + done + WORKER_SEED_STRIDE * worker
        ),
        pruner=make_pruner(tune),
    )
    tags = {
        "msabench.dataset": job.dataset,
        "msabench.method": job.method_cls.name,
        "msabench.stage": "tune",
        "msabench.study": name,
        "msabench.worker": worker,
        "msabench.data_hash": job.data_hash,
        "mlflow.source.git.commit": git_commit(),
    }
    key = f"tune/{name}" if worker == 0 else f"tune/{name}/worker-{worker}"
    run_name = f"tune-{job.method_cls.name}" + (f"-worker{worker}" if worker else "")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tracker.run(job.dataset, key, run_name, tags, resume=True):
        while True:
            if _run_reserved_trial(study, opened, tune.n_trials, job, tracker, tags):
                continue
            if opened.shared:
                optuna.storages.fail_stale_trials(study)  # a dead worker's trial: retried
            if counted_trials(study) < tune.n_trials:
                continue
            if not running_trials(study):
                break
            time.sleep(POLL_S)  # other workers' trials still running
        result = _result(study)
        log_final({"best_value": result.best_value}, prefix="study_")
    return result


def make_pruner(tune) -> optuna.pruners.BasePruner:
    """`tune.pruner`: "median" stops a trial whose validation score at an epoch is worse than
    the median of earlier trials at that epoch (after `pruner_startup_trials` trials and
    `pruner_warmup_steps` epochs); "none" runs every trial to its end."""
    if tune.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=tune.pruner_startup_trials, n_warmup_steps=tune.pruner_warmup_steps
    )


def _run_reserved_trial(
    study: optuna.Study,
    opened: StudyStorage,
    budget: int,
    job: TuningJob,
    tracker: Tracker,
    tags: dict[str, str],
) -> bool:
    """Reserve one trial slot under the study's lock and run the trial; False when the budget
    is used up. The trial is created (RUNNING) before the lock is released, so concurrent
    workers count it."""
    lock = opened.reservation(study.study_name)
    lock.__enter__()
    held = True

    def objective(trial: optuna.Trial) -> float:
        nonlocal held
        lock.__exit__(None, None, None)
        held = False
        return _objective(job, trial, tracker, tags)

    try:
        if counted_trials(study) >= budget:
            return False
        study.optimize(objective, n_trials=1, catch=(NonFiniteLossError,))
        return True
    finally:
        if held:
            lock.__exit__(None, None, None)


class _StaleTrialHandler:
    """Called by the database storage when a dead worker's trial is failed: the trial's MLflow
    run is marked FAILED (tag msabench.trial_state=STALE) and its parameters are retried."""

    def __init__(self, tracker: Tracker, dataset: str, study_name: str) -> None:
        self.tracker, self.dataset, self.study_name = tracker, dataset, study_name

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        _mark_stale(self.tracker, self.dataset, self.study_name, trial.number)
        requeue(study, trial)


def _mark_stale(tracker: Tracker, dataset: str, study_name: str, number: int) -> None:
    experiment = tracker.experiment_id(dataset)
    for run in tracker.find_runs(experiment, f"tune/{study_name}/trial-{number}"):
        tracker.client.set_tag(run.info.run_id, "msabench.trial_state", "STALE")
        tracker.client.set_terminated(run.info.run_id, "FAILED")


def _objective(
    job: TuningJob, trial: optuna.Trial, tracker: Tracker, tags: dict[str, str]
) -> float:
    sampled = suggest_all(trial, job.space)
    name = job.method_cls.name
    hparams = job.method_cls.resolve_hparams(
        job.spec.kind, job.method_config.hparams, sampled, where=f"methods.{name}.hparams"
    )
    seed = job.params.tune.sampler_seed
    key = f"tune/{job.study_name()}/trial-{trial.number}"
    trial_tags = {**tags, "msabench.trial": trial.number, "msabench.seed": seed}
    pruned: optuna.TrialPruned | None = None
    with tracker.run(job.dataset, key, f"trial-{trial.number}", trial_tags, nested=True) as run:
        log_params(asdict(hparams))
        model = training.build_model(job.method_cls, hparams, job.spec, seed)
        context = RunContext(job.dataset, name, seed)

        def report(log: EpochLog) -> None:
            log_epoch(log)
            trial.report(log.valid[job.loop.select_metric], step=log.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {log.epoch}")

        try:
            outcome = training.fit(model, job.train, job.valid, job.loop, context, seed, [report])
        except optuna.TrialPruned as exc:
            pruned = exc
        except NonFiniteLossError as exc:  # fails this trial only; it counts to the budget
            trial.set_user_attr(FAILURE_ATTR, str(exc))
            raise
        else:
            log_final(outcome.best_valid, prefix="best_valid_")
    if pruned is not None:  # a pruned trial is KILLED in MLflow, not FAILED
        tracker.client.set_tag(run.info.run_id, "msabench.trial_state", "PRUNED")
        tracker.client.set_terminated(run.info.run_id, "KILLED")
        raise pruned
    return outcome.best_valid[job.loop.select_metric]


def _result(study: optuna.Study) -> TuneResult:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    if not complete:
        raise RuntimeError(f"study {study.study_name}: no trial completed (all pruned or failed)")
    best = study.best_trial
    return TuneResult(
        study.study_name, float(best.value), dict(best.params), len(complete), len(pruned)
    )


def write_best_params(path: Path, job: TuningJob, result: TuneResult) -> None:
    """The file the train stage depends on."""
    write_json_atomic(
        path,
        {
            "dataset": job.dataset,
            "method": job.method_cls.name,
            "study_name": result.study_name,
            "select_metric": job.params.train.select_metric,
            "best_value": result.best_value,
            "params": result.best_params,
            "n_complete": result.n_complete,
            "n_pruned": result.n_pruned,
            "fixed_hparams": dict(job.method_config.hparams),
            "search_space": describe(job.space),
        },
    )
