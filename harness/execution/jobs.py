"""The functions a submitted job runs: each is a whole stage's work for one job, run exactly
as the local executor runs it, so a job writes what a local run writes.

Module-level functions of picklable arguments (submitit pickles them into the job folder; the
job imports this module). Each job re-runs its stage from the resume stores: a resubmitted
training job keeps the seeds a killed one finished (`harness.stages.train`), a resubmitted
tuning worker joins its study and retries the trial that was cut off
(`harness.tuning.storage`), so nothing is lost or run twice.
"""

from __future__ import annotations

import logging
import os

from harness.config import Params

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def tune_worker(params: Params, dataset: str, method: str, storage: str | None, worker: int) -> str:
    """Tuning worker `worker` of the study of (`dataset`, `method`); returns best_params.json."""
    _job_logging()
    from harness.stages import tune

    return str(tune.run(params, dataset, method, storage, worker))


def train_seeds(params: Params, dataset: str, method: str) -> str:
    """Every seed of (`dataset`, `method`), `train.workers` at a time; returns the runs folder."""
    _job_logging()
    from harness.stages import train

    return str(train.run(params, dataset, method))


def robustness(params: Params, dataset: str) -> str:
    """The missing-modality protocol on `dataset`; returns its metrics file."""
    _job_logging()
    from harness import paths
    from harness.stages import robustness as stage

    stage.run(params, dataset)
    return str(paths.robustness_metrics(dataset))


def _job_logging() -> None:
    """The stage's INFO log lines, as `msabench` prints them, into the job's log file."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S", force=True)
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID", "local")
    logging.getLogger("msabench").info("job %s on %s", job, os.uname().nodename)
