"""Editing a params.yaml mapping in tests: dotted overrides written with `__`."""

from __future__ import annotations

from typing import Any


def set_nested(raw: dict, changes: dict[str, Any]) -> dict:
    """`raw` with each `a__b__c=value` of `changes` set at raw["a"]["b"]["c"] (in place);
    returns `raw`."""
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return raw
