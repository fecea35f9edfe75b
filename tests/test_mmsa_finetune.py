"""A user's MMSA pickle with `text_bert` and a local Hugging Face model directory: MISA, MMIM
and Self-MM fine-tune that model, as MMSA runs them. The model directory is a copy of the
built-in MiniLM (real weights), standing in for the user's bert-base-uncased."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_formats_pickles import fetch, mmsa_payload, write_pickle

from harness.data.loading import load_dataset
from harness.data.store import read_manifest
from harness.records import RunResult
from harness.reports.provenance import text_model_note
from harness.text_models import load_tokenizer, resolve
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
from methods import METHODS
from methods.common.pretrained_text import PretrainedTextEncoder

SENTENCES = ("a really good film", "boring and far too long", "i loved it", "not for me")


@pytest.fixture(scope="module")
def user_store(tmp_path_factory) -> tuple[Path, Path]:
    """(feature store, model directory): an MMSA-layout pickle whose text_bert holds the real
    WordPiece ids of short sentences (stored as float, as MMSA does), fetched with
    `text_model: <local directory>`."""
    work = tmp_path_factory.mktemp("user")
    model_dir = work / "my-bert-base-uncased"
    shutil.copytree(resolve("minilm").path, model_dir)
    tokenizer = load_tokenizer(resolve(str(model_dir)))
    payload = mmsa_payload()
    for split in payload.values():
        n, steps = split["text_bert"].shape[0], split["text_bert"].shape[2]
        texts = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=steps)
        rows = [encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"]]
        split["text_bert"] = np.stack([np.asarray(r) for r in rows], axis=1).astype(np.float64)
    store = work / "features" / "user_mosi"
    fetch("mmsa", write_pickle(work / "mosi.pkl", payload), store, text_model=str(model_dir))
    return store, model_dir


def test_the_store_names_the_local_model(user_store) -> None:
    store, model_dir = user_store
    info = read_manifest(store).text_tokens
    assert info is not None and info.model == str(model_dir) and info.revision == "local"
    assert info.name == "nreimers/MiniLM-L6-H384-uncased" and info.vocab_size == 30522


@pytest.mark.parametrize("name", ["misa", "mmim", "self_mm"])
def test_reference_bert_methods_fine_tune_the_local_model(name, user_store) -> None:
    store, _ = user_store
    spec, splits = load_dataset(store)
    method = METHODS.get(name)
    # one batch per step: the file's few training samples give MISA (2) and Self-MM (4) fewer
    # batches than their reference accumulation
    hparams = method.resolve_hparams("mosi", {"batch_size": 4, "grad_accumulation": 1})
    model = build_model(method, hparams, spec, seed=1111)
    encoder = next(m for m in model.modules() if isinstance(m, PretrainedTextEncoder))
    assert encoder.finetune and model.text_mode == "pretrained"
    before = encoder.model.embeddings.word_embeddings.weight.detach().clone()
    loop = LoopConfig(max_epochs=1, patience=1, device="cpu", progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("u", name, 1), 1111)
    after = encoder.model.embeddings.word_embeddings.weight.detach()
    assert not torch.equal(before, after)  # the encoder trained
    metrics, predictions = evaluate(outcome.model, splits["test"], 8, "cpu")
    assert np.isfinite(predictions).all() and np.isfinite(metrics["mae"])
    facts = method.text_model_facts(hparams, spec)
    assert facts["encoder"] == "fine-tuned" and facts["revision"] == "local"
    record = RunResult(
        method=name, dataset="user_mosi", seed=1111, split="test", metrics=metrics,
        valid_metrics=outcome.best_valid, hparams={}, config_hash="c", data_hash="d",
        git_commit="g", package_versions={}, wall_time_s=1.0, best_epoch=1, epochs_run=1,
        device="cpu", text_model=facts,
    )  # fmt: skip
    note = text_model_note([record])
    assert note.startswith(" Text model: nreimers/MiniLM-L6-H384-uncased@local (weights sha256 ")
    assert note.endswith(f"fine-tuned by {name}.")
