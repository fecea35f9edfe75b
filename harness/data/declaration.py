"""`datasets.<name>` sections of params.yaml: where a dataset's features come from, checked key
by key (harness/config reads the whole file and hands each dataset section to `parse_dataset`).

Every dataset has `source` and `kind`; the other keys a section may hold depend on the source
(`SOURCE_KEYS`) and, for file-based sources, on the format: each registered format declares the
dataclass of its options (harness/data/formats). Any other key is an error naming the full key
path, what is allowed and the closest allowed key. The synthetic generator's settings are checked
by `SyntheticConfig` (harness/data/synthetic.py), a url dataset's `files` here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from harness.data.spec import DATASET_KINDS
from harness.errors import ConfigError
from harness.schema import check_keys

SHA256_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")
_URL_SCHEME = re.compile(r"^https?://[^/\s]+", re.IGNORECASE)

# the keys each source reads besides `source` and `kind` (harness/data/sources.py implements
# them and checks that the two name the same sources)
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "synthetic": ("synthetic",),
    "file": ("format", "path"),
    "url": ("format", "files"),
}


# keys every dataset may set, whatever its source: how the loader prepares the stored features
# (`standardize`: z-score every feature with train statistics over real steps, msabench's
# default; false feeds the stored values as they are, MMSA's treatment), and `group`: datasets
# that are the folds of one cross-validation (MUStARD's five) share a group name, and the
# compare stage also reports the group as one table (mean over folds and seeds)
COMMON_KEYS: tuple[str, ...] = ("standardize", "group")
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RemoteFile:
    """One declared file of a `url` dataset: where it comes from, its sha256 and where it goes
    inside the dataset's raw folder (a relative POSIX path, keeping the bundle's layout)."""

    url: str
    sha256: str
    path: str


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    source: str  # a key of SOURCE_KEYS: "synthetic", "file", "url"
    kind: str  # "mosi", "mosei" (MOSI's metrics, MOSEI's method defaults), "sims", "binary"
    options: Mapping[str, Any] = field(default_factory=dict)  # the whole section, checked

    @property
    def standardize(self) -> bool:
        """Whether loaders z-score this dataset's features (`datasets.<name>.standardize`)."""
        return bool(self.options.get("standardize", True))

    @property
    def group(self) -> str | None:
        """The cross-validation group this dataset is a fold of (`datasets.<name>.group`)."""
        return self.options.get("group")


def parse_dataset(name: str, raw: Any, source: str) -> DatasetConfig:
    """The section `datasets.<name>` checked: its source and kind, the keys the source and its
    format allow, the format's options, a synthetic dataset's generator settings and a url
    dataset's files. ConfigError (one line, the full key path) for anything else."""
    key = f"datasets.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: {key}: expected a mapping, got {raw!r}")
    if "source" not in raw:  # a misspelt `source` is named as such; else it is missing
        check_keys(raw, ["source", "kind", *{k for keys in SOURCE_KEYS.values() for k in keys}],
                   key, source)  # fmt: skip
        raise ConfigError(f"{source}: {key}.source: missing (required key)")
    origin = raw["source"]
    if origin not in SOURCE_KEYS:
        expected = f"one of {', '.join(SOURCE_KEYS)}"
        raise ConfigError(f"{source}: {key}.source: expected {expected}, got {origin!r}")
    allowed = ["source", "kind", *COMMON_KEYS, *SOURCE_KEYS[origin]]
    if "format" in allowed:
        allowed += _format_options(raw, key, source)
    check_keys(raw, allowed, key, source)
    kind = raw.get("kind")
    if kind not in DATASET_KINDS:
        expected = f"one of {', '.join(DATASET_KINDS)}"
        raise ConfigError(f"{source}: {key}.kind: expected {expected}, got {kind!r}")
    if not isinstance(raw.get("standardize", True), bool):
        got = raw.get("standardize")
        raise ConfigError(f"{source}: {key}.standardize: expected true or false, got {got!r}")
    group = raw.get("group")
    if group is not None and (not isinstance(group, str) or not GROUP_NAME.match(group)):
        raise ConfigError(
            f"{source}: {key}.group: expected a name (letters, digits, _ . -), got {group!r}"
        )
    if origin == "synthetic":
        _check_synthetic(raw.get("synthetic", {}), f"{key}.synthetic", source)
    elif origin == "url":
        parse_remote_files(raw.get("files"), f"{key}.files", source)
    elif not isinstance(raw.get("path"), str) or not raw.get("path"):
        raise ConfigError(
            f"{source}: {key}.path: expected a path under datasets/ or an absolute path, "
            f"got {raw.get('path')!r}"
        )
    return DatasetConfig(name, origin, kind, dict(raw))


def _format_options(raw: Mapping[str, Any], key: str, source: str) -> list[str]:
    """The option names of the section's format, after checking the format and the options."""
    from harness.data.formats import FORMATS, read_options

    fmt = raw.get("format")
    if fmt not in FORMATS:
        raise ConfigError(f"{source}: {key}.format: {FORMATS.unknown_message(fmt)}")
    reader = FORMATS.get(fmt)
    try:
        read_options(reader.options, raw, key)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return reader.option_names()


def _check_synthetic(options: Any, key: str, source: str) -> None:
    from harness.data.synthetic import SyntheticConfig

    try:
        SyntheticConfig.from_mapping(options, key)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def parse_remote_files(value: Any, key: str, source: str = "") -> list[RemoteFile]:
    """Validate a `files:` list of {url, sha256, path} mappings; ConfigError names the entry."""
    prefix = f"{source}: " if source else ""
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{prefix}{key}: expected a non-empty list of {{url, sha256, path}}, got {value!r}"
        )
    files, seen = [], set()
    for i, entry in enumerate(value):
        where = f"{prefix}{key}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping with keys url, sha256, path, got {entry!r}"
            )
        check_keys(entry, ["path", "sha256", "url"], f"{key}[{i}]", source)
        for needed in ("url", "sha256", "path"):
            if needed not in entry:
                raise ConfigError(f"{where}.{needed}: missing (required key)")
        url, sha256, path = entry["url"], entry["sha256"], entry["path"]
        if not isinstance(url, str) or not _URL_SCHEME.match(url):
            raise ConfigError(f"{where}.url: expected an http(s):// URL, got {url!r}")
        if not isinstance(sha256, str) or not SHA256_PATTERN.match(sha256):
            raise ConfigError(f"{where}.sha256: expected 64 hex characters, got {sha256!r}")
        parts = PurePosixPath(path).parts if isinstance(path, str) else ()
        if not parts or path.startswith("/") or ".." in parts or "\\" in path:
            raise ConfigError(
                f"{where}.path: expected a relative path inside the dataset, got {path!r}"
            )
        if path in seen:
            raise ConfigError(f"{where}.path: {path!r} declared twice; expected distinct paths")
        seen.add(path)
        files.append(RemoteFile(url, sha256.lower(), str(PurePosixPath(path))))
    return files
