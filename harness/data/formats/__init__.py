"""Readers of feature-file formats: each turns a user's files into the store's SplitArrays.

A reader is registered under the name used in params.yaml (`datasets.<name>.format`) and called as
`reader(path, options) -> {"train": SplitArrays, "valid": ..., "test": ...}`; `options` is the
dataset's params section. `write_store` then validates and writes the canonical feature store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.data.split_arrays import SplitArrays
from harness.registry import Registry

Reader = Callable[[Path, Mapping[str, Any]], dict[str, SplitArrays]]
FORMATS: Registry[Reader] = Registry("format")

from harness.data.formats import bclstm, mmsa, mult, npz  # noqa: E402,F401  (registers readers)
