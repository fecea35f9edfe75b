"""ALMT: the registry contract, its one loss term, equality with MMSA's ALMT on copied weights, the
AHL layer against a hand computation, language guidance layer by layer, padding masks, the token
path, MMSA's defaults, and learning on the short synthetic benchmark."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest
import test_methods_contract as contract
import torch
from learning_check import assert_learns_and_logs_terms
from torch.nn import functional as F

import methods.almt  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.data.spec import DataSpec
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import build_model
from harness.training.optimisers import text_encoder_groups
from methods import METHODS
from methods.almt import ALMT
from methods.common.hyper_modality import HyperModalityLayer, HyperModalityLearning
from methods.common.pretrained_text import TEXT_ENCODER_GROUP, PretrainedTextEncoder

CONTRACT_CHECKS = [getattr(contract, name) for name in dir(contract) if name.startswith("test_")]
# small sizes for the tests (the default benchmark's are twice as wide)
SMALL = {
    "embedding_dim": 32,
    "embedding_hidden_dim": 32,
    "attention_head_dim": 16,
    "embedding_heads_text": 2,
    "embedding_heads_audio": 2,
    "embedding_heads_vision": 2,
    "text_encoder_heads": 2,
    "ahl_heads": 2,
    "fusion_heads": 2,
    "fusion_hidden_dim": 32,
}


def _model(spec, seed: int = 0, **overrides) -> ALMT:
    return build_model(ALMT, ALMT.resolve_hparams(spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


# -- the registry-wide contract, run for ALMT ------------------------------------------------
@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda check: check.__name__)
def test_contract(check, request) -> None:
    if "tiny_data" in inspect.signature(check).parameters:
        check("almt", request.getfixturevalue("tiny_data"))
    else:
        check("almt")


# -- outputs and the loss --------------------------------------------------------------------
def test_outputs_have_the_documented_shapes(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec, **SMALL), _batch(splits)
    outputs = model(batch)
    assert outputs["prediction"].shape == (16,) and torch.isfinite(outputs["prediction"]).all()
    assert outputs["fused"].shape == (16, 32)
    for name in ("hyper", "tokens_text", "tokens_audio", "tokens_vision"):
        assert outputs[name].shape == (16, 8, 32)


def test_the_one_term_is_the_mse_task_loss(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec, **SMALL), _batch(splits)
    outputs = model(batch)
    terms = model.loss_terms(batch, outputs)
    assert set(terms) == {"task"} and model.loss_weights() == {"task": 1.0}
    torch.testing.assert_close(terms["task"], F.mse_loss(outputs["prediction"], batch.labels))


# -- equality with MMSA's ALMT -----------------------------------------------------------------
# MMSA's ALMT (models/singleTask/ALMT.py at thuiar/MMSA a94e65d) at the sizes below, BERT replaced
# by the identity, its parameters filled from torch.Generator().manual_seed(0) in the sorted order
# of msabench's names (randn x fan_in^-0.5 for matrices, x 0.5 for vectors), the inputs drawn
# next from the same generator; row 1 has 2/3/4 real steps and zeros after them
MMSA_SIZES = {
    "embedding_dim": 128,
    "embedding_hidden_dim": 32,
    "embedding_length": 8,
    "embedding_depth_vision": 2,
    "embedding_heads_text": 2,
    "embedding_heads_audio": 2,
    "embedding_heads_vision": 2,
    "text_encoder_heads": 4,
    "ahl_depth": 3,
    "ahl_heads": 4,
    "fusion_hidden_dim": 48,
    "fusion_heads": 2,
    "fusion_depth": 2,
}
MMSA_PADDING_READ = [2.821904, 2.785769]  # MMSA on the padded batch (it attends padding)
MMSA_ROW1_UNPADDED = 2.73121  # MMSA on row 1 cut to its real steps


def _mmsa_filled(mask_padding: bool) -> tuple[ALMT, Batch]:
    dims, steps = {"text": 7, "audio": 5, "vision": 6}, {"text": 4, "audio": 6, "vision": 5}
    spec = DataSpec("mosi", dims, steps, (-3.0, 3.0))
    overrides = {**MMSA_SIZES, "text_encoder": "features", "mask_padding": mask_padding}
    model = _model(spec, **overrides).eval()
    generator = torch.Generator().manual_seed(0)
    state = model.state_dict()
    for name in sorted(state):
        shape = state[name].shape
        scale = shape[-1] ** -0.5 if len(shape) > 1 else 0.5
        state[name] = torch.randn(shape, generator=generator) * scale
    model.load_state_dict(state)
    features = {m: torch.randn(2, steps[m], dims[m], generator=generator) for m in dims}
    lengths = {"text": 2, "audio": 3, "vision": 4}
    for m, n in lengths.items():
        features[m][1, n:] = 0.0
    lengths = {m: torch.tensor([steps[m], n]) for m, n in lengths.items()}
    return model, Batch(features, lengths, torch.zeros(2), torch.arange(2))


def test_prediction_equals_mmsa_almt() -> None:
    """Masked (the default): row 1 as MMSA predicts it from its real steps alone; with
    mask_padding false: MMSA's own reading of the padded batch."""
    with torch.no_grad():
        model, batch = _mmsa_filled(mask_padding=True)
        masked = model(batch)["prediction"]
        model, batch = _mmsa_filled(mask_padding=False)
        unmasked = model(batch)["prediction"]
    expected = torch.tensor([MMSA_PADDING_READ[0], MMSA_ROW1_UNPADDED])
    torch.testing.assert_close(masked, expected, atol=2e-5, rtol=0)
    torch.testing.assert_close(unmasked, torch.tensor(MMSA_PADDING_READ), atol=2e-5, rtol=0)


