"""`TuningRecord`: the outcome of one tuning study (results/tuning/<dataset>/<method>/
best_params.json, the train stage's input): the best trial's hyperparameters and value, how
the search was set up, and one `TrialRecord` per trial."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DataError
from harness.io_utils import write_json_atomic
from harness.records.schema import migrate, stamp

# 1: unversioned, no per-trial entries (before 2026-12); 2: `schema_version` and `trials`
SCHEMA_VERSION = 2


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "trials": []}


MIGRATIONS = {1: _v1_to_v2}


@dataclass(frozen=True)
class TrialRecord:
    """One trial: its number, final state (COMPLETE, PRUNED, FAIL), objective value (None
    unless complete) and sampled hyperparameters."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]


@dataclass(frozen=True)
class TuningRecord:
    """One finished study of one method on one dataset."""

    dataset: str
    method: str
    study_name: str
    select_metric: str  # the validation metric optimised (direction from harness.metrics)
    best_value: float
    params: dict[str, Any]  # the best trial's sampled hyperparameters
    n_complete: int
    n_pruned: int
    fixed_hparams: dict[str, Any]  # methods.<m>.hparams: not tuned
    search_space: dict[str, Any]  # the tuned dimensions (methods.search_space.describe)
    trials: list[TrialRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return stamp(asdict(self), SCHEMA_VERSION)

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, missing: str = "run the tune stage") -> TuningRecord:
        """The record at `path` (any schema version); DataError naming the file (and, when it
        is missing, what to do: `missing` + " first") when it is missing or malformed."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: not found; {missing} first") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
        fields = migrate(payload, SCHEMA_VERSION, MIGRATIONS, str(path), "tuning record")
        try:
            trials = [TrialRecord(**t) for t in fields.pop("trials")]
            record = cls(**fields, trials=trials)
        except TypeError as exc:
            raise DataError(f"{path}: not a valid tuning record ({exc})") from None
        if not isinstance(record.params, dict) or not isinstance(record.study_name, str):
            raise DataError(f"{path}: expected a 'params' mapping and a 'study_name' string")
        return record
