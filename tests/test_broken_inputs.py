"""A corpus of broken MMSA and MulT pickles: each gives its own one-line error and writes nothing.

Every case starts from a valid tiny payload (see test_formats_pickles.py), breaks one thing, and
checks the error message names the split and key (or file) at fault, that no store nor temporary
directory appears next to the target, and that no code from the pickle ran.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_formats_pickles import fetch, mmsa_payload, mult_payload, write_pickle

from harness.data.store import read_manifest
from harness.errors import ConfigError, DataError

MARKER = "pwned"  # the file a malicious pickle would create in the test's directory


class _Evil:
    """Pickles as a call to os.system that would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass(frozen=True)
class Case:
    fmt: str
    break_payload: Callable[[dict[str, Any], Path], Any]  # returns a payload or raw bytes
    message: str  # a distinctive substring of the one-line error
    options: dict[str, Any] = field(default_factory=dict)
    error: type[Exception] = DataError


def _set(split: str, key: str, value: Callable[[Any], Any]):
    def breaker(payload: dict[str, Any], tmp: Path) -> dict[str, Any]:
        payload[split][key] = value(payload[split][key])
        return payload

    return breaker


def _poke(split: str, key: str, index: int | tuple[int, ...], value: Any):
    def breaker(payload: dict[str, Any], tmp: Path) -> dict[str, Any]:
        payload[split][key][index] = value
        return payload

    return breaker


def _truncated(payload: dict[str, Any], tmp: Path) -> bytes:
    return pickle.dumps(payload, protocol=4)[:-200]


def _top_level_list(payload: dict[str, Any], tmp: Path) -> list:
    return [payload["train"], payload["valid"], payload["test"]]


def _drop(split: str, key: str | None = None):
    def breaker(payload: dict[str, Any], tmp: Path) -> dict[str, Any]:
        del (payload[split] if key else payload)[key or split]
        return payload

    return breaker


def _empty(split: str):
    def breaker(payload: dict[str, Any], tmp: Path) -> dict[str, Any]:
        payload[split] = {k: v[:0] for k, v in payload[split].items() if k != "_lengths"}
        return payload

    return breaker


def _shared_id(payload: dict[str, Any], tmp: Path) -> dict[str, Any]:
    ids = payload["test"]["id"]
    ids = ids.astype(object) if isinstance(ids, np.ndarray) else ids  # no bytes truncation
    ids[1] = payload["train"]["id"][3]
    payload["test"]["id"] = ids
    return payload


def _malicious(payload: dict[str, Any], tmp: Path) -> dict[str, Any]:
    payload["valid"]["audio"] = _Evil(tmp / MARKER)
    return payload


