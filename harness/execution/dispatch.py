"""The heavy stages under executor `slurm`: which jobs each stage submits.

- `tune DATASET METHOD`: `executor.tune_jobs` worker jobs joining one study (more than one need
  the PostgreSQL `executor.study_storage`, or `--storage`); worker k of `--worker W` is W + k.
- `train DATASET METHOD`: one job training every seed, `train.workers` at a time inside it.
- `robustness DATASET`: one job evaluating every trained model.

The command waits for its jobs, so `dvc repro` records the outputs they wrote as it records a
local run's.
"""

from __future__ import annotations

from harness import paths
from harness.config import Params
from harness.db_locks import is_postgresql
from harness.errors import ConfigError
from harness.execution import jobs
from harness.execution.submission import JobSpec, run_jobs


def run_tune(params: Params, dataset: str, method: str, storage: str | None, worker: int) -> None:
    count = params.executor.tune_jobs
    storage = storage or params.executor.study_storage
    if count > 1 and not is_postgresql(storage or ""):
        raise ConfigError(
            f"{params.source}: executor.tune_jobs: {count} worker jobs share one study through "
            "PostgreSQL; set executor.study_storage to a postgresql:// URL (or pass --storage)"
        )
    specs = [
        JobSpec(f"tune-{dataset}-{method}-worker{worker + k}", jobs.tune_worker,
                (params, dataset, method, storage, worker + k))
        for k in range(count)
    ]  # fmt: skip
    run_jobs(params.executor, paths.jobs_dir("tune", dataset, method), specs)


def run_train(params: Params, dataset: str, method: str) -> None:
    spec = JobSpec(f"train-{dataset}-{method}", jobs.train_seeds, (params, dataset, method))
    run_jobs(params.executor, paths.jobs_dir("train", dataset, method), [spec])


def run_robustness(params: Params, dataset: str) -> None:
    spec = JobSpec(f"robustness-{dataset}", jobs.robustness, (params, dataset))
    run_jobs(params.executor, paths.jobs_dir("robustness", dataset), [spec])


RUNNERS = {"tune": run_tune, "train": run_train, "robustness": run_robustness}
