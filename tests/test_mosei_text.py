"""The `label_csv` format (MMSA-style label.csv read as a text-only dataset) and params.yaml's
`mosei_text`: a small CSV written here, through fetch into a store (tokenized and encoded by the
real MiniLM), one-line errors naming the line, and the real CMU-MOSEI transcripts
(../shared/data/mosei-text) split as MMSA's standard split."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.config import DatasetConfig, parse_params
from harness.data.declaration import parse_dataset
from harness.data.formats.label_csv import read_rows
from harness.data.loading import load_dataset
from harness.data.sources import fetch_dataset
from harness.data.store import read_manifest
from harness.errors import ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parents[1]
MOSEI_TEXT = REPO_ROOT.parent / "shared" / "data" / "mosei-text" / "label.csv"
HEADER = ["video_id", "clip_id", "text", "label", "annotation", "mode"]
ROWS = [
    ["vidA", "1", "i really loved this movie", "2.4", "Positive", "train"],
    ["vidA", "2", "the plot was boring and way too long", "-1.8", "Negative", "train"],
    ["vidB", "1", "it was okay i guess", "0.0", "Neutral", "train"],
    ["vidB", "2", "what a wonderful surprise", "3.0", "Positive", "train"],
    ["vidC", "1", "terrible acting", "-3.0", "Negative", "valid"],
    ["vidC", "2", "not bad", "0.6", "Positive", "valid"],
    ["vidD", "1", "i would not watch it again", "-1.2", "Negative", "test"],
    ["vidD", "10", "great fun for the whole family, every single minute of it", "2.0",
     "Positive", "test"],
]  # fmt: skip


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_label_csv_fetches_into_a_text_only_store(tmp_path: Path) -> None:
    source = _write(tmp_path / "raw" / "label.csv", ROWS)
    options = {"format": "label_csv", "path": str(source.parent), "kind": "mosei",
               "max_text_tokens": 8}  # fmt: skip
    fetch_dataset(DatasetConfig("toy_text", "file", "mosei", options), tmp_path / "store")
    manifest = read_manifest(tmp_path / "store")
    assert manifest.modalities == ("text",) and manifest.kind == "mosei"
    assert manifest.feature_dims == {"text": 384} and manifest.max_lengths == {"text": 8}
    assert {name: entry.n for name, entry in manifest.splits.items()} == {
        "train": 4, "valid": 2, "test": 2,
    }  # fmt: skip
    spec, splits = load_dataset(tmp_path / "store")
    assert spec.modalities == ("text",) and spec.tokens is not None
    test = splits["test"]
    assert test.ids == ["vidD_1", "vidD_10"]
    assert test.labels.tolist() == [pytest.approx(-1.2), 2.0]
    tokens = test.tokens.numpy()
    assert tokens.shape == (2, 3, 8) and (tokens[:, 0, 0] == 101).all()  # [CLS]
    assert test.lengths["text"].tolist() == [8, 8]  # "i would not watch it again": 6 + 2
    assert tokens[1, 0, 7] == 102  # the long one is cut, its [SEP] kept
    assert splits["valid"].lengths["text"].tolist() == [4, 4]  # "terrible acting", "not bad"


def test_a_malformed_row_is_a_one_line_error_naming_its_line(tmp_path: Path) -> None:
    cases = [
        (2, 5, "train-ish", r"line 4 mode 'train-ish'; expected one of train, valid, test"),
        (1, 3, "high", r"line 3 label 'high'; expected a number"),
        (1, 3, "3.5", r"line 3 label '3.5'; expected \[-3.0, 3.0\] \(kind 'mosei'\)"),
        (4, 2, "  ", r"line 6 text '  '; expected a non-empty transcript"),
        (7, 1, "1", r"line 9 repeats utterance id 'vidD_1'"),
    ]
    for row, column, value, message in cases:
        rows = [list(r) for r in ROWS]
        rows[row][column] = value
        with pytest.raises(DataError, match=message):
            read_rows(_write(tmp_path / "label.csv", rows), "mosei")
    with pytest.raises(DataError, match="no row has mode 'valid'; expected rows of every split"):
        read_rows(_write(tmp_path / "label.csv", [r for r in ROWS if r[5] != "valid"]), None)
    with pytest.raises(DataError, match="missing column.s. mode; expected MMSA's header"):
        read_rows(_write(tmp_path / "label.csv", [r[:5] for r in ROWS], HEADER[:5]), None)
    with pytest.raises(DataError, match="label.csv: not found; the label_csv format expects"):
        read_rows(tmp_path / "absent" / "label.csv", None)


def test_params_declare_mosei_text_outside_the_benchmark() -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = parse_params(raw)
    declared = raw["datasets"]["mosei_text"]
    assert (declared["source"], declared["format"], declared["kind"]) == (
        "url", "label_csv", "mosei",
    )  # fmt: skip
    assert (declared["text_model"], declared["max_text_tokens"]) == ("minilm", 50)
    assert [f["path"] for f in declared["files"]] == ["label.csv"]
    assert "mosei_text" not in params.benchmark.datasets
    with pytest.raises(ConfigError, match="datasets.x.max_text_tokens: expected an integer >= 2"):
        parse_dataset("x", {**declared, "max_text_tokens": 1}, "params.yaml")
    with pytest.raises(ConfigError, match="datasets.x.text: expected one of tokens, got 'feat"):
        parse_dataset("x", {**declared, "text": "features"}, "params.yaml")


@pytest.mark.skipif(not MOSEI_TEXT.is_file(), reason=f"MOSEI transcripts not at {MOSEI_TEXT}")
def test_the_real_mosei_transcripts_follow_the_standard_split() -> None:
    rows = read_rows(MOSEI_TEXT, "mosei")
    sizes = {split: int((rows.modes == split).sum()) for split in ("train", "valid", "test")}
    assert sizes == {"train": 16274, "valid": 1861, "test": 4653}
    assert len(set(rows.ids.tolist())) == 22788
    assert rows.labels.min() == -3.0 and rows.labels.max() == 3.0
    assert int((rows.labels == 0).sum()) == 4972


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 11 min on 2 cores: a slower machine may pass the 20-min limit
@pytest.mark.skipif(not MOSEI_TEXT.is_file(), reason=f"MOSEI transcripts not at {MOSEI_TEXT}")
@pytest.mark.skipif(
    os.environ.get("MSABENCH_DATA_SCALE_TESTS") != "1",
    reason="encodes all 22,788 MOSEI transcripts (11 min on 2 cores): set "
    "MSABENCH_DATA_SCALE_TESTS=1 (docs/development.md)",
)
def test_mosei_text_fetches_every_transcript(tmp_path: Path, monkeypatch) -> None:
    """params.yaml's mosei_text from the local copy (checked against the declared sha256):
    MiniLM encodes all 22,788 transcripts (11 minutes on 2 cores: a data-scale test, outside
    even the slow suite unless MSABENCH_DATA_SCALE_TESTS=1)."""
    monkeypatch.chdir(tmp_path)
    declared = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["datasets"]["mosei_text"]
    config = DatasetConfig("mosei_text", "url", "mosei", declared)
    fetch_dataset(config, tmp_path / "store", source_path=MOSEI_TEXT.parent)
    manifest = read_manifest(tmp_path / "store")
    assert {name: entry.n for name, entry in manifest.splits.items()} == {
        "train": 16274, "valid": 1861, "test": 4653,
    }  # fmt: skip
    assert manifest.max_lengths == {"text": 50} and manifest.modalities == ("text",)
    with np.load(tmp_path / "store" / "test.npz") as archive:
        lengths, tokens = archive["text_lengths"], archive["text_tokens"]
    assert np.array_equal(tokens[:, 1].sum(1), lengths) and lengths.min() >= 3