SYSTEM = f"refused to unpickle '{os.system.__module__}.system' (only numpy arrays"
MMSA_CASES = {
    "truncated": Case("mmsa", _truncated, "x.pkl: not a complete pickle (UnpicklingError"),
    "top_level_list": Case(
        "mmsa",
        _top_level_list,
        "x.pkl: expected a dict with keys ['train', 'valid', 'test'] at the top level, got list",
    ),
    "missing_split": Case(
        "mmsa", _drop("valid"), "x.pkl: split 'valid' missing; the top-level keys are ['test', "
    ),
    "split_not_dict": Case(
        "mmsa",
        lambda payload, tmp: {**payload, "test": [1, 2]},
        "x.pkl: split 'test' expected a dict of arrays, got list",
    ),
    "missing_key": Case(
        "mmsa", _drop("train", "audio_lengths"), "split 'train': key 'audio_lengths' missing;"
    ),
    "modality_n": Case(
        "mmsa",
        _set("valid", "vision", lambda v: v[:-1]),
        "split 'valid': key 'vision' has 2 samples but key 'regression_labels' has 3",
    ),
    "labels_n": Case(
        "mmsa",
        _set("test", "regression_labels", lambda v: v[:-1]),
        "split 'test': key 'id' has 4 samples but key 'regression_labels' has 3",
    ),
    "lengths_n": Case(
        "mmsa",
        _set("train", "audio_lengths", lambda v: v[:-1]),
        "split 'train': key 'audio_lengths' has 4 samples but key 'regression_labels' has 5",
    ),
    "dims_between_splits": Case(
        "mmsa",
        _set("test", "audio", lambda v: np.ascontiguousarray(v[:, :, :4])),
        "split 'test': key 'audio' has (T, D) = (8, 4) but split 'train' has (8, 5)",
    ),
    "nan_in_vision": Case(
        "mmsa",
        _poke("valid", "vision", (1, 0, 2), np.nan),
        "split 'valid': key 'vision' holds nan at row 1; expected finite values",
    ),
    "posinf_in_audio": Case(
        "mmsa",
        _poke("train", "audio", (4, 0, 1), np.inf),
        "split 'train': key 'audio' holds inf at row 4",
    ),
    "neginf_in_text": Case(
        "mmsa",
        _poke("test", "text", (2, 0, 0), -np.inf),
        "split 'test': key 'text' holds -inf at row 2",
    ),
    "label_out_of_range": Case(
        "mmsa",
        _poke("train", "regression_labels", 2, 3.5),
        "split 'train': key 'regression_labels' value 3.5 at row 2; expected [-3.0, 3.0]",
    ),
    "sims_label_range": Case(
        "mmsa",
        _poke("valid", "regression_labels", 0, 1.5),
        "split 'valid': key 'regression_labels' value 1.5 at row 0; expected [-1.0, 1.0] (kind",
        {"kind": "sims"},
    ),
    "empty_split": Case(
        "mmsa",
        _empty("valid"),
        "x.pkl: split 'valid' is empty (key 'regression_labels' has 0 samples)",
    ),
    "ids_across_splits": Case(
        "mmsa",
        _shared_id,
        "split 'test': key 'id' value 'trainvideo3$_$3' is also in split 'train'; "
        "splits must not share samples (a leak)",
    ),
    "ids_within_split": Case(
        "mmsa",
        _poke("train", "id", 2, "trainvideo0$_$0"),
        "split 'train': key 'id' value 'trainvideo0$_$0' at row 2 repeats row 0",
    ),
    "length_beyond_sequence": Case(
        "mmsa",
        _poke("valid", "audio_lengths", 1, 9),
        "split 'valid': key 'audio_lengths' value 9 at row 1 exceeds the 8 time steps of key "
        "'audio' (set clip_lengths: true to clip)",
    ),
    "negative_length": Case(
        "mmsa",
        _poke("test", "vision_lengths", 0, -1),
        "split 'test': key 'vision_lengths' value -1 at row 0 is not a whole number >= 0",
    ),
    "text_bert_shape": Case(
        "mmsa",
        _set("train", "text_bert", lambda v: v[:, :, :5]),
        "split 'train': key 'text_bert' expected a numeric array of shape (5, 3, 6)",
    ),
    "features_not_3d": Case(
        "mmsa",
        _set("train", "audio", lambda v: v.reshape(5, -1)),
        "split 'train': key 'audio' expected a numeric array of shape (5, T, D), got (5, 40)",
    ),
    "malicious": Case("mmsa", _malicious, SYSTEM),
    "bad_option": Case(
        "mmsa",
        lambda payload, tmp: payload,
        "fill_nonfinite: expected true or false, got 'yes'",
        {"fill_nonfinite": "yes"},
        ConfigError,
    ),
}
MULT_CASES = {
    "truncated": Case("mult", _truncated, "x.pkl: not a complete pickle (UnpicklingError"),
    "top_level_list": Case(
        "mult", _top_level_list, "x.pkl: expected a dict with keys ['train', 'valid', 'test']"
    ),
    "missing_split": Case("mult", _drop("test"), "x.pkl: split 'test' missing;"),
    "missing_key": Case("mult", _drop("train", "labels"), "split 'train': key 'labels' missing;"),
    "missing_id": Case("mult", _drop("valid", "id"), "split 'valid': key 'id' missing;"),
    "modality_n": Case(
        "mult",
        _set("train", "audio", lambda v: v[:-1]),
        "split 'train': key 'audio' has 4 samples but key 'labels' has 5",
    ),
    "labels_n": Case(
        "mult",
        _set("valid", "labels", lambda v: v[:-1]),
        "split 'valid': key 'id' has 3 samples but key 'labels' has 2",
    ),
    "labels_shape": Case(
        "mult",
        _set("test", "labels", lambda v: np.repeat(v, 2, axis=1)),
        "split 'test': key 'labels' expected shape (4,) or (4, 1, ...), got (4, 2, 1)",
    ),
    "dims_between_splits": Case(
        "mult",
        _set("valid", "vision", lambda v: np.ascontiguousarray(v[:, :, :19])),
        "split 'valid': key 'vision' has (T, D) = (6, 19) but split 'train' has (6, 20)",
    ),
    "nan_in_vision": Case(
        "mult",
        _poke("train", "vision", (3, 1, 1), np.nan),
        "split 'train': key 'vision' holds nan at row 3; expected finite values",
    ),
    "nan_in_audio": Case(
        "mult",
        _poke("test", "audio", (0, 0, 3), np.nan),
        "split 'test': key 'audio' holds nan at row 0",
    ),
    "label_out_of_range": Case(
        "mult",
        _poke("valid", "labels", (1, 0, 0), -4.0),
        "split 'valid': key 'labels' value -4.0 at row 1; expected [-3.0, 3.0] (kind 'mosi')",
    ),
    "empty_split": Case(
        "mult", _empty("test"), "x.pkl: split 'test' is empty (key 'labels' has 0 samples)"
    ),
    "ids_across_splits": Case(
        "mult",
        _shared_id,
        "split 'test': key 'id' value 'trainvid3_1.5_3.0' is also in split 'train'",
    ),
    "text_not_numeric": Case(
        "mult",
        _set("train", "text", lambda v: np.full(v.shape[:2], "word", dtype=object)),
        "split 'train': key 'text' expected a numeric (N, T, D) array",
    ),
    "malicious": Case("mult", _malicious, SYSTEM),
}
CASES = {f"mmsa-{name}": case for name, case in MMSA_CASES.items()}
CASES |= {f"mult-{name}": case for name, case in MULT_CASES.items()}


