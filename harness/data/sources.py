"""Dataset sources: how a declared dataset becomes a canonical feature store.

Each source is registered under the name used in params.yaml (`datasets.<name>.source`):
  * `synthetic`: the embedded generator (harness/data/synthetic.py), options under `synthetic:`.
  * `file`: feature files the user brings under datasets/ (tracked by datasets.dvc), in a
    registered format (`format:`). Built in: `npz`, one file per split holding the store's own
    keys (`<m>` (N, T_m, D_m) float32, `<m>_lengths` (N,) int, `labels` (N,), optional `ids`).
  * `url`: public files, each declared with `{url, sha256, path}` under `files:`, downloaded
    (resumably, checksummed; harness/data/download.py) into datasets/<name>/<path>, then read by
    the registered reader named in `format:`. `msabench fetch NAME --path DIR` downloads nothing
    and takes each file from DIR/<path>, checked against the same sha256.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness.config import DatasetConfig
from harness.data.download import SHA256_PATTERN, download, verify_file
from harness.data.formats import FORMATS
from harness.data.store import write_store
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.errors import ConfigError, DataError
from harness.io_utils import sha256_file
from harness.paths import DATASETS
from harness.registry import Registry

Source = Callable[[DatasetConfig, Path, Path | None], None]
SOURCES: Registry[Source] = Registry("dataset source")


def fetch_dataset(config: DatasetConfig, target: Path, source_path: Path | None = None) -> None:
    """Build `target` (the dataset's feature store) from its declared source."""
    SOURCES.get(config.source)(config, target, source_path)


@SOURCES.register("synthetic")
def _fetch_synthetic(config: DatasetConfig, target: Path, source_path: Path | None) -> None:
    if source_path is not None:
        raise ConfigError(f"--path: dataset '{config.name}' is synthetic and reads no files")
    options = config.options.get("synthetic", {})
    prefix = f"datasets.{config.name}.synthetic"
    if not isinstance(options, Mapping):
        raise ConfigError(f"{prefix}: expected a mapping of generator settings, got {options!r}")
    write_synthetic_store(target, SyntheticConfig.from_mapping(options, prefix), config.name)


@SOURCES.register("file")
def _fetch_file(config: DatasetConfig, target: Path, source_path: Path | None) -> None:
    key = f"datasets.{config.name}"
    fmt = _format_option(config, key)
    path = source_path or resolve_user_path(config.options.get("path"), f"{key}.path")
    if not path.exists():
        raise DataError(
            f"{path}: not found (from {key}.path); put the files under {DATASETS}/ and "
            "`dvc add datasets`, or `dvc pull` them"
        )
    splits = FORMATS.get(fmt)(path, config.options)
    inputs = [
        {"name": str(p.relative_to(path) if path.is_dir() else p.name), "sha256": sha256_file(p)}
        for p in sorted([path] if path.is_file() else path.rglob("*"))
        if p.is_file()
    ]
    source = {"type": "file", "format": fmt, "path": str(path)}
    write_store(target, config.name, config.kind, splits, source, inputs)


def resolve_user_path(value: Any, key: str) -> Path:
    """A path under datasets/ (relative) or absolute."""
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{key}: expected a path under {DATASETS}/ or an absolute path, got {value!r}"
        )
    path = Path(value)
    return path if path.is_absolute() or path.parts[:1] == (DATASETS.name,) else DATASETS / path


@dataclass(frozen=True)
class RemoteFile:
    """One declared file of a `url` dataset: where it comes from, its sha256 and where it goes
    inside the dataset's raw folder (a relative POSIX path, keeping the bundle's layout)."""

    url: str
    sha256: str
    path: str


@SOURCES.register("url")
def _fetch_url(config: DatasetConfig, target: Path, source_path: Path | None) -> None:
    key = f"datasets.{config.name}"
    fmt = _format_option(config, key)
    files = parse_remote_files(config.options.get("files"), f"{key}.files")
    if source_path is None:
        raw_dir = DATASETS / config.name
        for file in files:
            download(file.url, file.sha256, raw_dir / file.path)
    else:
        raw_dir = source_path
        if not raw_dir.is_dir():
            raise DataError(f"{raw_dir}: not a directory (--path); expected the dataset's files")
        for file in files:
            verify_file(raw_dir / file.path, file.sha256)
    splits = FORMATS.get(fmt)(raw_dir, config.options)
    inputs = [{"name": file.path, "sha256": file.sha256} for file in files]
    source = {
        "type": "url",
        "format": fmt,
        "files": [{"url": file.url, "path": file.path} for file in files],
        "local_copy": None if source_path is None else str(source_path),
    }
    write_store(target, config.name, config.kind, splits, source, inputs)


_URL_SCHEME = re.compile(r"^https?://[^/\s]+", re.IGNORECASE)


def parse_remote_files(value: Any, key: str) -> list[RemoteFile]:
    """Validate a `files:` list of {url, sha256, path} mappings; ConfigError names the entry."""
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{key}: expected a non-empty list of {{url, sha256, path}}, got {value!r}"
        )
    files, seen = [], set()
    for i, entry in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != {"url", "sha256", "path"}:
            raise ConfigError(
                f"{where}: expected a mapping with keys url, sha256, path, got {entry!r}"
            )
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


def _format_option(config: DatasetConfig, key: str) -> str:
    fmt = config.options.get("format")
    if fmt not in FORMATS:
        raise ConfigError(f"{key}.format: {FORMATS.unknown_message(fmt)}")
    return fmt
