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

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.data.declaration import SOURCE_KEYS, DatasetConfig, parse_remote_files
from harness.data.download import download, verify_file
from harness.data.formats import FORMATS
from harness.data.store import write_store
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.data.text_encoding import splits_token_info
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
    synthetic = SyntheticConfig.from_mapping(options, prefix)
    write_synthetic_store(target, synthetic, config.name, standardize=config.standardize)


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
    _write_read_store(config, target, splits, source, inputs, key)


def resolve_user_path(value: Any, key: str) -> Path:
    """A path under datasets/ (relative) or absolute."""
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{key}: expected a path under {DATASETS}/ or an absolute path, got {value!r}"
        )
    path = Path(value)
    return path if path.is_absolute() or path.parts[:1] == (DATASETS.name,) else DATASETS / path


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
    _write_read_store(config, target, splits, source, inputs, key)


def _write_read_store(
    config: DatasetConfig, target: Path, splits, source, inputs, key: str
) -> None:
    """Write the store of a format reader's splits, with the dataset's token model and
    `standardize` setting."""
    tokens = splits_token_info(splits, config.options, key)
    write_store(
        target, config.name, config.kind, splits, source, inputs, tokens=tokens,
        standardize=config.standardize,
    )  # fmt: skip


def _format_option(config: DatasetConfig, key: str) -> str:
    fmt = config.options.get("format")
    if fmt not in FORMATS:
        raise ConfigError(f"{key}.format: {FORMATS.unknown_message(fmt)}")
    return fmt


if set(SOURCES) != set(SOURCE_KEYS):  # the schema (harness/data/declaration.py) names them too
    raise RuntimeError(f"sources {SOURCES.names()} differ from the schema's {sorted(SOURCE_KEYS)}")
