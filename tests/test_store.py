"""The feature store: round trip, stable hashes, atomic writes, one-line errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import harness.data.store as store
from harness.data.loading import read_split_arrays
from harness.data.split_arrays import SplitArrays
from harness.data.store import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    read_extras,
    read_manifest,
    verify_store,
    write_store,
)
from harness.data.types import MODALITIES, SPLITS, DataSpec
from harness.errors import DataError
from harness.io_utils import sha256_file

MAX_LENGTHS = {"text": 5, "audio": 7, "vision": 6}
DIMS = {"text": 4, "audio": 3, "vision": 2}
SIZES = {"train": 8, "valid": 3, "test": 4}


def make_split(split: str, seed: int = 0) -> SplitArrays:
    """Random arrays obeying the store's rules (zeros past each length)."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    n = SIZES[split]
    features, lengths = {}, {}
    for m in MODALITIES:
        lengths[m] = rng.integers(1, MAX_LENGTHS[m], size=n, endpoint=True).astype(np.int64)
        x = rng.standard_normal((n, MAX_LENGTHS[m], DIMS[m])).astype(np.float32)
        x[np.arange(MAX_LENGTHS[m])[None, :] >= lengths[m][:, None]] = 0
        features[m] = x
    labels = rng.uniform(-3, 3, size=n).astype(np.float32)
    ids = np.array([f"{split}_{i}" for i in range(n)])
    return SplitArrays(features, lengths, labels, ids)


def make_splits(seed: int = 0) -> dict[str, SplitArrays]:
    return {split: make_split(split, seed) for split in SPLITS}


def write(directory, splits=None, extras=None):
    return write_store(
        directory,
        dataset="toy",
        kind="mosi",
        splits=splits or make_splits(),
        source={"type": "test", "config": {"a": (1, 2)}},
        inputs=[{"name": "config", "sha256": "0" * 64}],
        extras=extras,
    )


def test_round_trip_and_manifest_fields(tmp_path):
    splits = make_splits()
    extras = {"latents": {"train/shared": np.arange(6.0).reshape(3, 2)}}
    manifest = write(tmp_path / "toy", splits, extras)
    assert read_manifest(tmp_path / "toy") == manifest
    assert manifest.format_version == FORMAT_VERSION
    assert (manifest.dataset, manifest.kind, manifest.label_range) == ("toy", "mosi", (-3.0, 3.0))
    assert manifest.modalities == MODALITIES
    assert manifest.feature_dims == DIMS and manifest.max_lengths == MAX_LENGTHS
    assert manifest.source == {"type": "test", "config": {"a": [1, 2]}}
    assert manifest.extras["latents"]["file"] == "latents.npz"
    for split in SPLITS:
        entry = manifest.splits[split]
        assert entry.n == SIZES[split] and entry.file == f"{split}.npz"
        assert entry.sha256 == sha256_file(tmp_path / "toy" / entry.file)
        assert entry.length_stats["audio"]["max"] == int(splits[split].lengths["audio"].max())
        assert entry.label_stats["mean"] == pytest.approx(
            float(splits[split].labels.mean()), abs=1e-6
        )
        loaded = read_split_arrays(tmp_path / "toy", split)
        for m in MODALITIES:
            np.testing.assert_array_equal(loaded.features[m], splits[split].features[m])
            np.testing.assert_array_equal(loaded.lengths[m], splits[split].lengths[m])
        np.testing.assert_array_equal(loaded.labels, splits[split].labels)
        np.testing.assert_array_equal(loaded.ids, splits[split].ids)
    np.testing.assert_array_equal(
        read_extras(tmp_path / "toy", "latents")["train/shared"], extras["latents"]["train/shared"]
    )
    assert manifest.data_spec() == DataSpec("mosi", DIMS, MAX_LENGTHS, (-3.0, 3.0), MODALITIES)
    manifest_json = json.loads((tmp_path / "toy" / MANIFEST_NAME).read_text())
    assert manifest_json["data_hash"] == manifest.data_hash


def test_data_hash_stable_across_rewrites_and_sensitive_to_data(tmp_path):
    first = write(tmp_path / "a").data_hash
    assert write(tmp_path / "b").data_hash == first
    assert write(tmp_path / "a").data_hash == first  # rewriting in place
    assert (tmp_path / "a" / "train.npz").read_bytes() == (
        tmp_path / "b" / "train.npz"
    ).read_bytes()
    splits = make_splits()
    changed = replace(splits["test"], labels=splits["test"].labels.copy())
    changed.labels[0] += 0.5
    assert write(tmp_path / "c", {**splits, "test": changed}).data_hash != first
    with_extra = write(tmp_path / "d", extras={"more": {"x": np.zeros(2)}}).data_hash
    assert with_extra != first


