"""The `npz` format: `<dir>/{train,valid,test}.npz` holding the feature store's own keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.formats.registry import register_format
from harness.data.spec import MODALITIES, SPLITS
from harness.data.split_arrays import SplitArrays
from harness.errors import DataError


@register_format("npz")
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
