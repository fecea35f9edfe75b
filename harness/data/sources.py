"""Dataset sources: how a declared dataset becomes a canonical feature store.

Each source is registered under the name used in params.yaml (`datasets.<name>.source`):
  * `synthetic`: the embedded generator (harness/data/synthetic.py), options under `synthetic:`.
  * `file`: feature files the user brings under datasets/ (tracked by datasets.dvc), in a
    registered format (`format:`). Built in: `npz`, one file per split holding the store's own
    keys (`<m>` (N, T_m, D_m) float32, `<m>_lengths` (N,) int, `labels` (N,), optional `ids`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import DatasetConfig
from harness.data.store import SplitArrays, write_store
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.data.types import MODALITIES, SPLITS
from harness.errors import ConfigError, DataError
from harness.io_utils import sha256_file
from harness.paths import DATASETS
from harness.registry import Registry

Source = Callable[[DatasetConfig, Path, Path | None], None]
SOURCES: Registry[Source] = Registry("dataset source")
FORMATS: Registry[Callable[[Path, Mapping[str, Any]], dict[str, SplitArrays]]] = Registry("format")


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
    fmt = config.options.get("format")
    if fmt not in FORMATS:
        raise ConfigError(f"{key}.format: {FORMATS.unknown_message(fmt)}")
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


@FORMATS.register("npz")
def read_npz_splits(directory: Path, options: Mapping[str, Any]) -> dict[str, SplitArrays]:
    """`directory/{train,valid,test}.npz` with the feature store's keys; float64 features and
    integer lengths of any width are accepted and converted."""
    splits = {}
    for split in SPLITS:
        path = directory / f"{split}.npz"
        if not path.is_file():
            raise DataError(
                f"{path}: not found; the npz format expects train.npz, valid.npz, test.npz"
            )
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        splits[split] = _split_from_arrays(arrays, path, split)
    return splits


def _split_from_arrays(arrays: dict[str, np.ndarray], path: Path, split: str) -> SplitArrays:
    modalities = [m for m in MODALITIES if m in arrays]
    if "labels" not in arrays or not modalities:
        raise DataError(f"{path}: expected keys 'labels' and at least one of {list(MODALITIES)}")
    for m in modalities:
        if f"{m}_lengths" not in arrays:
            raise DataError(f"{path}: key '{m}' present but '{m}_lengths' missing")
    labels = np.asarray(arrays["labels"], dtype=np.float32).reshape(-1)
    ids = arrays.get("ids")
    if ids is None:
        ids = np.array([f"{split}_{i:06d}" for i in range(labels.shape[0])])
    return SplitArrays(
        features={m: np.asarray(arrays[m], dtype=np.float32) for m in modalities},
        lengths={m: np.asarray(arrays[f"{m}_lengths"]).astype(np.int64) for m in modalities},
        labels=labels,
        ids=np.asarray(ids).astype(str),
    )
