"""Typed, versioned records of what the pipeline computed (every table is a view of these):
`RunResult` (run.py) with its `RunCost` (cost.py), `RobustnessRecord` (robustness.py),
`TuningRecord` and `TrialRecord` (tuning.py); `schema.py` versions them and migrates older files
on load."""

from harness.records.cost import RunCost
from harness.records.robustness import RobustnessRecord
from harness.records.run import RunResult, load_records
from harness.records.tuning import TrialRecord, TuningRecord

__all__ = [
    "RobustnessRecord",
    "RunCost",
    "RunResult",
    "TrialRecord",
    "TuningRecord",
    "load_records",
]
