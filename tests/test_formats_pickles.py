"""The `mmsa` and `mult` readers: tiny pickles in the real layouts, through fetch into a store.

The builders here (`mmsa_payload`, `mult_payload`, `write_pickle`, `fetch`) are also used by
test_broken_inputs.py.
"""

from __future__ import annotations

import logging
import pickle
import re
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config import DatasetConfig
from harness.data.declaration import parse_dataset
from harness.data.formats import FORMATS
from harness.data.loading import load_dataset, read_split_arrays
from harness.data.sources import fetch_dataset
from harness.data.store import read_manifest
from harness.data.types import SPLITS
from harness.errors import ConfigError, DataError

SIZES = {"train": 5, "valid": 3, "test": 4}
MMSA_T = {"text": 6, "audio": 8, "vision": 7}
MMSA_D = {"text": 768, "audio": 5, "vision": 20}
MULT_T = {"text": 5, "audio": 9, "vision": 6}
MULT_D = {"text": 300, "audio": 5, "vision": 20}
NEG_INF = {"train": 3, "valid": 1, "test": 2}  # -inf values put in each split's audio


def _sequences(rng, n: int, steps: int, dim: int, lengths: np.ndarray) -> np.ndarray:
    """(n, steps, dim) float32, nonzero for t < length, zero after."""
    x = rng.uniform(0.5, 1.5, size=(n, steps, dim)).astype(np.float32)
    x[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return x


def mmsa_split(split: str, kind: str = "mosi", seed: int = 0) -> dict[str, Any]:
    """One split in the MMSA layout; text features are nonzero past the mask, as BERT's are."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    n = SIZES[split]
    lengths = {m: rng.integers(1, MMSA_T[m], size=n, endpoint=True) for m in MMSA_T}
    text_bert = np.zeros((n, 3, MMSA_T["text"]), dtype=np.float32)
    text_bert[:, 1] = np.arange(MMSA_T["text"])[None, :] < lengths["text"][:, None]
    audio = _sequences(rng, n, MMSA_T["audio"], MMSA_D["audio"], lengths["audio"])
    audio[np.arange(NEG_INF[split]), 0, 0] = -np.inf  # t = 0 is always within the length
    high = 1.0 if kind == "sims" else 3.0
    payload = {
        "id": [f"{split}video{i}$_${i}" for i in range(n)],
        "raw_text": [f"sentence {i}" for i in range(n)],
        "text": rng.standard_normal((n, MMSA_T["text"], MMSA_D["text"])).astype(np.float32),
        "text_bert": text_bert,
        "audio": audio,
        "vision": _sequences(rng, n, MMSA_T["vision"], MMSA_D["vision"], lengths["vision"]),
        "audio_lengths": [int(v) for v in lengths["audio"]],  # MMSA stores lists
        "vision_lengths": lengths["vision"].astype(np.int64),
        "annotations": ["Positive"] * n,
        "classification_labels": np.ones(n, dtype=np.float32),
        "regression_labels": rng.uniform(-high, high, size=n).astype(np.float32),
    }
    if kind == "sims":
        for modality in "TAV":
            payload[f"regression_labels_{modality}"] = payload["regression_labels"].copy()
    return payload


def mmsa_payload(kind: str = "mosi", seed: int = 0) -> dict[str, Any]:
    return {split: mmsa_split(split, kind, seed) for split in SPLITS}


def mult_split(split: str, seed: int = 0, id_parts: int = 3) -> dict[str, Any]:
    """One split in the MulT/CMU layout: zeros after each (hidden) length, labels (N, 1, 1)."""
    rng = np.random.default_rng([seed, 7, SPLITS.index(split)])
    n = SIZES[split]
    lengths = {m: rng.integers(1, MULT_T[m], size=n, endpoint=True) for m in MULT_T}
    features = {m: _sequences(rng, n, MULT_T[m], MULT_D[m], lengths[m]) for m in MULT_T}
    features["audio"][np.arange(NEG_INF[split]), 0, 0] = -np.inf
    if id_parts == 1:
        ids: Any = np.array([f"{split}clip{i}" for i in range(n)])
    else:
        ids = np.array([[f"{split}vid{i}".encode(), b"1.5", b"3.0"] for i in range(n)])
    labels = rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32)
    return {**features, "labels": labels, "id": ids, "_lengths": lengths}


def mult_payload(seed: int = 0, id_parts: int = 3) -> dict[str, Any]:
    """The MulT layout, with each split's true lengths under "_lengths" (strip before writing)."""
    return {split: mult_split(split, seed, id_parts) for split in SPLITS}


def write_pickle(path: Path, payload: Any, protocol: int = 4) -> Path:
    """Pickle `payload` to `path`, dropping the test-only "_lengths" keys."""
    if isinstance(payload, dict):
        payload = {
            k: {kk: vv for kk, vv in v.items() if kk != "_lengths"} if isinstance(v, dict) else v
            for k, v in payload.items()
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    return path


def fetch(fmt: str, path: Path, target: Path, kind: str = "mosi", **options: Any) -> None:
    config = DatasetConfig(
        "toy", "file", kind, {"format": fmt, "path": str(path), "kind": kind, **options}
    )
    fetch_dataset(config, target)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "msabench"]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_mmsa_to_store(tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: int) -> None:
    payload = mmsa_payload()
    source = write_pickle(tmp_path / "MOSI" / "unaligned_50.pkl", payload, protocol)
    target = tmp_path / "stores" / "toy"
    with caplog.at_level(logging.WARNING, logger="msabench"):
        fetch("mmsa", source, target)
    spec, loaded = load_dataset(target)
    assert spec.feature_dims == MMSA_D and spec.max_lengths == MMSA_T
    for split in SPLITS:
        raw, stored = payload[split], read_split_arrays(target, split)
        mask_sum = raw["text_bert"][:, 1].sum(axis=1)
        np.testing.assert_array_equal(stored.lengths["text"], mask_sum)
        np.testing.assert_array_equal(stored.lengths["audio"], raw["audio_lengths"])
        np.testing.assert_array_equal(stored.lengths["vision"], raw["vision_lengths"])
        assert stored.ids.tolist() == raw["id"] and loaded[split].ids == raw["id"]
        np.testing.assert_array_equal(stored.labels, raw["regression_labels"])
        text_mask = np.arange(MMSA_T["text"])[None, :] < mask_sum[:, None]
        np.testing.assert_array_equal(stored.features["text"][~text_mask], 0)  # BERT padding
        np.testing.assert_array_equal(stored.features["text"][text_mask], raw["text"][text_mask])
        assert int((stored.features["audio"][:, 0, 0] == 0).sum()) == NEG_INF[split]
        expected = f"split '{split}': key 'audio' held {NEG_INF[split]} -inf value(s); set to 0"
        assert any(expected in message for message in _warnings(caplog))
    assert read_manifest(target).source["format"] == "mmsa"


def test_mmsa_sims_directory_without_text_bert(tmp_path: Path) -> None:
    payload = mmsa_payload(kind="sims")
    for split in SPLITS:
        del payload[split]["text_bert"]
    directory = tmp_path / "SIMS"
    write_pickle(directory / "unaligned_39.pkl", payload)
    (directory / "README.txt").write_text("not a pickle")
    fetch("mmsa", directory, tmp_path / "store", kind="sims")
    stored = read_split_arrays(tmp_path / "store", "valid")
    assert stored.lengths["text"].tolist() == [MMSA_T["text"]] * SIZES["valid"]
    assert read_manifest(tmp_path / "store").label_range == (-1.0, 1.0)


def test_mmsa_directory_with_two_pickles_needs_file_option(tmp_path: Path) -> None:
    write_pickle(tmp_path / "MOSI" / "aligned_50.pkl", mmsa_payload(seed=1))
    write_pickle(tmp_path / "MOSI" / "unaligned_50.pkl", mmsa_payload(seed=2))
    message = "expected exactly one .pkl file (or option 'file'), found aligned_50.pkl, unal"
    with pytest.raises(DataError, match=re.escape(message)):
        fetch("mmsa", tmp_path / "MOSI", tmp_path / "store")
    fetch("mmsa", tmp_path / "MOSI", tmp_path / "store", file="aligned_50.pkl")
    assert read_manifest(tmp_path / "store").inputs[0]["name"] == "aligned_50.pkl"


def test_mmsa_zero_and_clipped_lengths(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    payload = mmsa_payload()
    payload["train"]["vision_lengths"][[1, 2]] = 0  # MMSA's mark of a missing face
    payload["test"]["audio_lengths"][0] = MMSA_T["audio"] + 4
    source = write_pickle(tmp_path / "x.pkl", payload)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        fetch("mmsa", source, tmp_path / "store", clip_lengths=True)
    train = read_split_arrays(tmp_path / "store", "train")
    assert train.lengths["vision"][[1, 2]].tolist() == [1, 1]
    np.testing.assert_array_equal(train.features["vision"][[1, 2]], 0)
    assert read_split_arrays(tmp_path / "store", "test").lengths["audio"][0] == MMSA_T["audio"]
    messages = " | ".join(_warnings(caplog))
    assert "split 'train': key 'vision_lengths' had 2 length(s) of 0" in messages
    assert "split 'test': key 'audio_lengths' had 1 value(s) above 8; clipped" in messages


def test_fill_nonfinite_zero_fills_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    payload = mmsa_payload()
    payload["valid"]["vision"][0, 0, :3] = [np.nan, np.inf, -np.inf]
    source = write_pickle(tmp_path / "x.pkl", payload)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        fetch("mmsa", source, tmp_path / "store", fill_nonfinite=True)
    valid = read_split_arrays(tmp_path / "store", "valid")
    np.testing.assert_array_equal(valid.features["vision"][0, 0, :3], 0)
    assert any(
        "split 'valid': key 'vision' held 3 non-finite value(s); set to 0" in message
        for message in _warnings(caplog)
    )


@pytest.mark.parametrize("id_parts", [1, 3])
def test_mult_to_store(tmp_path: Path, caplog: pytest.LogCaptureFixture, id_parts: int) -> None:
    payload = mult_payload(id_parts=id_parts)
    train = payload["train"]
    train["text"] = train["text"].astype(np.float64)  # converted to float32 once
    train["vision"][0] = 0  # a missing modality: all zeros -> length 1
    train["vision"][1, 0] = 0  # a zero step before the last nonzero one still counts
    source = write_pickle(tmp_path / "mosi_data_noalign.pkl", payload, protocol=2)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        fetch("mult", source, tmp_path / "store")
    load_dataset(tmp_path / "store")
    for split in SPLITS:
        raw, stored = payload[split], read_split_arrays(tmp_path / "store", split)
        expected = dict(raw["_lengths"])
        if split == "train":
            expected["vision"] = np.r_[1, expected["vision"][1:]]
        for m in MULT_T:
            np.testing.assert_array_equal(stored.lengths[m], expected[m])
        np.testing.assert_array_equal(stored.labels, raw["labels"].reshape(-1))
        if id_parts == 3:
            assert stored.ids[0] == f"{split}vid0_1.5_3.0"
        else:
            assert stored.ids.tolist() == raw["id"].tolist()
        assert int((stored.features["audio"][:, 0, 0] == 0).sum()) == NEG_INF[split]
    messages = " | ".join(_warnings(caplog))
    assert "split 'valid': key 'audio' held 1 -inf value(s); set to 0" in messages
    assert "split 'train': key 'vision' had 1 all-zero sequence(s)" in messages


def test_float32_arrays_are_used_without_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = mmsa_payload()
    originals = {split: dict(payload[split]) for split in SPLITS}
    monkeypatch.setattr("harness.data.formats.mmsa.safe_load", lambda path: payload)
    monkeypatch.setattr("harness.data.formats.mmsa.resolve_pickle", lambda path, options: path)
    splits = FORMATS.get("mmsa")(Path("in-memory.pkl"), {"kind": "mosi"})
    for split in SPLITS:
        for m in ("text", "audio", "vision"):
            assert splits[split].features[m] is originals[split][m]
    assert payload == {}  # each pickled split is released once converted


def test_peak_memory_while_converting(tmp_path: Path) -> None:
    """Reading a float32 pickle allocates little beyond the arrays themselves."""
    rng = np.random.default_rng(0)
    payload = mmsa_payload()
    for split in SPLITS:
        n = SIZES[split] * 40
        for m in ("text", "audio", "vision"):
            payload[split][m] = rng.standard_normal((n, 50, MMSA_D[m])).astype(np.float32)
            payload[split][f"{m}_lengths"] = np.full(n, 40)
        del payload[split]["text_bert"]
        for key in ("id", "raw_text", "annotations", "classification_labels", "regression_labels"):
            payload[split][key] = [f"{split}{i}" for i in range(n)] if key == "id" else np.zeros(n)
    size = sum(payload[s][m].nbytes for s in SPLITS for m in ("text", "audio", "vision"))
    source = write_pickle(tmp_path / "big.pkl", payload)
    del payload
    tracemalloc.start()
    try:
        splits = FORMATS.get("mmsa")(source, {"kind": "mosi"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert splits["test"].features["text"].shape == (SIZES["test"] * 40, 50, 768)
    assert peak < 1.5 * size, f"peak {peak / size:.2f}x the feature arrays' size"


# -- a binary task (humour: UR-FUNNY in MMSA's layout) ------------------------------------------


def humour_payload(label_key: str = "regression_labels") -> dict[str, Any]:
    """The MMSA layout with 0/1 labels (humorous or not) under `label_key`; with
    classification_labels, regression_labels hold a continuous score that is not the class."""
    payload = mmsa_payload()
    for split in SPLITS:
        n = SIZES[split]
        classes = (np.arange(n) % 2).astype(np.float32)
        payload[split]["classification_labels"] = classes
        payload[split]["regression_labels"] = (
            classes if label_key == "regression_labels" else np.linspace(-1, 2, n, dtype=np.float32)
        )
    return payload


def test_cli_fetches_a_humour_pickle_into_a_binary_store(tmp_path: Path, monkeypatch) -> None:
    """`msabench fetch NAME --path FILE --format mmsa --kind binary`, then loaded: 0/1 labels."""
    from harness.cli import main

    params = Path(__file__).resolve().parents[1] / "params.yaml"
    payload = humour_payload()
    source = write_pickle(tmp_path / "urfunny" / "unaligned.pkl", payload)
    monkeypatch.chdir(tmp_path)
    arguments = ["--path", str(source), "--format", "mmsa", "--kind", "binary"]
    assert main(["--params", str(params), "fetch", "urfunny", *arguments]) == 0
    store = tmp_path / "features" / "urfunny"
    assert read_manifest(store).kind == "binary"
    spec, splits = load_dataset(store)
    assert spec.kind == "binary" and spec.label_range == (0.0, 1.0)
    for split in SPLITS:
        expected = payload[split]["regression_labels"].tolist()
        assert splits[split].labels.tolist() == expected and set(expected) == {0.0, 1.0}


def test_label_key_reads_the_classes_from_classification_labels(tmp_path: Path) -> None:
    payload = humour_payload("classification_labels")
    source = write_pickle(tmp_path / "urfunny.pkl", payload)
    with pytest.raises(DataError, match=(
        r"split 'train': key 'regression_labels' value -1.0 at row 0; expected exactly 0 or 1 "
        r"\(kind 'binary'\); set label_key: classification_labels if the pickle keeps"
    )):  # fmt: skip
        fetch("mmsa", source, tmp_path / "store", kind="binary")
    fetch("mmsa", source, tmp_path / "store", kind="binary", label_key="classification_labels")
    _, splits = load_dataset(tmp_path / "store")
    for split in SPLITS:
        assert splits[split].labels.tolist() == payload[split]["classification_labels"].tolist()


def test_a_binary_label_other_than_0_or_1_is_refused_naming_key_and_row(tmp_path: Path) -> None:
    payload = humour_payload("classification_labels")
    payload["valid"]["classification_labels"][2] = 0.5
    source = write_pickle(tmp_path / "urfunny.pkl", payload)
    message = (
        r"urfunny.pkl: split 'valid': key 'classification_labels' value 0.5 at row 2; "
        r"expected exactly 0 or 1 \(kind 'binary'\)$"
    )
    with pytest.raises(DataError, match=message):
        fetch("mmsa", source, tmp_path / "store", kind="binary", label_key="classification_labels")
    mult = mult_payload()
    for split in SPLITS:
        mult[split]["labels"] = np.ones_like(mult[split]["labels"])
    mult["test"]["labels"][3] = 2.0
    source = write_pickle(tmp_path / "mult.pkl", mult)
    message = r"split 'test': key 'labels' value 2.0 at row 3; expected exactly 0 or 1"
    with pytest.raises(DataError, match=message):
        fetch("mult", source, tmp_path / "store", kind="binary")
    section = {"source": "file", "format": "mult", "kind": "binary", "path": "x.pkl"}
    with pytest.raises(ConfigError, match="datasets.u.label_key: unknown key"):  # mmsa's only
        parse_dataset("u", {**section, "label_key": "classification_labels"}, "params.yaml")
    with pytest.raises(ConfigError, match="datasets.u.label_key: expected one of regression_la"):
        parse_dataset("u", {**section, "format": "mmsa", "label_key": "labels"}, "params.yaml")


def test_the_store_refuses_a_binary_label_other_than_0_or_1(tmp_path: Path) -> None:
    from harness.data.store import write_store

    splits = FORMATS.get("mmsa")(write_pickle(tmp_path / "x.pkl", humour_payload()), {})
    splits["test"].labels[1] = 0.25
    message = r"split 'test': key 'labels' value 0.25 at row 1; expected exactly 0 or 1"
    with pytest.raises(DataError, match=message):
        write_store(tmp_path / "store", "toy", "binary", splits, {"type": "test"}, [])
    assert not (tmp_path / "store").exists()
