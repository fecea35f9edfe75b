"""CENET: the registry contract, its one loss term, the cross-modal enhancement module against a
hand computation, the injection point inside the real MiniLM, MMSA's optimiser groups, the
features path's stand-in BERT, and learning on the short synthetic benchmark."""

from __future__ import annotations

import inspect
import math

import pytest
import test_methods_binary as binary
import test_methods_contract as contract
import test_pretrained_text as pretrained_text
import torch
from learning_check import assert_learns_and_logs_terms

import methods.cenet  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.errors import ConfigError
from harness.training.loop import build_model
from harness.training.optimisers import main_optimizer
from methods import METHODS
from methods.cenet import ClassificationHead
from methods.common.cross_modal_enhancement import CrossModalEnhancement, encode_with_injection
from methods.common.pretrained_text import TEXT_ENCODER_GROUP

CONTRACT_CHECKS = [getattr(contract, name) for name in dir(contract) if name.startswith("test_")]
SMALL = {"text_hidden": 32, "text_heads": 2, "learning_rate": 1e-3}


def _build(spec, seed: int = 0, kind: str | None = None, **overrides):
    cls = METHODS.get("cenet")
    return build_model(cls, cls.resolve_hparams(kind or spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16):
    return take_batch(splits["train"], torch.arange(n))


# -- the registry-wide contract ---------------------------------------------------------------
@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda check: check.__name__)
def test_contract(check, request) -> None:
    if "tiny_data" in inspect.signature(check).parameters:
        check("cenet", request.getfixturevalue("tiny_data"))
    else:
        check("cenet")


# -- outputs, loss, learning ------------------------------------------------------------------
def test_features_path_predicts_one_finite_score_and_only_the_task_term(tiny_data) -> None:
    spec, splits = tiny_data
    model = _build(spec)
    assert model.text_mode == "features" and not hasattr(model, "text_encoder")
    batch = _batch(splits)
    outputs = model(batch)
    assert outputs["prediction"].shape == (16,) and torch.isfinite(outputs["prediction"]).all()
    assert outputs["text_cls"].shape == (16, model.hparams.text_hidden)
    terms = model.loss_terms(batch, outputs)
    assert set(terms) == {"task"} == set(model.loss_weights())
    expected = (outputs["prediction"] - batch.labels).abs().mean()  # MMSA's nn.L1Loss
    torch.testing.assert_close(terms["task"], expected)


def test_binary_kind_gives_probabilities_and_bce_and_learns(tiny_binary_data) -> None:
    spec, splits = tiny_binary_data
    model = _build(spec)
    assert (model.hparams.output_head, model.hparams.task_loss) == ("sigmoid", "bce")
    binary.test_binary_kind_trains_every_method_that_supports_it("cenet", tiny_binary_data)


def test_learns_on_the_short_synthetic_benchmark(short_synth_data) -> None:
    spec, splits = short_synth_data
    assert_learns_and_logs_terms(_build(spec, **SMALL), splits, "cenet", {"task"})


def test_defaults_follow_mmsa_per_kind() -> None:
    cls = METHODS.get("cenet")
    mosi, mosei, sims = (cls.resolve_hparams(k) for k in ("mosi", "mosei", "sims"))
    assert (mosi.learning_rate, mosi.weight_decay, mosi.adam_epsilon) == (1e-5, 1e-4, 3e-8)
    assert (mosi.batch_size, mosi.grad_clip, mosi.grad_clip_mode) == (64, 2.0, "norm")
    assert (mosi.learning_rate_bert, mosi.weight_decay_bert) == (1e-5, 1e-4)
    assert mosei.adam_epsilon == 1e-8
    assert (sims.learning_rate, sims.learning_rate_bert, sims.batch_size) == (2e-6, 2e-6, 32)
    assert (sims.weight_decay, sims.weight_decay_bert, sims.adam_epsilon) == (0.0, 0.0, 2e-8)


@pytest.mark.parametrize(
    "overrides",
    [{"nonverbal_padding": "zeros"}, {"injection_layer": -1}, {"text_heads": 5}],
)
def test_bad_hparams_are_refused(overrides) -> None:
    with pytest.raises(ConfigError):
        METHODS.get("cenet").resolve_hparams("mosi", overrides)


