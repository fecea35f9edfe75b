"""Tuning histories read back from the Optuna journals that `harness.tuning.study` writes.

`load_study_history` gives one study's trials in trial-number order with the running best;
`tuning_histories` collects the studies that produced each method's tuned hyperparameters (the
study named in its best_params.json); `history_csv` writes them as a DVC plots file.

Decisions:

- Only COMPLETE trials count: `value` is NaN for PRUNED, FAIL, RUNNING and WAITING trials, and
  the running best skips them (it is NaN before the first complete trial).
- A trial's best reported intermediate value (its best per-epoch validation score, in the
  study's direction) is kept apart in `best_intermediate`: for a pruned trial it is the score
  comparable to a complete trial's value (the objective returns the best epoch's score), so
  figures can place pruned trials; it never enters `best`.
- Journals are opened read-only in effect: a missing file is reported, never created (Optuna's
  JournalFileBackend would create an empty one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from harness.errors import DataError
from harness.paths import best_params_file, study_storage
from harness.records import TuningRecord

__all__ = [
    "HISTORY_COLUMNS",
    "CSV_COLUMNS",
    "best_so_far",
    "history_csv",
    "load_study_history",
    "tuning_histories",
]

HISTORY_COLUMNS: tuple[str, ...] = (
    "trial", "state", "value", "best", "direction", "best_intermediate",
)  # fmt: skip
CSV_COLUMNS: tuple[str, ...] = ("method", "trial", "state", "value", "best")


def best_so_far(values: np.ndarray | Iterable[float], higher_is_better: bool) -> np.ndarray:
    """Running best of `values` (T,) -> (T,) float64. NaN entries (trials that did not
    complete) are skipped: entry t is the best of the non-NaN values among 0..t, NaN while
    there is none yet. ValueError if `values` is not 1-D."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be 1-D (T,), got shape {array.shape}")
    if array.size == 0:
        return array.copy()
    # fmax/fmin return the non-NaN operand when one is NaN, so NaN only survives while every
    # value so far is NaN
    accumulate = np.fmax.accumulate if higher_is_better else np.fmin.accumulate
    return accumulate(array)


def _open_journal(path: Path) -> JournalStorage:
    """The journal at `path`; DataError if it is missing or cannot be replayed."""
    if not path.is_file():
        raise DataError(f"{path}: no such Optuna journal file; run the tune stage first")
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # a corrupt journal fails deep inside Optuna's replay
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise DataError(f"{path}: not a readable Optuna journal ({reason})") from exc


def _best_intermediate(trial: FrozenTrial, maximize: bool) -> float:
    """The best of the values the trial reported (NaN ignored); NaN if it reported none."""
    reported = [float(v) for v in trial.intermediate_values.values() if not math.isnan(v)]
    if not reported:
        return math.nan
    return max(reported) if maximize else min(reported)


def load_study_history(journal_path: str | Path, study_name: str) -> pd.DataFrame:
    """One row per trial of study `study_name` in the journal, in trial-number order, with the
    columns `HISTORY_COLUMNS`: trial (int), state (TrialState name, e.g. "COMPLETE",
    "PRUNED", "FAIL", "RUNNING"), value (NaN unless complete), best (running best of the
    complete values in the study's direction), direction ("minimize"/"maximize"),
    best_intermediate (the best reported intermediate value, NaN if none).

    DataError (one line, naming the file) if the journal is missing or unreadable, lacks the
    study (the message lists the studies it holds) or the study is multi-objective."""
    path = Path(journal_path)
    storage = _open_journal(path)
    names = sorted(summary.study_name for summary in storage.get_all_studies())
    if study_name not in names:
        held = ", ".join(names) if names else "none"
        raise DataError(f"{path}: no study {study_name!r}; the journal holds: {held}")
    study_id = storage.get_study_id_from_name(study_name)
    directions = storage.get_study_directions(study_id)
    if len(directions) != 1:
        raise DataError(
            f"{path}: study {study_name!r} has {len(directions)} objectives; expected 1"
        )
    maximize = directions[0] == StudyDirection.MAXIMIZE
    trials = sorted(storage.get_all_trials(study_id, deepcopy=False), key=lambda t: t.number)
    values = [
        float(t.value) if t.state == TrialState.COMPLETE and t.value is not None else math.nan
        for t in trials
    ]
    frame = pd.DataFrame(
        {
            "trial": pd.Series([t.number for t in trials], dtype="int64"),
            "state": pd.Series([t.state.name for t in trials], dtype=object),
            "value": pd.Series(values, dtype="float64"),
            "best": best_so_far(np.asarray(values, dtype=np.float64), maximize),
            "direction": "maximize" if maximize else "minimize",
            "best_intermediate": pd.Series(
                [_best_intermediate(t, maximize) for t in trials], dtype="float64"
            ),
        },
        columns=list(HISTORY_COLUMNS),
    )
    return frame


def tuning_histories(dataset: str, methods: Iterable[str], root: str | Path = ".") -> pd.DataFrame:
    """Histories of the studies that produced each method's tuned hyperparameters on
    `dataset`, concatenated in the order of `methods`, with a leading `method` column and then
    `HISTORY_COLUMNS`. Paths are `harness.paths`' (relative to `root`, the project root)."""
    root = Path(root)
    parts = []
    for method in methods:
        name = TuningRecord.load(root / best_params_file(dataset, method)).study_name
        history = load_study_history(root / study_storage(dataset, method), name)
        history.insert(0, "method", method)
        parts.append(history)
    if not parts:
        return pd.DataFrame(columns=["method", *HISTORY_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def history_csv(frame: pd.DataFrame) -> str:
    """CSV text (columns `CSV_COLUMNS`, "\\n" line ends) of a `tuning_histories` frame for DVC
    plots: floats with 12 significant digits, NaN as an empty field."""
    missing = [column for column in CSV_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"history frame lacks column(s) {missing}; expected {list(CSV_COLUMNS)}")
    return frame.loc[:, list(CSV_COLUMNS)].to_csv(
        index=False, float_format="%.12g", na_rep="", lineterminator="\n"
    )