def _payload(fmt: str, kind: str) -> dict[str, Any]:
    return mmsa_payload(kind=kind) if fmt == "mmsa" else mult_payload()


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_input_gives_one_line_error_and_writes_nothing(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    kind = case.options.get("kind", "mosi")
    broken = case.break_payload(_payload(case.fmt, kind), tmp_path)
    source = tmp_path / "in" / "x.pkl"
    if isinstance(broken, bytes):
        source.parent.mkdir()
        source.write_bytes(broken)
    else:
        write_pickle(source, broken)
    stores = tmp_path / "stores"
    stores.mkdir()
    options = {k: v for k, v in case.options.items() if k != "kind"}
    with pytest.raises(case.error) as info:
        fetch(case.fmt, source, stores / "toy", kind=kind, **options)
    message = str(info.value)
    assert re.search(re.escape(case.message), message), message
    assert "\n" not in message
    assert list(stores.iterdir()) == []  # no store, no temporary directory
    assert sorted(p.name for p in source.parent.iterdir()) == ["x.pkl"]
    assert not (tmp_path / MARKER).exists()


def test_broken_refetch_keeps_the_previous_store(tmp_path: Path) -> None:
    target = tmp_path / "stores" / "toy"
    fetch("mmsa", write_pickle(tmp_path / "good.pkl", mmsa_payload()), target)
    before = read_manifest(target).data_hash
    broken = MMSA_CASES["nan_in_vision"].break_payload(mmsa_payload(), tmp_path)
    with pytest.raises(DataError, match="key 'vision' holds nan"):
        fetch("mmsa", write_pickle(tmp_path / "bad.pkl", broken), target)
    assert read_manifest(target).data_hash == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["toy"]
