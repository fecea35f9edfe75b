"""The local Optuna journal file (`results/studies/<dataset>/<method>.journal`), opened so that a
process killed while writing it can never wedge the next one.

Optuna's `JournalFileBackend` serialises appends with a lock *file* (by default a symlink,
`<journal>.lock`, made on acquire and removed on release). A process killed between the two (the
OOM killer, a preempted node, Ctrl-\\) leaves the link behind, and the next writer waits for it:
Optuna breaks a lock only once the link's target has not changed for 30 s, and with a relative
journal path (ours are relative to the project) the link dangles, `os.stat` fails and its loop
spins at 100% CPU forever without ever breaking it (Optuna 5.1). A resumed `tune` stage hung
that way.

Here the lock is `flock(2)` on the journal file itself (`KernelFileLock`): the kernel drops it
when its holder dies, however it dies, so a killed writer leaves nothing to break and
concurrent writers are still serialised. The file itself is checked when it is opened for
writing: a last record cut short (a write that never completed: disk full, power loss) is the
only record Optuna could not replay, and every later append would be glued onto it and make the
whole journal unreadable; it is dropped, with a warning that names the file and the bytes.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from harness.errors import DataError

__all__ = ["KernelFileLock", "open_journal", "repair_torn_tail"]

log = logging.getLogger("msabench")


class KernelFileLock:
    """An exclusive `flock(2)` on `path` (which must exist), held from `acquire` to `release`.

    The kernel releases it when the holding process exits or is killed, so no stale lock
    survives its holder. Advisory, like Optuna's own locks: it serialises writers that use it.
    It has the two methods `JournalFileBackend(lock_obj=...)` calls (Optuna's lock base class is
    private, so this does not subclass it).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:  # e.g. ENOLCK: an NFS mount without a lock manager
            os.close(fd)
            raise DataError(
                f"{self._path}: cannot lock the Optuna journal ({exc.strerror or exc}): keep "
                "results/ on a file system with flock(2) locks, or tune into a database "
                "(`--storage postgresql://...`)"
            ) from exc
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            raise RuntimeError(f"{self._path}: the journal lock is not held")
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the only descriptor of the lock releases it


def repair_torn_tail(path: Path) -> int:
    """Cut a last record that does not end in a newline (a write that never completed) off the
    journal at `path`; return the number of bytes cut (0 when the file ends cleanly or is empty).
    The caller holds the journal's lock."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep = _end_of_last_line(handle, size)
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return size - keep


def _end_of_last_line(handle, size: int, block: int = 1 << 16) -> int:
    """Offset just past the last b"\\n" in the first `size` bytes of `handle` (0 if none)."""
    end = size
    while end > 0:
        start = max(0, end - block)
        handle.seek(start)
        newline = handle.read(end - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def open_journal(path: Path) -> JournalStorage:
    """The study storage in the journal at `path` for reading and writing, created (with its
    folder) if missing, its appends under a `KernelFileLock`, a torn last record dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    lock = KernelFileLock(path)
    lock.acquire()
    try:
        cut = repair_torn_tail(path)
    finally:
        lock.release()
    if cut:
        log.warning(
            "%s: dropped an unfinished last record (%d bytes) that a process stopped while "
            "writing; the records before it are kept", path, cut,
        )  # fmt: skip
    return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