# -- AHL ---------------------------------------------------------------------------------------
def test_ahl_layer_matches_a_hand_computation() -> None:
    torch.manual_seed(0)
    layer = HyperModalityLayer(dim=12, heads=3, head_dim=4)
    for norm in (layer.norm_t, layer.norm_a, layer.norm_v, layer.norm_hyper):
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    h_t, h_a, h_v, h_hyper = (torch.randn(2, n, 12) for n in (5, 4, 6, 5))

    def heads(x: torch.Tensor) -> torch.Tensor:  # (B, L, 12) -> (B, 3, L, 4)
        return x.reshape(x.shape[0], x.shape[1], 3, 4).permute(0, 2, 1, 3)

    def attention(q, source, to_k, to_v) -> torch.Tensor:
        k, v = heads(to_k(source)), heads(to_v(source))
        weights = torch.softmax(torch.einsum("bhid,bhjd->bhij", q, k) / 2.0, dim=-1)
        return torch.einsum("bhij,bhjd->bhid", weights, v).permute(0, 2, 1, 3).reshape(2, 5, 12)

    q = heads(layer.to_q(layer.norm_t(h_t)))
    audio = attention(q, layer.norm_a(h_a), layer.to_k_ta, layer.to_v_ta)
    vision = attention(q, layer.norm_v(h_v), layer.to_k_tv, layer.to_v_tv)
    expected = layer.norm_hyper(h_hyper) + layer.to_out(audio + vision)
    torch.testing.assert_close(layer(h_t, h_a, h_v, h_hyper), expected)


def test_each_ahl_layer_reads_its_own_language_state() -> None:
    torch.manual_seed(0)
    ahl = HyperModalityLearning(dim=8, depth=3, heads=2)
    language = [torch.randn(2, 4, 8) for _ in range(3)]
    audio, vision, hyper = (torch.randn(2, 4, 8) for _ in range(3))
    expected = hyper
    for layer, h_t in zip(ahl.layers, language, strict=True):
        expected = layer(h_t, audio, vision, expected)
    torch.testing.assert_close(ahl(language, audio, vision, hyper), expected)
    for i in range(3):  # every language state changes the result
        changed = [h + torch.randn_like(h) if j == i else h for j, h in enumerate(language)]
        assert not torch.allclose(ahl(changed, audio, vision, hyper), expected)


def test_language_encoder_keeps_one_state_per_ahl_layer(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, **SMALL, ahl_depth=4)
    tokens = torch.randn(3, 8, 32)
    states = model.language_encoder(tokens)
    assert len(states) == 4 and len(model.language_encoder.encoder.layers) == 3
    torch.testing.assert_close(states[0], tokens + model.language_encoder.positions)


# -- positions and padding ---------------------------------------------------------------------
def test_position_tables_are_sized_from_the_dataset(tiny_data) -> None:
    spec, _ = tiny_data
    model = _model(spec, **SMALL)
    for m, embedding in model.embeddings.items():
        assert embedding.positions.shape == (1, 8 + spec.max_lengths[m], 32)
    assert model.fusion.source_positions.shape == model.fusion.target_positions.shape
    assert model.fusion.source_positions.shape == (1, 9, 32)


def test_mmsa_mode_reads_padding_and_the_default_does_not(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits, 8)
    cut = {m: (n - 1).clamp_min(1) for m, n in batch.lengths.items()}  # one step fewer
    shorter = Batch(batch.features, cut, batch.labels, batch.index)
    for mask_padding, same in ((True, False), (False, True)):
        model = _model(spec, **SMALL, mask_padding=mask_padding).eval()
        with torch.no_grad():
            full, short = model(batch)["prediction"], model(shorter)["prediction"]
        assert torch.equal(full, short) is same  # MMSA's mode ignores the lengths


