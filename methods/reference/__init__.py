"""What the reference implementation sets, field by field: MMSA's defaults for the baselines it
has (PyPI `mmsa` 2.2.1, thuiar/MMSA), in msabench's hyperparameter names, per dataset kind.

`mmsa_defaults.csv` is the one table: a row per (method, field) with the reference value for
the `mosi`, `mosei` and `sims` kinds and where it comes from:
  * `cfg:<key>`: MMSA's `config/config_regression.json` for the method (`datasetParams` of mosi,
    mosei or sims, then `commonParams`); `key[i]` is the i-th entry of a list;
  * `code:<file> <what>`: fixed by MMSA's code (a trainer without weight decay, a layer that
    ignores its configured dropout, ...), with the file under MMSA/ that does it.
tests/test_reference_defaults.py checks every method's resolved defaults against it;
bench/check_mmsa_defaults.py checks its `cfg:` rows against an installed MMSA.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.data.spec import REGRESSION_KINDS as KINDS  # a column per MMSA kind

TABLE = Path(__file__).with_name("mmsa_defaults.csv")


@dataclass(frozen=True)
class ReferenceDefault:
    """One row: the reference value of `field` of `method` per dataset kind."""

    method: str
    field: str
    values: dict[str, Any]  # kind -> value (int, float, bool or str)
    source: str  # "cfg:<key>" or "code:<file> <what>"

    @property
    def config_key(self) -> str | None:
        """The MMSA config key of a `cfg:` row (e.g. "hidden_dims[1]"), else None."""
        return self.source[len("cfg:") :] if self.source.startswith("cfg:") else None


def mmsa_defaults(path: Path = TABLE) -> list[ReferenceDefault]:
    """Every row of the table, values typed as YAML reads them (0.001, 16, true, linear)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        ReferenceDefault(
            row["method"],
            row["field"],
            {kind: yaml.safe_load(row[kind]) for kind in KINDS},
            row["source"],
        )
        for row in rows
    ]
