"""The `file` source with the built-in `npz` format (a user's own arrays), and source errors."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import DatasetConfig
from harness.data.loading import load_dataset
from harness.data.sources import fetch_dataset
from harness.errors import ConfigError, DataError


def _write_npz_splits(directory, rng, n=(12, 6, 6)) -> None:
    directory.mkdir(parents=True)
    for split, count in zip(("train", "valid", "test"), n, strict=True):
        arrays = {"labels": rng.uniform(-3, 3, count)}
        for m, (length, dim) in {"text": (5, 4), "audio": (7, 3), "vision": (6, 2)}.items():
            lengths = rng.integers(1, length + 1, count)
            x = rng.standard_normal((count, length, dim))  # float64: converted on the way in
            x[np.arange(length)[None, :] >= lengths[:, None]] = 0.0
            arrays[m], arrays[f"{m}_lengths"] = x, lengths
        np.savez(directory / f"{split}.npz", **arrays)


def test_user_npz_files_become_a_store(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write_npz_splits(tmp_path / "datasets" / "mydata", np.random.default_rng(0))
    config = DatasetConfig("mydata", "file", "mosi", {"format": "npz", "path": "mydata"})
    fetch_dataset(config, tmp_path / "features" / "mydata")
    spec, splits = load_dataset(tmp_path / "features" / "mydata")
    assert spec.feature_dims == {"text": 4, "audio": 3, "vision": 2}
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [12, 6, 6]
    assert splits["test"].ids[0] == "test_000000"


def test_missing_files_name_the_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = DatasetConfig("mydata", "file", "mosi", {"format": "npz", "path": "nowhere"})
    with pytest.raises(DataError, match=r"datasets/nowhere: not found .*dvc add datasets"):
        fetch_dataset(config, tmp_path / "features" / "mydata")
    assert not (tmp_path / "features").exists()


def test_unknown_format_lists_registered_formats(tmp_path) -> None:
    config = DatasetConfig("mydata", "file", "mosi", {"format": "hdf5", "path": "x"})
    with pytest.raises(ConfigError, match=r"datasets.mydata.format: unknown format 'hdf5'.*npz"):
        fetch_dataset(config, tmp_path / "store")


def test_dirty_padding_is_refused_before_anything_is_written(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "datasets" / "mydata"
    _write_npz_splits(directory, np.random.default_rng(1))
    with np.load(directory / "valid.npz") as archive:
        arrays = dict(archive)
    arrays["audio_lengths"][0], arrays["audio"][0] = 1, 1.0  # values beyond length 1
    np.savez(directory / "valid.npz", **arrays)
    config = DatasetConfig("mydata", "file", "mosi", {"format": "npz", "path": "mydata"})
    with pytest.raises(DataError, match="split 'valid': key 'audio' has nonzero padding at row 0"):
        fetch_dataset(config, tmp_path / "features" / "mydata")
    assert not (tmp_path / "features" / "mydata").exists()
