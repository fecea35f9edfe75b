"""Stage `fetch` (`msabench fetch DATASET`): build a dataset's canonical feature store under
features/<dataset>/ from its declared source (harness/data/sources.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from harness import paths
from harness.config import DatasetConfig, Params
from harness.data.sources import fetch_dataset
from harness.data.spec import DATASET_KINDS
from harness.data.store import read_manifest
from harness.errors import ConfigError

log = logging.getLogger("msabench")


def run(
    params: Params,
    dataset: str,
    source_path: Path | None = None,
    file_format: str | None = None,
    kind: str | None = None,
) -> Path:
    """Build the canonical feature store of `dataset` under features/<dataset>/.

    With `file_format` (CLI `--format`), the files at `source_path` are read in that format
    whether or not the dataset is declared in params.yaml (kind from `kind`, else the
    declaration's, else "mosi"); otherwise the declaration says where the data come from."""
    if file_format is None:
        config = params.dataset(dataset)
    else:
        config = _undeclared(params, dataset, source_path, file_format, kind)
    target = paths.feature_store(dataset)
    fetch_dataset(config, target, source_path=source_path)
    manifest = read_manifest(target)
    sizes = ", ".join(f"{name} {info.n}" for name, info in manifest.splits.items())
    log.info("fetched %s: %s (data hash %s)", dataset, sizes, manifest.data_hash[:12])
    return target


def _undeclared(
    params: Params, dataset: str, source_path: Path | None, file_format: str, kind: str | None
) -> DatasetConfig:
    """The configuration of files read with `--format` (declared or not in params.yaml)."""
    if source_path is None:
        raise ConfigError("--format: needs --path, the file or folder to read")
    declared = params.datasets.get(dataset)
    kind = kind or (declared.kind if declared else "mosi")
    if kind not in DATASET_KINDS:
        raise ConfigError(f"--kind: expected one of {', '.join(DATASET_KINDS)}, got {kind!r}")
    options = {**(declared.options if declared else {}), "format": file_format, "kind": kind}
    return DatasetConfig(dataset, "file", kind, options)
