"""Whether a SLURM job is still queued or running, from `squeue` (no job accounting needed,
unlike submitit's `sacct`: a single-node test cluster, or a cluster without slurmdbd)."""

from __future__ import annotations

import subprocess


def left_queue(job_id: str) -> bool:
    """True once job `job_id` is no longer pending, running, completing or requeued: `squeue`
    lists nothing for it (or no longer knows the id). An `squeue` that cannot run counts as
    still queued, so a passing fault never resubmits a running job."""
    try:
        listed = subprocess.run(
            ["squeue", "--noheader", "--jobs", str(job_id), "--format", "%T"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    if listed.returncode != 0:
        return "Invalid job id" in listed.stderr
    return not listed.stdout.strip()