def test_verify_store_detects_tampering(tmp_path):
    write(tmp_path / "toy")
    verify_store(tmp_path / "toy")
    with open(tmp_path / "toy" / "valid.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(DataError, match="valid.npz: sha256"):
        verify_store(tmp_path / "toy")
    (tmp_path / "toy" / "test.npz").unlink()
    with pytest.raises(DataError, match="missing"):
        verify_store(tmp_path / "toy")


def _fail_on_second_file(monkeypatch):
    real = store.write_npz
    calls = []

    def flaky(path, arrays):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, arrays)

    monkeypatch.setattr(store, "write_npz", flaky)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    _fail_on_second_file(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path / "toy")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_existing_store(tmp_path, monkeypatch):
    original = write(tmp_path / "toy")
    _fail_on_second_file(monkeypatch)
    with pytest.raises(OSError):
        write(tmp_path / "toy", make_splits(seed=1))
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]
    assert verify_store(tmp_path / "toy") == original


def _bad(split: str, **changes) -> dict[str, SplitArrays]:
    splits = make_splits()
    return {**splits, split: replace(splits[split], **changes)}


def _with_feature(split: str, modality: str, x: np.ndarray) -> dict[str, SplitArrays]:
    base = make_split(split)
    return _bad(split, features={**base.features, modality: x})


def _with_lengths(split: str, modality: str, lengths: np.ndarray) -> dict[str, SplitArrays]:
    base = make_split(split)
    return _bad(split, lengths={**base.lengths, modality: lengths})


def _nan_audio() -> np.ndarray:
    x = make_split("valid").features["audio"].copy()
    x[1, 0, 0] = np.nan
    return x


def _zero_length() -> np.ndarray:
    lengths = make_split("train").lengths["vision"].copy()
    lengths[2] = 0
    return lengths


def _dirty_padding() -> tuple[np.ndarray, np.ndarray]:
    base = make_split("test")
    x, lengths = base.features["text"].copy(), base.lengths["text"].copy()
    lengths[0] = 1
    x[0, 1:] = 0
    x[0, MAX_LENGTHS["text"] - 1, 0] = 1.0
    return x, lengths


def _dirty_padding_splits() -> dict[str, SplitArrays]:
    x, lengths = _dirty_padding()
    base = make_split("test")
    return _bad(
        "test", features={**base.features, "text": x}, lengths={**base.lengths, "text": lengths}
    )


@pytest.mark.parametrize(
    ("splits", "fragments"),
    [
        (
            lambda: _with_feature("train", "audio", np.zeros((8, 7), np.float32)),
            ["'train'", "'audio'", "(8, 7)"],
        ),
        (
            lambda: _with_feature(
                "train", "text", make_split("train").features["text"].astype(np.float64)
            ),
            ["'text'", "float64"],
        ),
        (
            lambda: _with_feature("valid", "audio", _nan_audio()),
            ["'valid'", "'audio'", "non-finite", "row 1"],
        ),
        (
            lambda: _with_lengths("train", "vision", _zero_length()),
            ["'vision_lengths'", "value 0", "row 2", "[1, 6]"],
        ),
        (lambda: _bad("test", labels=np.full(4, 3.5, np.float32)), ["'test'", "'labels'", "3.5"]),
        (lambda: _bad("valid", ids=np.array(["a", "a", "b"])), ["'valid'", "'ids'", "duplicate"]),
        (lambda: _bad("valid", ids=np.array(["train_0", "x", "y"])), ["'ids'", "across splits"]),
        (_dirty_padding_splits, ["'test'", "'text'", "padding", "row 0"]),
        (
            lambda: _with_feature("valid", "audio", np.zeros((3, 9, 3), np.float32)),
            ["'valid'", "'audio'"],
        ),
        (lambda: {k: v for k, v in make_splits().items() if k != "test"}, ["splits", "test"]),
    ],
    ids=[
        "wrong-shape",
        "float64",
        "nan",
        "zero-length",
        "label-range",
        "duplicate-ids",
        "ids-across-splits",
        "dirty-padding",
        "shape-differs-across-splits",
        "missing-split",
    ],
)
def test_bad_input_is_one_line_naming_the_key(tmp_path, splits, fragments):
    with pytest.raises(DataError) as info:
        write(tmp_path / "toy", splits())
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert not (tmp_path / "toy").exists()


def test_unknown_kind_and_unserialisable_source(tmp_path):
    with pytest.raises(DataError, match="kind"):
        write_store(tmp_path / "x", "toy", "imdb", make_splits(), {}, [])
    with pytest.raises(DataError, match="source"):
        write_store(tmp_path / "x", "toy", "mosi", make_splits(), {"f": object()}, [])


def test_read_manifest_missing(tmp_path):
    with pytest.raises(DataError) as info:
        read_manifest(tmp_path / "features" / "synth")
    message = str(info.value)
    assert "synth/manifest.json: not found" in message
    assert "msabench fetch synth" in message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"format_version": 1}', "missing key(s)"),
    ],
)
def test_read_manifest_malformed(tmp_path, content, fragment):
    (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(DataError) as info:
        read_manifest(tmp_path)
    assert fragment in str(info.value) and MANIFEST_NAME in str(info.value)
    assert "\n" not in str(info.value)


def test_read_manifest_rejects_other_format_version(tmp_path):
    write(tmp_path / "toy")
    path = tmp_path / "toy" / MANIFEST_NAME
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "format_version": 99}))
    with pytest.raises(DataError, match="format_version 99"):
        read_manifest(tmp_path / "toy")
