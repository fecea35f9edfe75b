"""Hyperparameter tuning with Optuna, on the validation split only.

One study per (dataset, method), stored in an Optuna journal file so an interrupted study resumes
where it stopped, or in a PostgreSQL database that several workers share
(`harness.tuning.storage`). The study name carries a hash of everything that defines the search
(data, fixed hyperparameters, search space, budget, and the digest of all the code the tune stage
runs for the method, `harness.code_identity`), so changing any of it starts a new study in the
same storage instead of resuming trials of other code. Each trial is a nested MLflow run
(`<method>-trial-<n>`) under a parent run per study (per worker), which carries the objective,
its direction and the best trial; a median pruner reads per-epoch validation scores.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.config import MethodConfig, Params
from harness.data.types import DataSpec, SplitData
from harness.errors import NonFiniteLossError
from harness.io_utils import sha256_json
from harness.metrics import metric_info
from harness.provenance import hardware_facts
from harness.records import TrialRecord, TuningRecord
from harness.tracking import (
    Tracker,
    log_epoch,
    log_final,
    log_params,
    standard_tags,
    text_model_tags,
)
from harness.training import loop as training_loop
from harness.training.loop import EpochLog, LoopConfig, RunContext
from harness.tuning.storage import (
    FAILURE_ATTR,
    StudyStorage,
    counted_trials,
    open_storage,
    recover_stale_trials,
    requeue,
    running_trials,
)
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
    trials: tuple[TrialRecord, ...] = ()


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
    code: str

    @property
    def space(self) -> SearchSpace:
        """The method's space with params.yaml's overrides; hyperparameters fixed under
        `methods.<m>.hparams` are not tuned (a fixed value is never silently overridden)."""
        where = f"methods.{self.method_cls.name}.search_space"
        space = override_space(self.method_cls.SEARCH_SPACE, self.method_config.search_space, where)
        return {k: v for k, v in space.items() if k not in self.method_config.hparams}

    @property
    def trial_budget(self) -> int:
        """`tune.n_trials`, or 1 when nothing is left to tune (an empty search space once the
        fixed hyperparameters are taken out: every trial would train the same model)."""
        return self.params.tune.n_trials if self.space else 1

    @property
    def loop(self) -> LoopConfig:
        return LoopConfig.for_tuning(self.params, self.dataset)

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
            "select_metric": self.params.select_metric_for(self.dataset),
            "code": self.code,
        }
        return f"{self.dataset}.{self.method_cls.name}.{sha256_json(identity)[:12]}"


def run_study(
    job: TuningJob,
    storage_path: Path,
    tracker: Tracker,
    storage_url: str | None = None,
    worker: int = 0,
) -> TuneResult:
    """Run (or resume, or join) the study until it holds `job.trial_budget` counted trials and
    no trial is still running; returns the study's result.

    `storage_url` None: the journal file `storage_path`, one process. A PostgreSQL URL: the
    study is shared by every worker that names it; `worker` (0, 1, ...) offsets the sampler
    seed and names this worker's MLflow parent run. See `harness.tuning.storage`."""
    name = job.study_name()
    tune = job.params.tune
    direction = "maximize" if metric_info(job.loop.select_metric).higher_is_better else "minimize"
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
    tags = _tag_fields(job, name, worker)
    key = f"tune/{name}" if worker == 0 else f"tune/{name}/worker-{worker}"
    run_name = f"tune-{job.method_cls.name}" + (f"-worker{worker}" if worker else "")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = f"valid_{job.loop.select_metric}"
    with tracker.run(job.dataset, key, run_name, standard_tags(**tags), resume=True):
        log_params({"objective": objective, "direction": direction})
        while True:
            if _run_reserved_trial(study, opened, job.trial_budget, job, tracker, tags):
                continue
            if opened.shared:
                optuna.storages.fail_stale_trials(study)  # a dead worker's trial: retried
            if counted_trials(study) < job.trial_budget:
                continue
            if not running_trials(study):
                break
            time.sleep(POLL_S)  # other workers' trials still running
        result = _result(study)
        _log_best(study)
    return result


def _log_best(study: optuna.Study) -> None:
    """On the active parent run: metrics `best_value` and `best_trial` (its number), and the
    best trial's sampled hyperparameters as params `best.<name>`."""
    best = study.best_trial
    log_final({"best_value": float(best.value), "best_trial": best.number}, prefix="")
    log_params({f"best.{name}": value for name, value in best.params.items()})


