"""The pretrained text encoder (methods/common/pretrained_text.py) with the real MiniLM weights:
equal to transformers' own outputs, frozen vs fine-tuned, its optimiser group, the methods that
use it by default (MISA, MMIM, Self-MM) and the switch every method has."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from test_methods_contract import contract_rate

from harness.data.loading import take_batch
from harness.errors import ConfigError
from harness.text_models import BUILTINS, load_encoder, resolve
from harness.training.loop import build_model
from harness.training.optimisers import text_encoder_groups
from methods import METHODS
from methods.common.pretrained_text import TEXT_ENCODER_GROUP, PretrainedTextEncoder

POOLING_METHODS = {"misa": "mean", "mmim": "cls", "self_mm": "cls", "almt": "tokens",
                   "tfr_net": "tokens", "cenet": "tokens", "tetfn": "tokens"}  # fmt: skip


def _batch(splits, n: int = 12):
    return take_batch(splits["train"], torch.arange(n))


@pytest.fixture(scope="module")
def reference_model():
    """transformers' own BertModel of the built-in MiniLM, in eval mode."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(resolve("minilm").path), local_files_only=True).eval()


def test_builtin_minilm_is_the_pinned_revision() -> None:
    model = resolve("minilm")
    assert model.sha256 == BUILTINS["minilm"].sha256
    assert (model.name, model.revision) == ("sentence-transformers/all-MiniLM-L6-v2", "1110a243")
    assert (model.hidden_size, model.vocab_size) == (384, 30522)


@pytest.mark.parametrize("output", ["cls", "mean", "tokens"])
def test_outputs_equal_transformers_own(output, tiny_token_data, reference_model) -> None:
    spec, splits = tiny_token_data
    tokens = _batch(splits).tokens
    encoder = PretrainedTextEncoder(spec.tokens, output, finetune=False).eval()
    with torch.no_grad():
        states = reference_model(
            input_ids=tokens.ids, attention_mask=tokens.mask, token_type_ids=tokens.segments
        ).last_hidden_state
        got = encoder(tokens)
    mask = tokens.mask.unsqueeze(-1).float()
    expected = {
        "cls": states[:, 0],
        "mean": (states * mask).sum(1) / mask.sum(1),
        "tokens": states * mask,
    }[output]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_stored_text_features_are_the_frozen_token_states(tiny_token_store, reference_model):
    """The fetch-time encoding (harness/data/text_encoding.py) is the model's own output."""
    from harness.data.loading import load_dataset

    spec, splits = load_dataset(tiny_token_store, standardize=False)
    batch = _batch(splits, 8)
    tokens = batch.tokens
    with torch.no_grad():
        states = reference_model(
            input_ids=tokens.ids, attention_mask=tokens.mask, token_type_ids=tokens.segments
        ).last_hidden_state
    expected = states * tokens.mask.unsqueeze(-1)
    torch.testing.assert_close(batch.features["text"], expected, rtol=1e-4, atol=1e-4)


