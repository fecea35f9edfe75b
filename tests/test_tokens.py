"""Token ids of the text modality: MMSA's `text_bert` through the reader, the store and batching,
their checks, old manifests without them, and [UNK] in place of dropped text tokens."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_formats_pickles import fetch, write_pickle

from harness.data.formats import FORMATS
from harness.data.loading import load_dataset, take_batch, take_tokens
from harness.data.missing import MissingMasks, drop_modalities
from harness.data.store import MANIFEST_NAME, read_manifest, write_store
from harness.data.text_encoding import token_info
from harness.data.types import SPLITS
from harness.errors import DataError
from harness.text_models import resolve

SIZES = {"train": 6, "valid": 4, "test": 4}
STEPS = {"text": 7, "audio": 5, "vision": 4}
DIMS = {"text": 8, "audio": 3, "vision": 2}
VOCAB, UNK = 30522, 100


def _split(split: str) -> dict:
    """One MMSA split with text_bert (N, 3, L) float64: [CLS] ids [SEP], prefix mask, segment 0."""
    rng = np.random.default_rng(SPLITS.index(split))
    n, steps = SIZES[split], STEPS["text"]
    real = rng.integers(2, steps, size=n, endpoint=True)
    real[0] = 3  # row 0 is short, the last row full (take_batch trims to the chosen rows)
    real[-1] = steps
    mask = np.arange(steps)[None, :] < real[:, None]
    ids = np.where(mask, rng.integers(999, VOCAB, size=(n, steps)), 0)
    ids[:, 0], ids[np.arange(n), real - 1] = 101, 102
    ids[1, 1] = VOCAB - 1  # the vocabulary's last id is valid
    text_bert = np.stack([ids, mask, np.zeros_like(ids)], axis=1).astype(np.float64)
    lengths = {m: rng.integers(1, STEPS[m], size=n, endpoint=True) for m in ("audio", "vision")}
    out = {m: rng.uniform(0.5, 1.5, (n, STEPS[m], DIMS[m])).astype(np.float32) for m in STEPS}
    for m, length in lengths.items():
        out[m][np.arange(STEPS[m])[None, :] >= length[:, None]] = 0
        out[f"{m}_lengths"] = length.astype(np.int64)
    return {
        **out,
        "id": [f"{split}video{i}$_${i}" for i in range(n)],
        "text_bert": text_bert,
        "regression_labels": rng.uniform(-3, 3, size=n).astype(np.float32),
    }


@pytest.fixture()
def payload() -> dict:
    return {split: _split(split) for split in SPLITS}


@pytest.fixture(scope="module")
def info():
    """The built-in MiniLM's TokenInfo for L = STEPS["text"] (what the `file` source resolves)."""
    return token_info(resolve("minilm"), STEPS["text"])


def _read(tmp_path: Path, payload: dict) -> dict:
    """The mmsa reader's splits of `payload` written as a pickle."""
    return FORMATS.get("mmsa")(write_pickle(tmp_path / "mmsa.pkl", payload), {"kind": "mosi"})


def _raises(message: str):
    return pytest.raises(DataError, match=re.escape(message))


def test_mmsa_tokens_round_trip(tmp_path: Path, payload: dict) -> None:
    fetch("mmsa", write_pickle(tmp_path / "MOSI" / "unaligned_50.pkl", payload), tmp_path / "s")
    info = read_manifest(tmp_path / "s").text_tokens
    assert info is not None and (info.model, info.vocab_size, info.unk_id) == ("minilm", VOCAB, UNK)
    assert (info.cls_id, info.sep_id, info.pad_id, info.max_length) == (101, 102, 0, STEPS["text"])
    spec, data = load_dataset(tmp_path / "s")
    assert spec.tokens == info
    for split, rows in (("train", [0, 2, 3]), ("train", [5, 1]), ("valid", [3, 0, 1, 2])):
        text_bert = payload[split]["text_bert"]
        index = torch.tensor(rows)
        batch = take_batch(data[split], index)
        sums = text_bert[rows, 1].sum(axis=1).astype(np.int64)
        longest = int(sums.max())
        expected = text_bert[rows][:, :, :longest].astype(np.int64)
        tokens = batch.tokens
        assert tokens is not None and tokens.unk_id == UNK
        for got, row in ((tokens.ids, 0), (tokens.mask, 1), (tokens.segments, 2)):
            assert got.dtype == torch.int64 and got.shape == (len(rows), longest)
            np.testing.assert_array_equal(got.numpy(), expected[:, row])
        np.testing.assert_array_equal(batch.lengths["text"].numpy(), sums)
        np.testing.assert_array_equal(tokens.lengths.numpy(), sums)
        assert batch.features["text"].shape[1] == longest
    assert take_batch(data["train"], torch.tensor([0])).tokens.ids.shape == (1, 3)