def _tag_fields(job: TuningJob, study_name: str, worker: int) -> dict:
    """The arguments of `standard_tags` shared by a study's parent run and its trials."""
    device = training_loop.resolve_device(job.params.device)
    fixed = job.method_cls.resolve_hparams(job.spec.kind, job.method_config.hparams)
    text = text_model_tags(job.method_cls.text_model_facts(fixed, job.spec))
    return {
        "stage": "tune", "dataset": job.dataset, "method": job.method_cls.name,
        "data_hash": job.data_hash, "hardware": hardware_facts(device), "study": study_name,
        "worker": worker, **text,
    }  # fmt: skip


def make_pruner(tune) -> optuna.pruners.BasePruner:
    """`tune.pruner` (harness/config/sections.py, `PrunerConfig`): "median" or "none"."""
    if tune.pruner.kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=tune.pruner.n_startup_trials, n_warmup_steps=tune.pruner.n_warmup_steps
    )


def _run_reserved_trial(
    study: optuna.Study,
    opened: StudyStorage,
    budget: int,
    job: TuningJob,
    tracker: Tracker,
    tags: dict,
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
    tracker.mark_runs(dataset, f"tune/{study_name}/trial-{number}", "STALE", "FAILED")


def _objective(job: TuningJob, trial: optuna.Trial, tracker: Tracker, tags: dict) -> float:
    sampled = suggest_all(trial, job.space)
    name = job.method_cls.name
    hparams = job.method_cls.resolve_hparams(
        job.spec.kind, job.method_config.hparams, sampled, where=f"methods.{name}.hparams"
    )
    seed = job.params.tune.sampler_seed
    key = f"tune/{job.study_name()}/trial-{trial.number}"
    trial_tags = standard_tags(**tags, seed=seed, trial=trial.number)
    pruned: optuna.TrialPruned | None = None
    run_name = f"{name}-trial-{trial.number}"
    with tracker.run(job.dataset, key, run_name, trial_tags, nested=True) as run:
        log_params(asdict(hparams))
        model = training_loop.build_model(job.method_cls, hparams, job.spec, seed)
        context = RunContext(job.dataset, name, seed)

        def report(log: EpochLog) -> None:
            log_epoch(log)
            trial.report(log.valid[job.loop.select_metric], step=log.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {log.epoch}")

        try:
            outcome = training_loop.fit(
                model, job.train, job.valid, job.loop, context, seed, [report]
            )
        except optuna.TrialPruned as exc:
            pruned = exc
        except NonFiniteLossError as exc:  # fails this trial only; it counts to the budget
            trial.set_user_attr(FAILURE_ATTR, str(exc))
            raise
        else:
            log_final(outcome.best_valid, prefix="best_valid_")
    if pruned is not None:  # FINISHED, tagged PRUNED: MLflow's UI draws KILLED as a failure
        tracker.end_run(run.info.run_id, "PRUNED", "FINISHED")
        raise pruned
    return outcome.best_valid[job.loop.select_metric]


def _result(study: optuna.Study) -> TuneResult:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    if not complete:
        raise RuntimeError(f"study {study.study_name}: no trial completed (all pruned or failed)")
    best = study.best_trial
    trials = tuple(
        TrialRecord(
            t.number, t.state.name, None if t.value is None else float(t.value), dict(t.params)
        )
        for t in study.get_trials(deepcopy=False)
    )
    return TuneResult(
        study.study_name, float(best.value), dict(best.params), len(complete), len(pruned), trials
    )


def write_best_params(path: Path, job: TuningJob, result: TuneResult) -> None:
    """The study's `TuningRecord` (best_params.json): the file the train stage depends on."""
    record = TuningRecord(
        dataset=job.dataset,
        method=job.method_cls.name,
        study_name=result.study_name,
        select_metric=job.loop.select_metric,
        best_value=result.best_value,
        params=result.best_params,
        n_complete=result.n_complete,
        n_pruned=result.n_pruned,
        fixed_hparams=dict(job.method_config.hparams),
        search_space=describe(job.space),
        trials=list(result.trials),
    )
    record.save(path)
