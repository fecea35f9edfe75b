"""Readers of feature-file formats: each turns a user's files into the store's SplitArrays.

A format is registered under the name used in params.yaml (`datasets.<name>.format`) with the
dataclass of the options it reads from the dataset's section (its defaults live there only;
harness/config refuses any other key at load time), and called as
`FORMATS.get(name)(path, section) -> {"train": SplitArrays, "valid": ..., "test": ...}`, where
`section` is the dataset's params mapping. `write_store` then validates and writes the canonical
feature store. Reader modules keep heavy imports (pandas) inside their functions, so reading
the registry is cheap.
"""

from harness.data.formats import (  # noqa: F401  (each registers itself)
    bclstm,
    label_csv,
    mmsa,
    mult,
    mustard,
    npz,
)
from harness.data.formats.registry import FORMATS, FileFormat, read_options, register_format

__all__ = ["FORMATS", "FileFormat", "read_options", "register_format"]