def test_injection_past_the_last_layer_is_refused(tiny_data) -> None:
    spec, _ = tiny_data
    _build(spec, injection_layer=2)  # after the stand-in's last (second) layer: allowed
    with pytest.raises(ConfigError, match="injection_layer"):
        _build(spec, injection_layer=3)


# -- the cross-modal enhancement module -------------------------------------------------------
def _enhancement(mask_padding: bool = True) -> CrossModalEnhancement:
    torch.manual_seed(0)
    module = CrossModalEnhancement(8, audio_dim=3, vision_dim=5, mask_padding=mask_padding)
    for parameter in module.parameters():  # away from BERT's small init, so every part counts
        torch.nn.init.normal_(parameter, std=0.3)
    return module


def _nonverbal(lengths_audio=(4, 2), lengths_vision=(1, 3)):
    audio, vision = torch.randn(2, 4, 3), torch.randn(2, 3, 5)
    audio_mask = torch.arange(4) < torch.tensor(lengths_audio).unsqueeze(1)
    vision_mask = torch.arange(3) < torch.tensor(lengths_vision).unsqueeze(1)
    return (
        audio * audio_mask.unsqueeze(-1),
        audio_mask,
        vision * vision_mask.unsqueeze(-1),
        vision_mask,
    )


def test_enhancement_equals_a_hand_computation_over_real_steps() -> None:
    module = _enhancement()
    text = torch.randn(2, 6, 8)
    audio, audio_mask, vision, vision_mask = _nonverbal()
    got = module(text, audio, audio_mask, vision, vision_mask)

    def linear(layer, x):
        return x @ layer.weight.T + layer.bias

    def attend(attention, transform, h, x):  # one sample, its real steps only
        x = linear(transform[2], torch.relu(linear(transform[0], x)))
        q, k, v = linear(attention.query, h), linear(attention.key, x), linear(attention.value, x)
        scores = 8.0 * q @ k.T  # MMSA: softmax(QK^T * 8)
        weights = torch.exp(scores - scores.max(dim=1, keepdim=True).values)
        return (weights / weights.sum(dim=1, keepdim=True)) @ v

    for i in range(2):
        va = attend(module.vision_attention, module.vision_transform, text[i],
                    vision[i, : int(vision_mask[i].sum())])  # fmt: skip
        aa = attend(module.audio_attention, module.audio_transform, text[i],
                    audio[i, : int(audio_mask[i].sum())])  # fmt: skip
        expected = text[i] + linear(module.merge, torch.cat([va, aa], dim=-1))
        torch.testing.assert_close(got[i], expected, rtol=1e-4, atol=1e-4)


def test_masked_enhancement_ignores_padding_and_mmsa_form_reads_it() -> None:
    text = torch.randn(2, 6, 8)
    audio, audio_mask, vision, vision_mask = _nonverbal()
    noisy_audio = audio + 5.0 * (~audio_mask).unsqueeze(-1)  # change only the padded steps
    for mask_padding in (True, False):
        module = _enhancement(mask_padding)
        clean = module(text, audio, audio_mask, vision, vision_mask)
        noisy = module(text, noisy_audio, audio_mask, vision, vision_mask)
        assert torch.equal(clean[0], noisy[0])  # row 0's audio has no padding
        assert torch.allclose(clean[1], noisy[1]) == mask_padding


def test_enhancement_is_finite_without_nonverbal_steps() -> None:
    module = _enhancement()
    text = torch.randn(2, 6, 8)
    audio, audio_mask, vision, vision_mask = _nonverbal((0, 0), (0, 2))
    assert torch.isfinite(module(text, audio, audio_mask, vision, vision_mask)).all()
    empty = module(text, torch.zeros(2, 0, 3), torch.zeros(2, 0, dtype=torch.bool),
                   vision, vision_mask)  # fmt: skip
    assert torch.isfinite(empty).all()


def test_ce_and_head_have_mmsa_parameter_counts() -> None:
    """MMSA's CE + BertClassificationHead, counted from MMSA's class at MOSI's dims (audio 5,
    vision 20): 6,517,249 at bert-base's 768, 1,636,609 at MiniLM's 384."""
    for hidden, expected in ((768, 6_517_249), (384, 1_636_609)):
        blocks = (CrossModalEnhancement(hidden, 5, 20), ClassificationHead(hidden, 0.1))
        assert sum(p.numel() for b in blocks for p in b.parameters()) == expected