def _mutate(splits: dict, split: str, row: int, step: int, what: int, value: int) -> None:
    tokens = splits[split].tokens.copy()
    tokens[row, what, step] = value
    splits[split] = replace(splits[split], tokens=tokens)


@pytest.mark.parametrize(
    ("what", "step", "value", "message"),
    [
        (0, 1, VOCAB, f"split 'valid': key 'text_tokens' token id {VOCAB} at row 2 is outside"),
        (0, 1, -1, "split 'valid': key 'text_tokens' token id -1 at row 2 is outside"),
        (1, 0, 2, "split 'valid': key 'text_tokens' attention mask at row 2 is not 0/1"),
        (2, 0, 3, "split 'valid': key 'text_tokens' segment ids at row 2 are not 0/1"),
    ],
)
def test_write_store_checks_tokens(
    tmp_path: Path, payload: dict, info, what: int, step: int, value: int, message: str
) -> None:
    splits = _read(tmp_path, payload)
    _mutate(splits, "valid", 2, step, what, value)
    with _raises(message) as caught:
        write_store(tmp_path / "s", "toy", "mosi", splits, {}, [], tokens=info)
    assert "\n" not in str(caught.value) and not (tmp_path / "s").exists()


def test_mask_must_match_text_lengths(tmp_path: Path, payload: dict, info) -> None:
    splits = _read(tmp_path, payload)
    last = int(splits["test"].lengths["text"][1]) - 1
    _mutate(splits, "test", 1, last, 1, 0)  # one real token fewer than the text length
    message = f"split 'test': key 'text_tokens' attention mask at row 1 has {last} real tokens but"
    with _raises(message):
        write_store(tmp_path / "s", "toy", "mosi", splits, {}, [], tokens=info)


def test_tokens_need_their_model_and_every_split(tmp_path: Path, payload: dict, info) -> None:
    splits = _read(tmp_path, payload)
    with _raises("split 'train': key 'text_tokens' given without the text model it uses"):
        write_store(tmp_path / "s", "toy", "mosi", splits, {}, [])
    splits["valid"] = replace(splits["valid"], tokens=None)
    with _raises("split 'valid': key 'text_tokens' missing; expected tokens and a text modality"):
        write_store(tmp_path / "s", "toy", "mosi", splits, {}, [], tokens=info)


def test_mmsa_rejects_bad_text_bert(tmp_path: Path, payload: dict) -> None:
    payload["train"]["text_bert"][4, 0, 1] = 2000.5
    with _raises("split 'train': key 'text_bert' row 4 holds a non-integer token id"):
        _read(tmp_path, payload)
    payload["train"]["text_bert"][4, 0, 1] = 2000
    payload["test"]["text_bert"][3, 1, 1] = 0  # mask [1, 0, 1, ...]
    with _raises("split 'test': key 'text_tokens' attention mask at row 3 is not prefix-shaped"):
        fetch("mmsa", write_pickle(tmp_path / "bad.pkl", payload), tmp_path / "s")


def test_manifest_without_text_tokens_still_reads(tmp_path: Path, payload: dict) -> None:
    for split in SPLITS:
        del payload[split]["text_bert"]
    fetch("mmsa", write_pickle(tmp_path / "x.pkl", payload), tmp_path / "s")
    path = tmp_path / "s" / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    assert manifest.pop("text_tokens") is None
    path.write_text(json.dumps(manifest))
    assert read_manifest(tmp_path / "s").text_tokens is None
    spec, data = load_dataset(tmp_path / "s")
    assert spec.tokens is None and take_batch(data["test"], torch.tensor([0, 1])).tokens is None


def test_take_tokens_trims_to_the_chosen_rows() -> None:
    counts = [5, 2, 3, 8]
    steps = torch.arange(8)
    mask = (steps[None, :] < torch.tensor(counts)[:, None]).long()
    ids = (torch.arange(32).reshape(4, 8) + 1000) * mask
    segments = torch.ones_like(mask) * mask
    tokens = torch.stack([ids, mask, segments], dim=1)
    batch = take_tokens(tokens, torch.tensor([2, 1]), UNK)
    assert batch.ids.shape == (2, 3) and batch.unk_id == UNK
    assert torch.equal(batch.ids, ids[[2, 1], :3]) and torch.equal(batch.mask, mask[[2, 1], :3])
    assert torch.equal(batch.segments, segments[[2, 1], :3])
    assert torch.equal(batch.lengths, torch.tensor([3, 2]))
    assert take_tokens(tokens, torch.tensor([0, 3]), UNK).ids.shape == (2, 8)


