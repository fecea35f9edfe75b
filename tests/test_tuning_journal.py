"""The local Optuna journal (harness/tuning/journal.py): a process killed while it holds the
journal's lock, or in the middle of writing a record, never stops the next process from
writing it (a resumed `tune` stage once spun forever on the lock link a killed one left)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from harness.errors import DataError
from harness.tuning.journal import KernelFileLock, open_journal, repair_torn_tail
from harness.tuning.storage import open_storage

REPO = Path(__file__).resolve().parents[1]

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from harness.tuning.journal import KernelFileLock
    KernelFileLock(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(600)
""")

DIE_WRITING = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import optuna
    from harness.tuning.storage import open_storage
    storage = open_storage(Path(sys.argv[1]), None).storage
    os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed mid-append, lock held
    optuna.create_study(study_name="killed", storage=storage)
""")

WRITE_STUDY = textwrap.dedent("""
    import sys
    from pathlib import Path
    import optuna
    from harness.tuning.storage import open_storage
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(Path(sys.argv[1]), None).storage
    study = optuna.create_study(study_name=sys.argv[2], storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    print(len(study.trials), flush=True)
""")


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # fmt: skip


def _write_study(journal: Path, name: str, cwd: Path) -> str:
    """A second process writes a 2-trial study into `journal`; fail (not hang) after 60 s."""
    process = _python(WRITE_STUDY, str(journal), name, cwd=cwd)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"writing {journal} after the holder died did not finish in 60 s")
    assert process.returncode == 0, err
    return out.strip()


def _is_locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _studies(storage) -> list[optuna.Study]:
    return [
        optuna.load_study(study_name=summary.study_name, storage=storage)
        for summary in optuna.get_all_study_summaries(storage)
    ]


def test_a_tuning_process_killed_while_writing_does_not_block_the_next(tmp_path) -> None:
    """The stage's own storage, the project's relative path, SIGKILL inside Optuna's append."""
    journal = Path("results/studies/synth/lf_dnn.journal")
    killed = _python(DIE_WRITING, str(journal), cwd=tmp_path)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert _write_study(journal, "after-kill", tmp_path) == "2"
    names = {s.study_name: len(s.trials) for s in _studies(open_journal(tmp_path / journal))}
    assert names == {"killed": 0, "after-kill": 2}


def test_the_kernel_drops_the_lock_of_a_killed_holder(tmp_path) -> None:
    journal = tmp_path / "results" / "studies" / "synth" / "lf_dnn.journal"
    open_journal(journal)
    holder = _python(HOLD_LOCK, str(journal))
    assert holder.stdout.readline().strip() == "held", holder.communicate()[1]
    assert _is_locked(journal)  # held: other writers wait
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert not _is_locked(journal)  # the kernel dropped it with its holder
    assert _write_study(journal, "after-kill", tmp_path) == "2"
    [study] = _studies(open_journal(journal))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]


def test_a_lock_link_left_by_optuna_own_lock_is_not_waited_for(tmp_path) -> None:
    """What a killed process left behind before this lock: Optuna's `<journal>.lock` symlink,
    relative like the project's paths (it dangles, and Optuna 5.1's own lock spins on it
    forever). The journal is written through it at once."""
    folder = tmp_path / "results" / "studies" / "synth"
    folder.mkdir(parents=True)
    relative = Path("results/studies/synth/lf_dnn.journal")
    (tmp_path / relative).touch()
    os.symlink(relative, tmp_path / f"{relative}.lock")  # dangles: relative to its own folder
    assert _write_study(relative, "through-stale-link", tmp_path) == "2"


def test_a_held_lock_blocks_other_writers_until_it_is_released(tmp_path) -> None:
    journal = tmp_path / "study.journal"
    journal.touch()
    lock = KernelFileLock(journal)
    lock.acquire()
    assert _is_locked(journal)
    lock.release()
    assert not _is_locked(journal)
    with pytest.raises(RuntimeError, match="study.journal: the journal lock is not held"):
        lock.release()


def test_a_file_system_without_flock_is_one_line(tmp_path, monkeypatch) -> None:
    import errno

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    journal = tmp_path / "study.journal"
    journal.touch()
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(DataError) as raised:
        open_storage(journal, None)
    assert str(raised.value) == (
        f"{journal}: cannot lock the Optuna journal (No locks available): keep results/ on a "
        "file system with flock(2) locks, or tune into a database (`--storage "
        "postgresql://...`)"
    )


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"", b""),
        (b'{"a":1}\n', b'{"a":1}\n'),
        (b'{"a":1}\n{"b":2}\n{"c":', b'{"a":1}\n{"b":2}\n'),
        (b'{"c":', b""),
    ],
)
def test_a_torn_last_record_is_cut_back_to_the_last_whole_one(tmp_path, content, kept) -> None:
    journal = tmp_path / "study.journal"
    journal.write_bytes(content)
    assert repair_torn_tail(journal) == len(content) - len(kept)
    assert journal.read_bytes() == kept


def test_a_torn_last_record_across_read_blocks_is_cut(tmp_path) -> None:
    whole = b"x" * 100_000 + b"\n"
    journal = tmp_path / "study.journal"
    journal.write_bytes(whole + b"y" * 150_000)  # the torn record spans several 64 KiB blocks
    assert repair_torn_tail(journal) == 150_000
    assert journal.read_bytes() == whole


def test_a_journal_with_a_torn_record_is_written_and_replayed(tmp_path, caplog) -> None:
    journal = tmp_path / "lf_dnn.journal"
    assert _write_study(journal, "first", tmp_path) == "2"
    intact = journal.read_bytes()
    journal.write_bytes(intact + b'{"op_code":5,"worker_id":"w","trial_id":1')  # cut short
    with caplog.at_level("WARNING", logger="msabench"):
        storage = open_storage(journal, None).storage
    assert f"{journal}: dropped an unfinished last record (41 bytes)" in caplog.text
    assert journal.read_bytes() == intact
    study = optuna.create_study(study_name="second", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    counts = {s.study_name: len(s.trials) for s in _studies(open_journal(journal))}
    assert counts == {"first": 2, "second": 1}
