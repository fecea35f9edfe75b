"""Checks methods/reference/mmsa_defaults.csv against an installed MMSA: every `cfg:` row's
value for mosi, mosei and sims must equal MMSA's `config/config_regression.json` (the method's
`datasetParams[<dataset>]` over its `commonParams`). `code:` rows name what MMSA's code fixes;
they are read, not checked, here.

Runs where MMSA is installed (its own virtual environment, bench/bench_mmsa_reference.py):
    /work/mmsa-venv/bin/python bench/check_mmsa_defaults.py [--config PATH]
Prints one line per row that disagrees and a summary; exit status 1 when any row disagrees. A
method the config does not have is named and skipped (PyPI's 2.2.1 lacks ALMT, CENET and TETFN:
check them with MMSA master's config, /work/mmsa-master-venv/bin/python).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # MMSA's environment does not install msabench
from methods.reference import KINDS, TABLE, mmsa_defaults  # noqa: E402

KEY = re.compile(r"^(?P<name>\w+)(?:\[(?P<index>\d+)\])?$")


def _value(config: dict, method: str, dataset: str, key: str):
    """MMSA's value of `key` ("name" or "name[i]") for the method on the dataset."""
    section = config[method]
    merged = {**section["commonParams"], **section["datasetParams"][dataset]}
    match = KEY.match(key)
    if match is None or match["name"] not in merged:
        raise KeyError(f"{method}: no config key {key!r}")
    value = merged[match["name"]]
    return value[int(match["index"])] if match["index"] is not None else value


def _same(ours, theirs) -> bool:
    """The table's typed value against MMSA's (numbers compared as floats)."""
    if isinstance(theirs, (int, float)) and not isinstance(theirs, bool):
        return not isinstance(ours, bool) and float(ours) == float(theirs)
    return ours == theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="config_regression.json (default: MMSA's)")
    args = parser.parse_args()
    path = args.config
    if path is None:
        import MMSA

        path = Path(MMSA.__file__).parent / "config" / "config_regression.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    checked = wrong = 0
    absent = sorted({row.method for row in mmsa_defaults()} - set(config))
    for row in mmsa_defaults():
        if row.config_key is None or row.method in absent:
            continue
        for dataset in KINDS:
            theirs = _value(config, row.method, dataset, row.config_key)
            checked += 1
            if not _same(row.values[dataset], theirs):
                wrong += 1
                print(
                    f"{row.method}.{row.field} ({dataset}): table {row.values[dataset]}, "
                    f"MMSA {row.config_key} = {theirs}"
                )
    if absent:
        print(f"not in {path} (skipped): {', '.join(absent)}")
    print(f"{checked} values of {path} checked, {wrong} differ from {TABLE.name}")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
