"""`RunResult`: one trained model (method x dataset x seed) evaluated once on the test split.
Every table is computed from these records; per-seed values are kept."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DataError
from harness.io_utils import write_json_atomic
from harness.records.cost import RunCost
from harness.records.schema import migrate, stamp

# 1: unversioned (before 2026-12), `hardware` possibly absent; 2: `schema_version` written;
# 3: `text_model` (the dataset's text model and how the method read it); 4: `cost`
SCHEMA_VERSION = 4


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "hardware": payload.get("hardware", {}), "extra": payload.get("extra", {})}


def _v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "text_model": {}}


def _v3_to_v4(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "cost": None}  # not measured before version 4


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


@dataclass(frozen=True)
class RunResult:
    """One trained model (method x dataset x seed), evaluated once on the test split."""

    method: str
    dataset: str
    seed: int
    split: str  # the split the metrics are computed on ("test")
    metrics: dict[str, float]  # metric name -> value on `split`
    valid_metrics: dict[str, float]  # metrics on the validation split at the selected epoch
    hparams: dict[str, Any]  # resolved hyperparameters
    config_hash: str  # sha256 of the resolved training configuration
    data_hash: str  # the feature store's data hash
    git_commit: str
    package_versions: dict[str, str]
    wall_time_s: float
    best_epoch: int
    epochs_run: int
    device: str
    # where the numbers were computed (`provenance.hardware_facts`): cpu, cpu_capability, os,
    # and gpu/cuda/cudnn on CUDA; empty in records written before it was kept
    hardware: dict[str, str] = field(default_factory=dict)
    # a dataset with token ids: its text model (name, revision, sha256 of the weights) and how
    # the method read the text (`encoder`: fine-tuned, frozen or features); empty otherwise
    text_model: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # what the run cost (parameters, memory, seconds, device; `RunCost`): not deterministic, so
    # never part of a reproducibility comparison; None in records written before it was measured
    cost: RunCost | None = None

    def __post_init__(self) -> None:
        if isinstance(self.cost, dict):  # RunResult(**asdict(record)) and records read back
            object.__setattr__(self, "cost", RunCost.from_dict(self.cost))

    def to_dict(self) -> dict[str, Any]:
        """The record as written: its fields and `schema_version`."""
        return stamp(asdict(self), SCHEMA_VERSION)

    @classmethod
    def from_dict(cls, payload: Any, where: str = "run record") -> RunResult:
        """A record of any schema version up to SCHEMA_VERSION (older ones are migrated)."""
        fields = migrate(payload, SCHEMA_VERSION, MIGRATIONS, where, "run record")
        if fields.get("cost") is not None:
            fields["cost"] = RunCost.from_dict(fields["cost"], where)
        return cls(**fields)

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_dict(payload, where=str(path))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise DataError(f"{path}: not a valid run record ({exc})") from exc


def load_records(directory: str | Path) -> list[RunResult]:
    """All run records (`*.json` named seed-*.json) below `directory`, sorted by
    (dataset, method, seed). Hidden folders are skipped: they hold what an interrupted atomic
    write left behind (`.<name>.*.tmp`), never a finished output."""
    root = Path(directory)
    records = [
        RunResult.load(p)
        for p in sorted(root.rglob("seed-*.json"))
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(records, key=lambda r: (r.dataset, r.method, r.seed))
