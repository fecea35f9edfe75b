"""Where Optuna studies live, and how several tuning workers share one without losing or
duplicating trials.

- **A journal file** (the default; `results/studies/<dataset>/<method>.journal`, a DVC output):
  one tuning process at a time. A trial left RUNNING by a killed process is therefore stale by
  definition; `recover_stale_trials` fails it and enqueues its parameters again. The file's
  lock is the kernel's (`harness.tuning.journal`), so a killed process never leaves it locked.
- **A PostgreSQL URL** (`msabench tune ... --storage postgresql://user@host/db`): any number of
  workers on any number of machines. Optuna's RDB storage with a heartbeat: a trial whose worker
  stopped beating for `GRACE_PERIOD_S` is failed by the next worker and its parameters retried.

The trial budget (`tune.n_trials`) is shared: a worker *reserves* a trial slot while holding a
lock (`reservation`; a PostgreSQL advisory lock keyed by the study name, so it spans machines),
counts the study's trials, and creates its trial before releasing the lock, so the total never
overshoots. Counted: complete, pruned and running trials and trials that failed on their own
(non-finite loss; user attribute `FAILURE_ATTR`); trials failed because their worker died are
not counted, their retry takes the slot.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from harness.db_locks import OPTUNA_SCHEMA_KEY, holding_advisory_lock, is_postgresql, schema_lock
from harness.errors import ConfigError
from harness.tuning.journal import open_journal

HEARTBEAT_S = 5  # a running trial's worker writes a heartbeat this often
GRACE_PERIOD_S = 20  # ... and is presumed dead after this long without one
FAILURE_ATTR = "msabench.failure"  # set on a trial that failed by itself (counts to the budget)
RETRY_ATTR = "msabench.retry_of"  # set on a trial that re-runs a dead worker's trial

FailedTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass
class StudyStorage:
    """An opened study storage: the Optuna storage, whether several workers may share it, and
    the lock that serialises trial reservation."""

    storage: optuna.storages.BaseStorage
    shared: bool
    reservation: Callable[[str], contextmanager]

    def describe(self) -> str:
        return "database (shared by workers)" if self.shared else "journal file (one process)"


def open_storage(
    journal: Path, url: str | None, on_failed_trial: FailedTrialCallback | None = None
) -> StudyStorage:
    """The journal file `journal` when `url` is None, else the database at `url` (PostgreSQL).
    `on_failed_trial(study, trial)` runs when a dead worker's trial is failed by the heartbeat
    check (database only). ConfigError for another kind of URL or an unreachable database."""
    if url is None:
        return StudyStorage(open_journal(journal), shared=False, reservation=_process_lock())
    if not is_postgresql(url):
        raise ConfigError(
            f"--storage {url!r}: expected a PostgreSQL URL (postgresql://user@host:port/db); "
            "leave it out for the local journal file"
        )
    try:
        with schema_lock(url, OPTUNA_SCHEMA_KEY):  # workers starting together: one creates
            storage = RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_PERIOD_S,
                failed_trial_callback=on_failed_trial,
                engine_kwargs={"pool_pre_ping": True},
            )
    except ImportError as exc:
        raise ConfigError(
            f"--storage {_safe(url)}: PostgreSQL needs psycopg (pip install 'psycopg[binary]'): "
            f"{exc}"
        ) from None
    except Exception as exc:  # sqlalchemy's OperationalError and friends: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--storage {_safe(url)}: cannot open the database ({first})") from None
    return StudyStorage(storage, shared=True, reservation=_advisory_lock(storage))


def _safe(url: str) -> str:
    """`url` without a password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


def _process_lock() -> Callable[[str], contextmanager]:
    lock = threading.Lock()

    @contextmanager
    def reservation(study_name: str) -> Iterator[None]:
        with lock:
            yield

    return reservation


def _advisory_lock(storage: RDBStorage) -> Callable[[str], contextmanager]:
    """A PostgreSQL session-level advisory lock per study name, on a connection of its own."""

    @contextmanager
    def reservation(study_name: str) -> Iterator[None]:
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        with holding_advisory_lock(storage.engine, key):
            yield

    return reservation


def counted_trials(study: optuna.Study) -> int:
    """Trials that use up the budget: complete, pruned, running, and failed by themselves."""
    count = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
            count += 1
        elif trial.state == TrialState.FAIL and FAILURE_ATTR in trial.user_attrs:
            count += 1
    return count


def running_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def recover_stale_trials(study: optuna.Study) -> list[FrozenTrial]:
    """For a journal (single-process) study: fail every RUNNING trial (left by a killed
    process) and enqueue its parameters again; returns the failed trials."""
    stale = running_trials(study)
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        requeue(study, trial)
    return stale


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue `trial`'s parameters again (marked with RETRY_ATTR), unless it sampled none."""
    if trial.params:
        study.enqueue_trial(dict(trial.params), user_attrs={RETRY_ATTR: trial.number})
