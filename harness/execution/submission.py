"""Submit a stage's jobs through submitit, wait for them, and resubmit the ones that fail.

`run_jobs(config, folder, specs)` submits one job per `JobSpec` (submitit's `AutoExecutor`: SLURM
where `srun` exists, its local executor otherwise; `executor.cluster` can force either), waits
until every job has ended, and resubmits a job that ended without a result (failed, cancelled,
preempted, timed out, its node lost) up to `executor.max_retries` times. A resubmitted job runs
the same function, which resumes from the stage's resume stores. A job whose function raised
is not resubmitted (it would raise again): its error ends the stage. Every job's log files are
`<folder>/<job id>_0_log.out` and `.err` (submitit's names); `folder` is
`results/.jobs/<stage>/<dataset>[/<method>]` (`harness.paths.jobs_dir`).

If the stage itself is interrupted while waiting, its jobs still queued or running are
cancelled, so no job writes after the stage has gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config.sections import ExecutorConfig
from harness.errors import MsabenchError
from harness.execution.queue import left_queue

log = logging.getLogger("msabench")

RESULT_GRACE_S = 30.0  # how long a job that left the queue may take to show its result file


class JobFailedError(MsabenchError):
    """A job ended without a result after every resubmission."""


@dataclass(frozen=True)
class JobSpec:
    """One job: `function(*args)`, under the display name `name`."""

    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass
class _Tracked:
    spec: JobSpec
    job: Any  # submitit.Job
    attempt: int = 0  # resubmissions so far
    left_at: float | None = None  # when the job was first seen out of the queue


def make_executor(config: ExecutorConfig, folder: Path):
    """A submitit `AutoExecutor` writing into `folder`, with the `executor.slurm` resources."""
    import submitit

    folder.mkdir(parents=True, exist_ok=True)
    cluster = None if config.cluster == "auto" else config.cluster
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    slurm = config.slurm
    parameters: dict[str, Any] = {
        "timeout_min": slurm.time_min,
        "cpus_per_task": slurm.cpus_per_job,
        "nodes": 1,
        "tasks_per_node": 1,
    }
    if slurm.gpus_per_job:
        parameters["gpus_per_node"] = slurm.gpus_per_job
    if slurm.mem_gb is not None:
        parameters["mem_gb"] = slurm.mem_gb
    if executor.cluster == "slurm":
        if slurm.partition:
            parameters["slurm_partition"] = slurm.partition
        if slurm.account:
            parameters["slurm_account"] = slurm.account
        if slurm.additional:
            parameters["slurm_additional_parameters"] = dict(slurm.additional)
    executor.update_parameters(**parameters)
    return executor


def run_jobs(config: ExecutorConfig, folder: Path, specs: Sequence[JobSpec]) -> list[Any]:
    """Run every spec as one job and return their results in the specs' order; JobFailedError
    (naming the job and its log) once a job has failed `max_retries` + 1 times."""
    executor = make_executor(config, folder)
    tracked = [_Tracked(spec, _submit(executor, spec)) for spec in specs]
    finished = False
    try:
        results = _wait(executor, tracked, config)
        finished = True
        return results
    finally:
        if not finished:
            for item in tracked:
                _cancel(item.job)


def _submit(executor, spec: JobSpec):
    executor.update_parameters(name=spec.name)
    job = executor.submit(spec.function, *spec.args)
    log.info("%s: submitted job %s (logs: %s)", spec.name, job.job_id, job.paths.stdout.parent)
    return job


def _wait(executor, tracked: list[_Tracked], config: ExecutorConfig) -> list[Any]:
    results: dict[int, Any] = {}
    while len(results) < len(tracked):
        for index, item in enumerate(tracked):
            if index in results or not _ended(item):
                continue
            outcome = _outcome(item.job)
            if outcome is not None:
                results[index] = outcome
                log.info("%s: job %s done", item.spec.name, item.job.job_id)
                continue
            if item.attempt >= config.max_retries:
                raise JobFailedError(
                    f"{item.spec.name}: job {item.job.job_id} ended without a result "
                    f"({_state(item.job)}) after {item.attempt} resubmission(s); its log: "
                    f"{item.job.paths.stderr}"
                )
            item.attempt += 1
            log.warning(
                "%s: job %s ended without a result (%s; log %s); resubmitting (%d of %d)",
                item.spec.name, item.job.job_id, _state(item.job), item.job.paths.stderr,
                item.attempt, config.max_retries,
            )  # fmt: skip
            item.job, item.left_at = _submit(executor, item.spec), None
        if len(results) < len(tracked):
            time.sleep(config.poll_s)
    return [results[index] for index in range(len(tracked))]


def _outcome(job) -> Any:
    """What an ended job returned: its function's value, None when it left no result (killed,
    preempted, timed out: worth resubmitting); JobFailedError when its function raised, which
    a resubmission would raise again. Read from submitit's result file directly: its own
    `result()` waits on `sacct`, which a cluster without accounting never answers."""
    from submitit.core.utils import pickle_load

    if not job.paths.result_pickle.exists():
        return None
    outcome, value = pickle_load(job.paths.result_pickle)
    if outcome == "success":
        return value
    lines = [line for line in str(value).splitlines() if line.strip()]
    raise JobFailedError(
        f"job {job.job_id} failed: {lines[-1] if lines else 'no trace'} (log: {job.paths.stderr})"
    )


def _ended(item: _Tracked) -> bool:
    """True once the job has ended: its result file is there, or it has been over (submitit
    says so, or, on a SLURM cluster without job accounting where submitit's `sacct` has no
    answer, it is out of the queue) for RESULT_GRACE_S without one appearing: a shared file
    system may show the file late."""
    job = item.job
    if job.paths.result_pickle.exists():
        return True
    over = job.done() or (type(job).__name__ == "SlurmJob" and left_queue(job.job_id))
    if not over:
        return False
    if item.left_at is None:
        item.left_at = time.monotonic()
    return time.monotonic() - item.left_at > RESULT_GRACE_S


def _state(job) -> str:
    try:
        return str(job.state)
    except Exception:  # noqa: BLE001 - a state is only for the message
        return "UNKNOWN"


def _cancel(job) -> None:
    try:
        if not job.done():
            job.cancel(check=False)
            log.warning("job %s cancelled: the stage waiting for it stopped", job.job_id)
    except Exception:  # noqa: BLE001 - best effort while already failing
        pass
