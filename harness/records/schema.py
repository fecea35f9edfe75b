"""Schema versions of the records msabench writes, and migration of older ones on load.

Every record file carries `schema_version` (mteb's TaskResult does the same): a loader reads
any version up to the current one, upgrading it step by step with the record's migrations, and
refuses a newer one with a one-line error (written by a newer msabench) instead of guessing.
A file without the key is version 1: what msabench wrote before records were versioned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import DataError

VERSION_KEY = "schema_version"

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def migrate(
    payload: Any,
    current: int,
    migrations: Mapping[int, Migration],
    where: str,
    what: str,
) -> dict[str, Any]:
    """`payload` (a decoded record) at version `current`, without the version key.

    `migrations[v]` turns a version-v payload into version v + 1; `where` (a path) and `what`
    (the record kind) name the file in errors."""
    if not isinstance(payload, Mapping):
        raise DataError(f"{where}: not a {what} (expected a JSON object)")
    record = dict(payload)
    version = record.pop(VERSION_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DataError(
            f"{where}: {VERSION_KEY} {version!r} is not a version (expected 1-{current})"
        )
    if version > current:
        raise DataError(
            f"{where}: {what} schema version {version} is newer than this msabench reads "
            f"({current}); upgrade msabench or re-run the stage"
        )
    for step in range(version, current):
        record = migrations[step](record)
    return record


def stamp(payload: Mapping[str, Any], current: int) -> dict[str, Any]:
    """`payload` with the current schema version (for writing)."""
    return {VERSION_KEY: current, **payload}