def _unk_where(tokens, dropped: torch.Tensor) -> torch.Tensor:
    """The ids with every real token where `dropped` replaced by [UNK], but the first and last."""
    steps = torch.arange(tokens.ids.shape[1]).unsqueeze(0)
    inner = (tokens.mask == 1) & (steps > 0) & (steps < (tokens.lengths - 1).unsqueeze(1))
    return torch.where(dropped & inner, torch.full_like(tokens.ids, UNK), tokens.ids)


def test_missing_text_becomes_unk(tiny_token_data) -> None:
    spec, data = tiny_token_data
    train = data["train"]
    batch = take_batch(train, torch.arange(5, 25))
    tokens = batch.tokens
    assert tokens is not None and tokens.unk_id == UNK and not (tokens.ids == UNK).any()
    assert torch.equal(batch.lengths["text"], tokens.lengths)

    def same_except_ids(got) -> None:
        assert torch.equal(got.mask, tokens.mask) and torch.equal(got.segments, tokens.segments)

    dropped = drop_modalities(batch, ("text",)).tokens
    same_except_ids(dropped)
    everything = torch.ones_like(tokens.ids, dtype=torch.bool)
    assert torch.equal(dropped.ids, _unk_where(tokens, everything))
    assert torch.equal(dropped.ids[tokens.mask == 0], tokens.ids[tokens.mask == 0])  # padding
    first, last = dropped.ids[:, 0], dropped.ids.gather(1, (tokens.lengths - 1).unsqueeze(1))
    assert (first == 101).all() and (last == 102).all()
    assert int((dropped.ids == UNK).sum()) == int((tokens.lengths - 2).clamp(min=0).sum()) > 0
    assert torch.equal(drop_modalities(batch, ("audio",)).tokens.ids, tokens.ids)
    assert torch.equal(drop_modalities(batch, ("audio", "vision")).tokens.ids, tokens.ids)

    masks = MissingMasks(train.lengths, spec.max_lengths, seed=4)
    assert torch.equal(masks.apply(batch, 0.0).tokens.ids, tokens.ids)
    for rate in (0.5, 0.9):
        applied = masks.apply(batch, rate)
        same_except_ids(applied.tokens)
        keep = masks.keep(rate)["text"][batch.index][:, : tokens.ids.shape[1]]
        expected = _unk_where(tokens, ~keep)
        assert torch.equal(applied.tokens.ids, expected) and (expected == UNK).any()
        zeroed = (applied.features["text"] == 0).all(dim=2) & (tokens.mask == 1)
        assert torch.equal(zeroed, ~keep & (tokens.mask == 1))  # text steps and tokens aligned


def test_a_context_pair_is_encoded_as_the_tokenizer_does_and_loses_its_oldest_tokens() -> None:
    """tokenize(texts, contexts=...): [CLS] context [SEP] text [SEP] with segment ids 0 then 1,
    the tokenizer's own pair encoding when it fits; when too long, the context's start goes
    and the text stays whole."""
    from harness.data.text_encoding import tokenize
    from harness.text_models import load_tokenizer

    model = resolve("minilm")
    tokenizer = load_tokenizer(model)
    context, text = "we have a meeting at noon. again", "oh great, another meeting"
    tokens = tokenize([text], model, 20, contexts=[context])
    own = tokenizer(context, text, padding="max_length", max_length=20)
    assert tokens[0].tolist() == [own["input_ids"], own["attention_mask"], own["token_type_ids"]]
    short = tokenize([text], model, 12, contexts=[context])[0]
    words = tokenizer.convert_ids_to_tokens(short[0].tolist())
    assert words == ["[CLS]", "at", "noon", ".", "again", "[SEP]",
                     "oh", "great", ",", "another", "meeting", "[SEP]"]  # fmt: skip
    assert short[2].tolist() == [0] * 6 + [1] * 6 and short[1].sum() == 12
    alone = tokenize([text], model, 12)[0]
    assert alone[2].sum() == 0 and alone[1].sum() == 7  # [CLS] 5 words [SEP]
    cut = tokenize(["one two three four five six"], model, 6, contexts=["before"])[0]
    assert tokenizer.convert_ids_to_tokens(cut[0].tolist()) == [
        "[CLS]", "[SEP]", "one", "two", "three", "[SEP]",
    ]  # fmt: skip