def test_injection_runs_between_the_layers_it_names(tiny_data) -> None:
    spec, splits = tiny_data
    model = _build(spec, text_layers=3, injection_layer=2).eval()
    batch = _batch(splits, 6)
    embedded, token_mask = model._embed_features(batch)
    layers = model.standin.encoder.layer
    seen = []
    with torch.no_grad():
        states = encode_with_injection(
            layers, embedded, token_mask, lambda h: seen.append(h) or h, 2
        )
        expected = embedded
        mask = (1.0 - token_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for index, layer in enumerate(layers):
            if index == 2:
                torch.testing.assert_close(seen[0], expected)  # CE sees layer 1's output
            expected = layer(expected, mask)
    assert len(seen) == 1
    torch.testing.assert_close(states, expected)


# -- MMSA's optimiser groups ------------------------------------------------------------------
def _group_of(optimizer, parameter):
    return next(g for g in optimizer.param_groups if any(p is parameter for p in g["params"]))


def test_groups_decay_all_of_ce_and_spare_other_biases_and_norms(tiny_data) -> None:
    spec, _ = tiny_data
    model = _build(spec, weight_decay=1e-3)
    optimizer = main_optimizer(model)
    assert all(group["eps"] == 3e-8 for group in optimizer.param_groups)
    decay = {
        model.enhancement.merge.bias: 1e-3,  # CE: every parameter decayed (MMSA's second group)
        model.enhancement.audio_attention.query.weight: 1e-3,
        model.head.dense.weight: 1e-3,
        model.head.dense.bias: 0.0,
        model.standin.encoder.layer[0].output.LayerNorm.weight: 0.0,
        model.text_projection.weight: 1e-3,
    }
    for parameter, weight_decay in decay.items():
        assert _group_of(optimizer, parameter)["weight_decay"] == weight_decay
    grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert id(model.standin.embeddings.word_embeddings.weight) not in grouped  # never read


# -- the pretrained path (real MiniLM) --------------------------------------------------------
def test_token_path_injects_into_minilm_after_its_first_layer(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    model = _build(spec).eval()
    assert model.text_mode == "pretrained"
    bert = model.text_encoder.model
    tokens = _batch(splits, 6).tokens
    seen = []
    model.enhancement.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    with torch.no_grad():
        torch.nn.init.zeros_(model.enhancement.merge.weight)  # a zero shift: plain BERT
        torch.nn.init.zeros_(model.enhancement.merge.bias)
        outputs = model(_batch(splits, 6))
        reference = bert(input_ids=tokens.ids, attention_mask=tokens.mask,
                         token_type_ids=tokens.segments, output_hidden_states=True)  # fmt: skip
    torch.testing.assert_close(seen[0], reference.hidden_states[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outputs["text_cls"], reference.last_hidden_state[:, 0],
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_token_path_contract(tiny_token_data) -> None:
    """msabench's contract for the BERT methods (shapes, range, finite terms, a falling loss,
    determinism under a seed), with the real MiniLM."""
    pretrained_text.test_contract_with_tokens("cenet", tiny_token_data)


def test_token_path_trains_bert_but_not_its_embeddings(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    model = _build(spec, learning_rate_bert=1e-3)
    bert = model.text_encoder.model
    assert not any(p.requires_grad for p in bert.embeddings.parameters())  # MMSA: no_grad
    assert not any(p.requires_grad for p in bert.pooler.parameters())  # never read
    optimizer = main_optimizer(model)
    layer = bert.encoder.layer[0].attention.self.query
    group = _group_of(optimizer, layer.weight)
    assert group["name"] == TEXT_ENCODER_GROUP and group["lr"] == 1e-3
    assert group["weight_decay"] == 1e-4
    assert _group_of(optimizer, layer.bias)["weight_decay"] == 0.0
    before = {"embeddings": bert.embeddings.word_embeddings.weight.clone(),
              "layer": layer.weight.detach().clone()}  # fmt: skip
    model.train()
    batch = _batch(splits, 8)
    model.loss_terms(batch, model(batch))["task"].backward()
    optimizer.step()
    assert torch.equal(bert.embeddings.word_embeddings.weight, before["embeddings"])
    assert not torch.equal(layer.weight, before["layer"])
    assert math.isfinite(float(model(batch)["prediction"].detach().sum()))
