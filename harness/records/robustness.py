"""`RobustnessRecord`: one trained model under one missing-modality condition at one rate, and
the records.json file that holds a dataset's records."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import DataError
from harness.io_utils import write_json_atomic
from harness.records.schema import migrate, stamp

# 1: a bare JSON list of records (before 2026-12); 2: {"schema_version": 2, "records": [...]}
SCHEMA_VERSION = 2
MIGRATIONS = {1: lambda payload: payload}


@dataclass(frozen=True)
class RobustnessRecord:
    """One trained model (method x dataset x seed) under one condition at one missing rate."""

    dataset: str
    method: str
    seed: int
    condition: str  # "intra" or "drop-<modalities>" (harness.evaluation.robustness.CONDITIONS)
    rate: float
    metrics: dict[str, float]  # every metric of the dataset's kind, on the test split


def save_records(path: str | Path, records: Iterable[RobustnessRecord]) -> None:
    write_json_atomic(path, stamp({"records": [asdict(r) for r in records]}, SCHEMA_VERSION))


def load_records(path: str | Path) -> list[RobustnessRecord]:
    """The records of a records.json file of any schema version up to SCHEMA_VERSION."""
    try:
        payload: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(payload, list):  # version 1: the list itself
            payload = {"records": payload}
        body = migrate(payload, SCHEMA_VERSION, MIGRATIONS, str(path), "robustness record file")
        return [RobustnessRecord(**entry) for entry in body["records"]]
    except (OSError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise DataError(f"{path}: not a valid robustness record file ({exc})") from None
