"""Every baseline's defaults per dataset kind are MMSA's, read from the one table
(methods/reference/mmsa_defaults.csv)."""

from __future__ import annotations

import dataclasses

import pytest

from methods import METHODS
from methods.reference import KINDS, mmsa_defaults

ROWS = mmsa_defaults()
BASELINES = sorted({row.method for row in ROWS})


def test_the_table_covers_the_eleven_baselines() -> None:
    assert BASELINES == sorted(
        "almt cenet lf_dnn lmf misa mmim mult self_mm tetfn tfn tfr_net".split()
    )
    keys = [(row.method, row.field) for row in ROWS]
    assert len(keys) == len(set(keys)), "a (method, field) row appears twice"
    assert all(row.source.startswith(("cfg:", "code:")) for row in ROWS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", BASELINES)
def test_defaults_are_the_references(method, kind) -> None:
    cls = METHODS.get(method)
    resolved = dataclasses.asdict(cls.resolve_hparams(kind))
    wrong = {
        row.field: (resolved.get(row.field, "<no such field>"), row.values[kind], row.source)
        for row in ROWS
        if row.method == method and resolved.get(row.field, object()) != row.values[kind]
    }
    assert not wrong, f"{method} ({kind}): field: (msabench, MMSA, source): {wrong}"


def test_the_check_can_fail() -> None:
    """A changed default is caught: the comparison is not vacuous."""
    cls = METHODS.get("mult")
    resolved = dataclasses.asdict(cls.resolve_hparams("mosi", {"grad_accumulation": 1}))
    row = next(r for r in ROWS if (r.method, r.field) == ("mult", "grad_accumulation"))
    assert resolved["grad_accumulation"] != row.values["mosi"]
