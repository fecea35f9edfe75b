"""The `mustard` format on the real MUStARD files (../shared/data/mustard): 690 utterances in the
authors' five folds, a stratified validation carved from each fold's training utterances, token
ids with and without the dialogue context, one-line errors for a bad fold or a tampered split
file, and one fold fetched through the declared `url` source into a text-only binary store."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.config import DatasetConfig, parse_params
from harness.data.declaration import parse_dataset
from harness.data.formats import FORMATS
from harness.data.formats.mustard import read_folds, read_utterances, stratified_rows
from harness.errors import ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parents[1]
FILES = REPO_ROOT.parent / "shared" / "data" / "mustard"
FOLD_NAMES = [f"mustard_fold{k}" for k in range(1, 6)]

pytestmark = pytest.mark.skipif(
    not (FILES / "sarcasm_data.json").is_file(), reason=f"MUStARD files not found at {FILES}"
)


@pytest.fixture
def cheap_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """The frozen encoder replaced by zeros of its shape (N, L, 384): these tests look at the
    splits and token ids, not at the states (test_a_fold_fetches_... encodes for real)."""

    def encode(tokens: np.ndarray, model) -> np.ndarray:
        return np.zeros((tokens.shape[0], tokens.shape[2], 384), dtype=np.float32)

    monkeypatch.setattr("harness.data.text_encoding.encode", encode)


def _read(**options):
    return FORMATS.get("mustard")(FILES, {"kind": "binary", **options})


def _declared() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))["datasets"]


def test_params_declare_the_five_folds_as_one_group_outside_the_benchmark() -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = parse_params(raw)
    assert params.groups["mustard"] == tuple(FOLD_NAMES)
    first = raw["datasets"]["mustard_fold1"]
    for k, name in enumerate(FOLD_NAMES, start=1):
        section = raw["datasets"][name]
        assert {**section, "fold": 1} == first and section["fold"] == k  # the anchor's keys
        assert params.dataset(name).kind == "binary" and name not in params.benchmark.datasets
    assert (first["source"], first["format"], first["context"]) == ("url", "mustard", False)
    assert [f["path"] for f in first["files"]] == ["sarcasm_data.json", "split_indices.p"]


def test_the_files_hold_690_balanced_utterances_in_five_disjoint_folds() -> None:
    data = read_utterances(FILES / "sarcasm_data.json")
    assert len(data.ids) == 690 and data.ids[0] == "1_60"
    assert int(data.labels.sum()) == 345 and set(data.labels.tolist()) == {0.0, 1.0}
    folds = read_folds(FILES / "split_indices.p", 690)
    assert [(train.size, test.size) for train, test in folds] == [(552, 138)] * 5
    tests = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tests), np.arange(690))  # each utterance tested once


def test_a_fold_carves_a_stratified_seeded_validation_from_its_training_utterances(
    cheap_states,
) -> None:
    data = read_utterances(FILES / "sarcasm_data.json")
    fold_train, fold_test = read_folds(FILES / "split_indices.p", 690)[1]
    splits = _read(fold=2)
    position = {key: i for i, key in enumerate(data.ids.tolist())}
    rows = {name: np.array([position[i] for i in s.ids.tolist()]) for name, s in splits.items()}
    assert np.array_equal(rows["test"], fold_test)
    assert np.array_equal(np.sort(np.r_[rows["train"], rows["valid"]]), fold_train)
    assert {name: s.n for name, s in splits.items()} == {"train": 469, "valid": 83, "test": 138}
    for label in (0.0, 1.0):  # 15% of each class of the fold's training utterances
        in_class = int((data.labels[fold_train] == label).sum())
        assert int((splits["valid"].labels == label).sum()) == round(0.15 * in_class)
    for name, split in splits.items():
        assert split.labels.dtype == np.float32
        assert np.array_equal(split.labels, data.labels[rows[name]])
        assert set(split.features) == {"text"} and split.tokens is not None
    again = stratified_rows(fold_train, data.labels, 0.15, 0)
    assert np.array_equal(again, rows["valid"])
    assert not np.array_equal(stratified_rows(fold_train, data.labels, 0.15, 1), again)


def test_context_puts_the_dialogue_turns_before_the_utterance(cheap_states) -> None:
    alone = _read(fold=1)["test"].tokens
    paired = _read(fold=1, context=True, max_text_tokens=128)["test"].tokens
    assert alone.shape == (138, 3, 64) and paired.shape == (138, 3, 128)
    assert (paired[:, 1].sum(1) > alone[:, 1].sum(1)).all()  # every utterance has context
    assert (alone[:, 2] == 0).all() and (paired[:, 2].sum(1) > 0).all()
    for row in range(138):  # segment 1 = the utterance and its [SEP], as the utterance alone
        utterance = paired[row, 0][paired[row, 2] == 1]
        n = int(alone[row, 1].sum())
        if n < 64:
            assert np.array_equal(utterance, alone[row, 0, 1:n])


def test_a_fold_outside_one_to_five_or_a_regression_kind_is_refused() -> None:
    section = {**_declared()["mustard_fold1"]}
    for fold, expected in ((6, "expected a fold number from 1 to 5, got 6"),
                           (0, "expected a fold number from 1 to 5, got 0"),
                           (True, "expected an integer, got True")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"datasets.m.fold: {expected}"):
            parse_dataset("m", {**section, "fold": fold}, "params.yaml")
    del section["fold"]
    with pytest.raises(ConfigError, match=r"datasets.m.fold: missing \(required key\)"):
        parse_dataset("m", section, "params.yaml")
    with pytest.raises(ConfigError, match="datasets.m.text: expected one of tokens"):
        parse_dataset("m", {**section, "fold": 1, "text": "features"}, "params.yaml")
    with pytest.raises(ConfigError, match="kind: format mustard has classes .* got 'mosi'"):
        FORMATS.get("mustard")(FILES, {"fold": 1, "kind": "mosi"})


def _tampered(tmp_path: Path, folds) -> Path:
    """The real json beside `folds` pickled as split_indices.p."""
    directory = tmp_path / "mustard"
    directory.mkdir(exist_ok=True)
    shutil.copy(FILES / "sarcasm_data.json", directory / "sarcasm_data.json")
    (directory / "split_indices.p").write_bytes(pickle.dumps(folds, protocol=2))
    return directory


def test_a_tampered_split_file_is_a_one_line_error(tmp_path: Path) -> None:
    real = read_folds(FILES / "split_indices.p", 690)
    train, test = real[0]
    leak = [(np.r_[train, test[:1]], test), *real[1:]]
    out_of_range = [(train, np.r_[test[:-1], 690]), *real[1:]]
    repeated = [(np.r_[train[:-1], train[0]], test), *real[1:]]
    cases = [
        (real[:4], r"split_indices.p: expected a list of 5 \(train, test\) index pairs, got 4"),
        (leak, rf"fold 1: index {test[0]} is in both train and test; expected disjoint"),
        (out_of_range, r"fold 1: test: index 690 outside \[0, 689\]; expected rows of sarcasm"),
        (repeated, rf"fold 1: train: index {train[0]} repeated; expected each once"),
        ([(train[:-1], test), *real[1:]], r"fold 1: train 551 \+ test 138 indices; expected"),
        ([(train, test.astype(float)), *real[1:]], "fold 1: test: expected a non-empty 1-D int"),
    ]
    for folds, message in cases:
        directory = _tampered(tmp_path, folds)
        with pytest.raises(DataError, match=message):
            read_folds(directory / "split_indices.p", 690)


def test_a_malicious_split_file_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    directory = _tampered(tmp_path, [Exploit()])
    with pytest.raises(DataError, match="refused to unpickle 'shutil.rmtree'"):
        read_folds(directory / "split_indices.p", 690)
    assert (tmp_path / "victim").is_dir()


def test_a_malformed_utterance_names_its_id(tmp_path: Path) -> None:
    raw = json.loads((FILES / "sarcasm_data.json").read_text(encoding="utf-8"))
    raw["1_70"]["sarcasm"] = "yes"
    path = tmp_path / "sarcasm_data.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DataError, match="utterance '1_70': key 'sarcasm' 'yes'; expected true or"):
        read_utterances(path)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataError, match="expected an object keyed by utterance id, got list"):
        read_utterances(path)


def test_a_fold_fetches_into_a_text_only_binary_store(tmp_path: Path, monkeypatch) -> None:
    """params.yaml's mustard_fold3 through the url source from the local files (checked against
    the declared sha256s), encoded by the real MiniLM, then loaded."""
    from harness.data.loading import load_dataset
    from harness.data.sources import fetch_dataset
    from harness.data.store import read_manifest

    monkeypatch.chdir(tmp_path)
    declared = _declared()["mustard_fold3"]
    config = DatasetConfig("mustard_fold3", "url", "binary", declared)
    fetch_dataset(config, tmp_path / "store", source_path=FILES)
    manifest = read_manifest(tmp_path / "store")
    assert manifest.kind == "binary" and manifest.modalities == ("text",)
    assert manifest.feature_dims == {"text": 384} and manifest.max_lengths == {"text": 64}
    assert {name: e.n for name, e in manifest.splits.items()} == {
        "train": 470, "valid": 82, "test": 138,  # valid: 42 of 282 sarcastic, 40 of 270 not
    }  # fmt: skip
    assert manifest.text_tokens is not None and manifest.text_tokens.model == "minilm"
    spec, splits = load_dataset(tmp_path / "store")
    assert spec.kind == "binary" and spec.modalities == ("text",)
    assert spec.label_range == (0.0, 1.0)
    labels = np.concatenate([s.labels.numpy() for s in splits.values()])
    assert sorted(set(labels.tolist())) == [0.0, 1.0] and labels.sum() == 345
    test = splits["test"]
    states_at_real_tokens = (test.features["text"].abs().sum(-1) > 0).sum(1)
    assert states_at_real_tokens.tolist() == test.lengths["text"].tolist()
