from __future__ import annotations

import os

import numpy as np
import pytest

from harness.data.loading import load_split
from harness.data.mmap_npz import open_npz
from harness.data.store import write_npz
from harness.errors import DataError

ARRAYS = {
    "x": np.arange(60, dtype=np.float32).reshape(5, 4, 3),
    "n": np.arange(5, dtype=np.int64),
    "ids": np.array(["a", "bb", "ccc", "d", "e"]),
    "empty": np.zeros((0, 3), dtype=np.float32),
}


def test_store_npz_members_are_memory_mapped_and_equal(tmp_path) -> None:
    write_npz(tmp_path / "s.npz", ARRAYS)
    opened = open_npz(tmp_path / "s.npz")
    assert isinstance(opened["x"], np.memmap)
    for key, array in ARRAYS.items():
        assert opened[key].dtype == array.dtype and np.array_equal(opened[key], array)
    opened["x"][0, 0, 0] = -1.0  # copy-on-write: the file is never changed
    assert open_npz(tmp_path / "s.npz")["x"][0, 0, 0] == 0.0


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_numpy_written_npz_files_are_read_too(tmp_path, save) -> None:
    save(tmp_path / "n.npz", **ARRAYS)
    opened = open_npz(tmp_path / "n.npz")
    assert all(np.array_equal(opened[k], v) for k, v in ARRAYS.items())


def test_corrupt_file_is_a_one_line_error(tmp_path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"bad.npz: unreadable .npz"):
        open_npz(tmp_path / "bad.npz")


def _mapped_ranges(path) -> list[tuple[int, int]]:
    ranges = []
    for line in open("/proc/self/maps"):
        fields = line.split()
        if len(fields) >= 6 and fields[5] == str(path):
            low, high = (int(v, 16) for v in fields[0].split("-"))
            ranges.append((low, high))
    return ranges


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_loaded_split_features_live_in_the_mapped_file(tiny_store) -> None:
    split = load_split(tiny_store, "train")
    ranges = _mapped_ranges((tiny_store / "train.npz").resolve())
    for m, tensor in split.features.items():
        pointer = tensor.data_ptr()
        assert any(low <= pointer < high for low, high in ranges), m