@pytest.mark.parametrize("mask_padding", [True, False])
def test_missing_modalities_give_finite_predictions(tiny_data, mask_padding) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec, **SMALL, mask_padding=mask_padding), _batch(splits)
    batch.features["audio"] = torch.zeros(16, 0, spec.feature_dims["audio"])
    batch.lengths["audio"] = torch.zeros(16, dtype=torch.long)
    batch.features["vision"] = torch.zeros_like(batch.features["vision"])
    outputs = model(batch)
    assert torch.isfinite(outputs["prediction"]).all()
    outputs["prediction"].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_binary_kind_gives_probabilities_and_bce(tiny_binary_data) -> None:
    spec, splits = tiny_binary_data
    model, batch = _model(spec, **SMALL), _batch(splits)
    prediction = model(batch)["prediction"]
    assert ((prediction > 0) & (prediction < 1)).all()
    expected = F.binary_cross_entropy(prediction, batch.labels)
    torch.testing.assert_close(model.loss_terms(batch, model(batch))["task"], expected)


# -- text from token ids -------------------------------------------------------------------------
def test_token_path_fine_tunes_the_text_model_in_mmsas_group(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    model = _model(spec, **SMALL)
    assert model.text_mode == "pretrained"
    encoder = model.text_encoder
    assert isinstance(encoder, PretrainedTextEncoder) and encoder.output == "tokens"
    assert encoder.finetune
    text_embedding = model.embeddings["text"]
    assert text_embedding.projection.in_features == spec.tokens.hidden_size
    assert text_embedding.positions.shape[1] == 8 + spec.tokens.max_length
    group = next(g for g in text_encoder_groups(model) if g.get("name") == TEXT_ENCODER_GROUP)
    assert (group["lr"], group["weight_decay"]) == (1e-4, 1e-4)  # MMSA: one AdamW group
    batch = _batch(splits, 8)
    outputs = model(batch)
    assert torch.isfinite(outputs["prediction"]).all()
    model.loss_terms(batch, outputs)["task"].backward()
    weight = encoder.model.embeddings.word_embeddings.weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_token_path_ignores_token_padding(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    model = _model(spec, **SMALL).eval()
    batch = _batch(splits, 4)
    tokens = batch.tokens
    pad = torch.zeros(4, 3, dtype=tokens.ids.dtype)
    longer = replace(
        tokens,
        ids=torch.cat([tokens.ids, pad], 1),
        mask=torch.cat([tokens.mask, pad], 1),
        segments=torch.cat([tokens.segments, pad], 1),
    )
    with torch.no_grad():
        padded = model(replace(batch, tokens=longer))["prediction"]
        torch.testing.assert_close(padded, model(batch)["prediction"])


# -- defaults and checks -----------------------------------------------------------------------
def test_defaults_follow_mmsas_trainer_and_config() -> None:
    for kind, fusion_depth in (("mosi", 2), ("mosei", 4), ("sims", 4)):
        hp = ALMT.resolve_hparams(kind)
        assert hp.fusion_depth == fusion_depth
        assert (hp.batch_size, hp.learning_rate, hp.weight_decay) == (64, 1e-4, 1e-4)
        assert (hp.learning_rate_bert, hp.weight_decay_bert) == (1e-4, 1e-4)
        assert (hp.grad_clip, hp.grad_accumulation, hp.optimizer) == (0.0, 1, "adamw")
        assert (hp.lr_scheduler, hp.scheduler_epochs) == ("warmup_cosine", 200)
        assert (hp.task_loss, hp.output_head, hp.bert_no_decay_norms) == ("mse", "linear", False)
        assert (hp.embedding_dim, hp.embedding_length, hp.ahl_depth) == (128, 8, 3)
    assert METHODS.get("almt") is ALMT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ahl_depth": 0}, "ahl_depth"),
        ({"ahl_heads": 200}, "ahl_heads"),
        ({"embedding_length": 0}, "embedding_length"),
        ({"fusion_depth": -1}, "fusion_depth"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_hparams_are_config_errors(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        ALMT.resolve_hparams("mosi", overrides)


def test_learns_the_synthetic_benchmark(short_synth_data) -> None:
    spec, splits = short_synth_data
    # at MMSA's lr 1e-4 these sizes stay at the mean predictor for 20 epochs of 600 samples (the
    # default benchmark's, twice as wide, learn by epoch 15); with MMSA's warm-up and cosine
    # spanning the 8 epochs (scheduler_epochs 0, as in the default budget; the first epoch trains
    # at rate 0) 3e-3 in batches of 16 learns in 8 (0.54 x the mean predictor's MAE; 1e-3: 0.97)
    model = _model(spec, **SMALL, learning_rate=3e-3, batch_size=16, scheduler_epochs=0)
    assert_learns_and_logs_terms(model, splits, "almt", {"task"})
