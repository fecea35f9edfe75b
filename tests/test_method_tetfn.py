"""Tests of TETFN: the registry contract, its named loss terms and label memory (Self-MM's
ULGM), MMSA's sizes, the text-enhanced Transformer and its wiring, padding, the unimodal maxima,
learning on the short synthetic benchmark, determinism, and the token (fine-tuned encoder) path."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest
import test_methods_contract as contract
import torch
from learning_check import assert_learns_and_logs_terms

import methods.tetfn  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.data.spec import DataSpec
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
from harness.training.optimisers import main_optimizer
from methods import METHODS
from methods.common.pretrained_text import TEXT_ENCODER_GROUP, PretrainedTextEncoder
from methods.common.text_enhanced import TextEnhancedTransformer, masked_max
from methods.common.transformer import CrossModalTransformer

NAME = "tetfn"
TERMS = {"task", "text", "audio", "vision"}
# small sizes for the tests that train (the reference network is slow on one core)
SMALL = {
    "model_dim": 16,
    "num_heads": 2,
    "crossmodal_layers": 1,
    "memory_layers": 1,
    "vision_lstm_hidden": 32,
    "batch_size": 32,
}
CONTRACT_CHECKS = [getattr(contract, name) for name in dir(contract) if name.startswith("test_")]


def _model(spec, seed: int = 0, **overrides):
    cls = METHODS.get(NAME)
    return build_model(cls, cls.resolve_hparams(spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


# -- the registry-wide contract, run for TETFN ------------------------------------------------
@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda check: check.__name__)
def test_contract(check, request) -> None:
    if "tiny_data" in inspect.signature(check).parameters:
        check(NAME, request.getfixturevalue("tiny_data"))
    else:
        check(NAME)


# -- outputs, loss terms, kinds ---------------------------------------------------------------
@pytest.mark.parametrize("masking", ["padding", "future"])
def test_predicts_shape_b_finite_in_both_maskings(masking, tiny_data) -> None:
    spec, splits = tiny_data
    outputs = _model(spec, attention_masking=masking)(_batch(splits))
    assert outputs["prediction"].shape == (16,) and torch.isfinite(outputs["prediction"]).all()
    assert outputs["representation_fusion"].shape == (16, 64)  # post_fusion_dim
    assert {f"prediction_{m}" for m in ("text", "audio", "vision")} <= set(outputs)


def test_named_terms_in_training_and_eval(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    batch = _batch(splits)
    terms = model.loss_terms(batch, model(batch))
    assert set(terms) == TERMS == set(model.loss_weights())
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    model.eval()
    assert set(model.loss_terms(batch, model(batch))) == {"task"}


def test_zero_unimodal_weight_removes_the_unimodal_terms(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, unimodal_weight=0.0)
    batch = _batch(splits)
    assert set(model.loss_terms(batch, model(batch))) == {"task"}
    assert model.label_memory.visits.numel() == 0


def test_unimodal_terms_scale_with_their_weight(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = {}
    for weight in (1.0, 2.5):
        model = _model(spec, seed=3, unimodal_weight=weight)
        for _ in range(3):  # visit 2 moves the labels, so visit 3's terms are non-zero
            terms = model.loss_terms(batch, model(batch))
        values[weight] = {k: float(v.detach()) for k, v in terms.items()}
    for head in ("text", "audio", "vision"):
        assert values[1.0][head] > 0
        assert values[2.5][head] == pytest.approx(2.5 * values[1.0][head])


def test_binary_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="ULGM"):
        METHODS.get(NAME).resolve_hparams("binary")


def test_kind_defaults_follow_mmsa() -> None:
    cls = METHODS.get(NAME)
    sims = cls.resolve_hparams("sims")  # MMSA's video sub-network reads the audio kernel
    assert (sims.text_kernel, sims.audio_kernel, sims.vision_kernel) == (3, 5, 5)
    mosei = cls.resolve_hparams("mosei")
    assert (mosei.learning_rate, mosei.video_learning_rate, mosei.batch_size) == (1e-4, 5e-3, 32)


@pytest.mark.parametrize(
    ("kind", "dims", "expected"),
    [  # counted on MMSA's TETFN built at its config (BERT excluded)
        ("mosi", {"text": 768, "audio": 5, "vision": 20}, 1_254_224),
        ("sims", {"text": 768, "audio": 33, "vision": 709}, 1_529_968),
        ("mosi", {"text": 384, "audio": 5, "vision": 20}, 1_235_024),
    ],
)
def test_parameter_count_equals_mmsas(kind, dims, expected) -> None:
    spec = DataSpec(kind, dims, dict.fromkeys(dims, 50), (-3.0, 3.0))
    cls = METHODS.get(NAME)
    model = cls(cls.resolve_hparams(kind, {"text_encoder": "features"}), spec)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


# -- the mechanism ----------------------------------------------------------------------------
def test_text_enhanced_transformer_is_the_enhancer_then_the_crossmodal_one() -> None:
    torch.manual_seed(0)
    block = TextEnhancedTransformer(8, 2, 1, 2, attn_dropout=0.0).eval()
    target, source, text = torch.randn(2, 5, 8), torch.randn(2, 6, 8), torch.randn(2, 4, 8)
    masks = [torch.ones(2, n, dtype=torch.bool) for n in (5, 6, 4)]
    with torch.no_grad():
        out = block(target, masks[0], source, masks[1], text, masks[2])
        enhanced = block.enhancer(source, masks[1], text, masks[2])
        by_hand = block.crossmodal(target, masks[0], enhanced, masks[1])
        other_text = block(target, masks[0], source, masks[1], text.flip(1), masks[2])
    assert out.shape == (2, 5, 8) and torch.equal(out, by_hand)
    assert not torch.allclose(out, other_text)  # the text reaches the target through the source
    assert block.enhancer.positions and block.crossmodal.positions  # MMSA: position_embedding
    assert len(block.enhancer.layers) == 1 and len(block.crossmodal.layers) == 2


def test_each_target_reads_its_mmsa_sources(tiny_data) -> None:
    """Audio attends to text and to text-enhanced vision, vision to text and to text-enhanced
    audio, text to audio and vision; pairwise ones without positions, a source's dropout."""
    spec, splits = tiny_data
    model = _model(spec).eval()
    batch = _batch(splits, 4)
    calls = {}

    def record(name):
        return lambda _module, args, _out: calls.__setitem__(name, args)

    for target in ("audio", "vision"):
        model.enhanced[target].register_forward_hook(record(target))
    with torch.no_grad():
        projected = model.project(batch)
        model(batch)
    for target, source in (("audio", "vision"), ("vision", "audio")):
        args = calls[target]
        assert torch.equal(args[0], projected[target][0])
        assert torch.equal(args[2], projected[source][0])
        assert torch.equal(args[4], projected["text"][0])
    assert set(model.pairwise) == {
        "text_from_audio", "text_from_vision", "audio_from_text", "vision_from_text"
    }  # fmt: skip
    assert not any(t.positions for t in model.pairwise.values())
    dropout = model.pairwise["text_from_audio"].layers[0].attention.dropout
    assert dropout == model.hparams.attn_dropout_audio
    assert all(m.dim == 2 * model.hparams.model_dim for m in model.memory.values())