def test_frozen_encoder_gets_no_gradient_and_no_dropout(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    tokens = _batch(splits).tokens
    encoder = PretrainedTextEncoder(spec.tokens, "cls", finetune=False)
    encoder.train()
    first, second = encoder(tokens), encoder(tokens)
    assert torch.equal(first, second)  # eval mode kept: no dropout
    assert not first.requires_grad
    assert not any(p.requires_grad for p in encoder.parameters())


def test_finetuned_encoder_trains_in_its_own_group(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    cls = METHODS.get("self_mm")
    hparams = cls.resolve_hparams(
        "mosi",
        {"learning_rate_bert": 2e-4, "weight_decay_bert": 0.01, "bert_no_decay_norms": False},
    )
    model = build_model(cls, hparams, spec, seed=0)
    groups = text_encoder_groups(model)
    encoder_group = [g for g in groups if g.get("name") == TEXT_ENCODER_GROUP]
    assert len(encoder_group) == 1
    assert encoder_group[0]["lr"] == 2e-4 and encoder_group[0]["weight_decay"] == 0.01
    encoder_ids = {id(p) for p in model.text_encoder.parameters()}
    assert {id(p) for p in encoder_group[0]["params"]} == encoder_ids
    others = [id(p) for g in groups if g is not encoder_group[0] for p in g["params"]]
    assert not encoder_ids & set(others)
    optimizer = torch.optim.Adam(groups, lr=hparams.learning_rate)
    weight = model.text_encoder.model.embeddings.word_embeddings.weight
    before = weight.detach().clone()
    model.train()
    batch = _batch(splits)
    loss = torch.stack(list(model.loss_terms(batch, model(batch)).values())).sum()
    loss.backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(before, weight.detach())


def test_bias_and_layernorm_weights_can_skip_weight_decay(tiny_token_data) -> None:
    spec, _ = tiny_token_data
    cls = METHODS.get("self_mm")  # MMSA's Self-MM groups BERT so (bert_no_decay_norms: true)
    hparams = cls.resolve_hparams("mosi", {"weight_decay_bert": 0.01})
    model = build_model(cls, hparams, spec, seed=0)
    groups = {g.get("name"): g for g in text_encoder_groups(model)}
    decayed, exempt = groups[TEXT_ENCODER_GROUP], groups[f"{TEXT_ENCODER_GROUP}_no_decay"]
    assert decayed["weight_decay"] == 0.01 and exempt["weight_decay"] == 0.0
    assert decayed["lr"] == exempt["lr"] == hparams.learning_rate_bert
    names = {id(p): n for n, p in model.text_encoder.named_parameters()}
    exempt_names = [names[id(p)] for p in exempt["params"]]
    assert exempt_names and all("bias" in n or "LayerNorm" in n for n in exempt_names)
    assert all(
        "bias" not in names[id(p)] and "LayerNorm" not in names[id(p)] for p in decayed["params"]
    )
    assert len(decayed["params"]) + len(exempt["params"]) == len(names)


@pytest.mark.parametrize("name", sorted(POOLING_METHODS))
def test_reference_bert_methods_use_the_encoder_by_default(name, tiny_token_data) -> None:
    spec, splits = tiny_token_data
    cls = METHODS.get(name)
    model = build_model(cls, cls.resolve_hparams("mosi"), spec, seed=0)
    assert model.text_mode == "pretrained"
    encoders = [m for m in model.modules() if isinstance(m, PretrainedTextEncoder)]
    assert len(encoders) == 1 and encoders[0].output == POOLING_METHODS[name]
    assert encoders[0].finetune


@pytest.mark.parametrize("name", sorted(POOLING_METHODS))
def test_contract_with_tokens(name, tiny_token_data) -> None:
    """Shapes, range, finite named losses, a falling loss and determinism under a seed."""
    spec, splits = tiny_token_data
    cls = METHODS.get(name)
    rate = contract_rate(cls, "mosi")  # the registry contract's rate (ALMT collapses at 3e-3)
    hparams = cls.resolve_hparams("mosi", {"learning_rate": rate, "learning_rate_bert": 1e-4})
    batch = _batch(splits)
    model = build_model(cls, hparams, spec, seed=0)
    model.eval()
    with torch.no_grad():
        outputs = model(batch)
    low, high = spec.label_range
    prediction = outputs["prediction"]
    assert prediction.shape == (batch.size,) and torch.isfinite(prediction).all()
    assert ((prediction >= low) & (prediction <= high)).all()
    again = build_model(cls, hparams, spec, seed=0).eval()
    with torch.no_grad():
        assert torch.equal(again(batch)["prediction"], prediction)
    optimizer = torch.optim.Adam(text_encoder_groups(model), lr=hparams.learning_rate)

    def total() -> torch.Tensor:
        terms = model.loss_terms(batch, model(batch))
        assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
        return torch.stack(list(terms.values())).sum()

    model.start_epoch(1)  # both measured at an epoch's start (MMIM's entropy memory empty)
    with torch.no_grad():
        model.eval()
        start = float(total())
    model.train()
    for _ in range(8):
        optimizer.zero_grad()
        model.extra_step(batch)
        total().backward()
        optimizer.step()
    model.start_epoch(2)
    model.eval()
    with torch.no_grad():
        assert float(total()) < start


def test_features_switch_keeps_the_feature_path(tiny_token_data) -> None:
    spec, _ = tiny_token_data
    cls = METHODS.get("misa")
    model = build_model(cls, cls.resolve_hparams("mosi", {"text_encoder": "features"}), spec, 0)
    assert model.text_mode == "features"
    assert not any(isinstance(m, PretrainedTextEncoder) for m in model.modules())


@pytest.mark.parametrize("finetune", [True, False])
def test_any_method_can_read_pretrained_token_states(finetune, tiny_token_data) -> None:
    """LF-DNN with `text_encoder: pretrained`: its text network reads the encoder's states."""
    spec, splits = tiny_token_data
    cls = METHODS.get("lf_dnn")
    hparams = cls.resolve_hparams("mosi", {"text_encoder": "pretrained", "text_finetune": finetune})
    model = build_model(cls, hparams, spec, seed=0)
    assert model.token_text_encoder is not None and model.token_text_encoder.output == "tokens"
    batch = _batch(splits)
    prepared = model.prepare_batch(batch)
    assert prepared.features["text"].shape == (*batch.tokens.ids.shape, 384)
    assert torch.equal(prepared.lengths["text"], batch.tokens.mask.sum(1))
    assert prepared.features["text"].requires_grad == finetune
    names = [g.get("name") for g in text_encoder_groups(model)]
    assert (TEXT_ENCODER_GROUP in names) == finetune


def test_auto_without_tokens_is_features(tiny_data) -> None:
    spec, _ = tiny_data
    assert spec.tokens is None
    cls = METHODS.get("mmim")
    assert build_model(cls, cls.resolve_hparams("mosi"), spec, 0).text_mode == "features"


@pytest.mark.parametrize("name", ["misa", "lf_dnn"])
def test_pretrained_on_a_dataset_without_tokens_is_a_clear_error(name, tiny_data) -> None:
    spec, _ = tiny_data
    cls = METHODS.get(name)
    hparams = cls.resolve_hparams("mosi", {"text_encoder": "pretrained"})
    with pytest.raises(ConfigError, match=rf"methods\.{name}\.hparams\.text_encoder.*no"):
        build_model(cls, hparams, spec, 0)


def test_unknown_text_encoder_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="text_encoder: expected one of auto, features"):
        METHODS.get("tfn").resolve_hparams("mosi", {"text_encoder": "bert"})


def test_changed_weights_are_refused(tiny_token_data) -> None:
    spec, _ = tiny_token_data
    other = dataclasses.replace(spec.tokens, sha256="0" * 64)
    with pytest.raises(ConfigError, match="differ from 000000000000"):
        PretrainedTextEncoder(other, "cls", finetune=False)


def test_a_local_model_directory_resolves_and_loads(tmp_path) -> None:
    """A user's Hugging Face directory (here a copy of MiniLM) is named by its path."""
    source = resolve("minilm").path
    target = tmp_path / "my-bert"
    shutil.copytree(source, target)
    model = resolve(str(target))
    assert model.sha256 == BUILTINS["minilm"].sha256 and model.revision == "local"
    assert model.name == "nreimers/MiniLM-L6-H384-uncased"  # config.json's _name_or_path
    assert load_encoder(model).config.hidden_size == 384
    (target / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="holds no weights"):
        resolve.__wrapped__(str(target))


def test_a_directory_that_is_not_a_model_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "notes.json").write_text(json.dumps({}))
    with pytest.raises(ConfigError, match="not 'minilm', 'hub:<name>' or a Hugging Face"):
        resolve.__wrapped__(str(tmp_path))
