"""A real single-node SLURM cluster on 127.0.0.1 for the executor tests: Debian's `slurm-wlm`
22.05 daemons (slurmctld, slurmd) authenticated by their own `munged`, all under a temporary
folder, started for the test and stopped after it.

`slurm_cluster()` yields the environment the cluster's clients need (`SLURM_CONF`); it skips
the test, saying why, where the binaries are missing (`.ci/run` installs `slurm-wlm` and
`munge` where it can), where it does not run as root (slurmd starts jobs as their user), or
where the node does not come up. The cluster has no job accounting (no slurmdbd), as the
executor's queue check allows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BINARIES = (
    "munged",
    "mungekey",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sinfo",
    "scontrol",
    "srun",
)

SLURM_CONF = """\
ClusterName=msabench-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def slurm_cluster(cpus: int = 2) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under a temporary folder; yield {"SLURM_CONF": ...}
    once the node is idle; stop all three and remove the folder after."""
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        pytest.skip(
            f"SLURM test cluster: {', '.join(missing)} not found; install the `slurm-wlm` and "
            "`munge` system packages to run the SLURM executor tests"
        )
    if os.geteuid() != 0:
        pytest.skip("SLURM test cluster: slurmd must run as root to start jobs; not root here")
    root = Path(tempfile.mkdtemp(prefix="msabench-slurm-", dir="/tmp"))
    for name in ("munge", "state", "spool", "log"):
        (root / name).mkdir()
    (root / "munge").chmod(0o700)
    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(root=root, cpus=cpus, ctld_port=_free_port(), slurmd_port=_free_port())
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munge = root / "munge"
    try:
        _run(["mungekey", "--create", "--keyfile", str(munge / "munge.key")], env)
        _run(["munged", f"--key-file={munge / 'munge.key'}", f"--socket={munge / 'munge.socket'}",
              f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
              f"--seed-file={munge / 'munged.seed'}", "--force"], env)  # fmt: skip
        _run(["slurmctld", "-i"], env)
        _run(["slurmd", "-N", "localhost"], env)
        _wait_for_idle_node(env, root)
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True, timeout=60)
        for pid_file in (root / "slurmd.pid", root / "slurmctld.pid", munge / "munged.pid"):
            _stop(pid_file)
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.skip(f"SLURM test cluster: `{command[0]}` failed: {done.stderr.strip()[-300:]}")


def _wait_for_idle_node(env: dict[str, str], root: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        shown = subprocess.run(["sinfo", "--noheader", "--format", "%T"], env=env,
                               capture_output=True, text=True)  # fmt: skip
        state = shown.stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    log = (root / "log" / "slurmd.log").read_text()[-300:] if (root / "log").exists() else ""
    pytest.skip(f"SLURM test cluster: the node did not come up (state {state!r}): {log}")


def _stop(pid_file: Path, timeout: float = 20.0) -> None:
    """Stop the daemon whose pid is in `pid_file` (TERM, then KILL), if it is still running."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, 9)