def test_unimodal_heads_read_the_max_over_real_steps(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec).eval()
    batch = _batch(splits, 6)
    with torch.no_grad():
        projected = model.project(batch)
        outputs = model(batch)
        for m in ("text", "audio", "vision"):
            x, _, lengths = projected[m]
            maxima = torch.stack([x[b, : int(lengths[b])].max(dim=0).values for b in range(6)])
            by_hand = model.heads[m].represent(maxima)
            torch.testing.assert_close(outputs[f"representation_{m}"], by_hand)


def test_masked_max_ignores_padding_and_empty_rows() -> None:
    x = torch.tensor([[[1.0], [5.0], [9.0]], [[-2.0], [-1.0], [7.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert masked_max(x, mask).tolist() == [[5.0], [0.0]]


def test_valid_convolutions_shorten_by_kernel_minus_one(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, text_kernel=3, audio_kernel=5, vision_kernel=5)
    batch = _batch(splits, 4)
    projected = model.project(batch)
    for m, kernel in (("text", 3), ("audio", 5), ("vision", 5)):
        x, mask, lengths = projected[m]
        assert x.shape[1] == batch.features[m].shape[1] - kernel + 1
        assert torch.equal(lengths, (batch.lengths[m] - kernel + 1).clamp(min=1))
        assert torch.equal(mask.sum(dim=1), lengths)


def test_future_masking_reads_padding_as_mmsa_does(tiny_data) -> None:
    """`attention_masking: future` (MMSA's) attends to padding and reads h[-1]: values written
    into the padding move its predictions; the default padding masks ignore them."""
    spec, splits = tiny_data
    batch = _batch(splits, 8)
    noisy = {m: x.clone() for m, x in batch.features.items()}
    for m, x in noisy.items():
        x[~batch.mask(m)] = 3.0
    changed = batch.with_features(noisy)
    for masking, moves in (("padding", False), ("future", True)):
        model = _model(spec, attention_masking=masking).eval()
        with torch.no_grad():
            before, after = model(batch)["prediction"], model(changed)["prediction"]
        assert (not torch.allclose(before, after, atol=1e-5)) == moves, masking


@pytest.mark.parametrize("masking", ["padding", "future"])
def test_missing_modalities_stay_finite(masking, tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits, 4)
    lengths = {**batch.lengths, "audio": torch.zeros(4, dtype=torch.long)}
    features = {**batch.features, "vision": batch.features["vision"][:, :0]}
    lengths["vision"] = torch.zeros(4, dtype=torch.long)
    empty = batch.with_features(features, lengths)
    model = _model(spec, attention_masking=masking)
    outputs = model(empty)
    assert torch.isfinite(outputs["prediction"]).all()
    torch.stack(list(model.loss_terms(empty, outputs).values())).sum().backward()


def test_parameter_groups_are_mmsas(tiny_data) -> None:
    spec, _ = tiny_data
    model = _model(spec, audio_learning_rate=4e-3, video_weight_decay=2e-2)
    audio, vision, others = model.parameter_groups()
    assert {id(p) for p in audio["params"]} == {id(p) for p in model.subnets["audio"].parameters()}
    assert len(audio["params"]) == 5  # LSTM (4) and the Conv1d (no bias): MMSA's audio_model
    assert {id(p) for p in vision["params"]} == {
        id(p) for p in model.subnets["vision"].parameters()
    }
    assert audio["lr"] == 4e-3 and audio["weight_decay"] == 1e-2
    assert vision["lr"] == 3e-4 and vision["weight_decay"] == 2e-2
    grouped = [p for group in (audio, vision, others) for p in group["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))


# -- training ---------------------------------------------------------------------------------
def test_learns_the_short_synthetic_benchmark(short_synth_data) -> None:
    """At the budget's small sizes, one batch per step and a rate from the search space."""
    spec, splits = short_synth_data
    rates = dict.fromkeys(("learning_rate", "audio_learning_rate", "video_learning_rate"), 3e-3)
    model = _model(spec, **SMALL, **rates, grad_accumulation=1)
    assert_learns_and_logs_terms(model, splits, NAME, TERMS)
    memory = model.label_memory
    assert memory.labels.shape == (len(splits["train"]), 4)
    assert torch.equal(memory.labels[:, 0], splits["train"].labels)
    moved = (memory.labels[:, 1:] - memory.labels[:, :1]).abs()
    assert (moved > 0.05).any(dim=0).all()  # every modality's labels moved for some samples
    assert (memory.labels.abs() <= 3.0).all()


def test_fit_is_deterministic_under_a_seed(tiny_data) -> None:
    spec, splits = tiny_data
    runs = []
    for _ in range(2):
        model = _model(spec, seed=4, **{**SMALL, "batch_size": 8})
        loop = LoopConfig(max_epochs=2, patience=2, progress=False)
        runs.append(fit(model, splits["train"], splits["valid"], loop, RunContext("t", NAME, 4), 4))
    predictions = [evaluate(run.model, splits["test"], 16, "cpu")[1] for run in runs]
    assert (predictions[0] == predictions[1]).all()
    assert torch.equal(runs[0].model.label_memory.labels, runs[1].model.label_memory.labels)


def test_token_path_fine_tunes_the_text_model(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    model = _model(spec, **SMALL)
    assert isinstance(model.text_encoder, PretrainedTextEncoder)
    assert model.text_encoder.output == "tokens" and model.text_encoder.finetune
    assert model.text_projection.in_channels == spec.tokens.hidden_size
    batch = _batch(splits, 4)
    outputs = model(batch)
    assert torch.isfinite(outputs["prediction"]).all()
    torch.stack(list(model.loss_terms(batch, outputs).values())).sum().backward()
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in model.text_encoder.parameters()
    )
    groups = {g.get("name"): g for g in main_optimizer(model).param_groups}
    assert groups[TEXT_ENCODER_GROUP]["lr"] == 3e-5
    assert groups[TEXT_ENCODER_GROUP]["weight_decay"] == 1e-3
    assert groups[f"{TEXT_ENCODER_GROUP}_no_decay"]["weight_decay"] == 0.0
    features = _model(replace(spec, tokens=None), **SMALL)
    assert not hasattr(features, "text_encoder")  # features path: the text features enter
    assert features.text_projection.in_channels == spec.feature_dims["text"]


def test_rejects_heads_that_do_not_divide_the_model_dimension(tiny_data) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match="num_heads"):
        _model(spec, model_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="attention_masking"):
        _model(spec, attention_masking="none")


def test_cross_modal_blocks_are_the_shared_encoder(tiny_data) -> None:
    spec, _ = tiny_data
    model = _model(spec)
    blocks = [*model.pairwise.values(), *model.memory.values()]
    blocks += [b for e in model.enhanced.values() for b in (e.enhancer, e.crossmodal)]
    assert len(blocks) == 11 and all(isinstance(b, CrossModalTransformer) for b in blocks)
    assert all(b.separate_kv_dropout and b.masking == "padding" for b in blocks)
