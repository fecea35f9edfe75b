"""Tests of LMF and Self-MM: the registry contract, named loss terms, Self-MM's label memory
(ULGM), learning on a synthetic store, and determinism under a seed."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import test_methods_contract as contract
import torch

import methods.lmf  # noqa: F401  (import registers the method)
import methods.self_mm  # noqa: F401
from harness.data.loading import load_dataset, take_batch
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
from methods import METHODS
from methods.self_mm import HEADS, UnimodalLabelMemory

NAMES = ("lmf", "self_mm")
SMALL = {
    "lmf": {"audio_hidden": 8, "vision_hidden": 16, "text_hidden": 32, "text_out": 16},
    "self_mm": {"text_hidden": 32, "text_out": 32, "post_fusion_dim": 64},
}
CONTRACT_CHECKS = [getattr(contract, name) for name in dir(contract) if name.startswith("test_")]


def _build(name: str, spec, seed: int = 0, **overrides):
    cls = METHODS.get(name)
    return build_model(cls, cls.resolve_hparams(spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16):
    return take_batch(splits["train"], torch.arange(n))


# -- the registry-wide contract, run for these two methods ------------------------------------
@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", NAMES)
def test_contract(name, check, request) -> None:
    takes_data = "tiny_data" in inspect.signature(check).parameters
    if takes_data:
        check(name, request.getfixturevalue("tiny_data"))
    else:
        check(name)


# -- outputs and loss terms -------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_prediction_has_shape_b_and_is_finite(name, tiny_data) -> None:
    spec, splits = tiny_data
    model = _build(name, spec)
    batch = _batch(splits)
    prediction = model(batch)["prediction"]
    assert prediction.shape == (batch.size,) and torch.isfinite(prediction).all()


@pytest.mark.parametrize(
    ("name", "expected"), [("lmf", {"task"}), ("self_mm", {"task", "text", "audio", "vision"})]
)
def test_named_terms_are_present_and_finite(name, expected, tiny_data) -> None:
    spec, splits = tiny_data
    model = _build(name, spec)
    batch = _batch(splits)
    terms = model.loss_terms(batch, model(batch))
    assert set(terms) == expected == set(model.loss_weights())
    assert all(term.ndim == 0 and torch.isfinite(term) for term in terms.values())


def test_lmf_has_only_the_task_term(tiny_data) -> None:
    spec, _ = tiny_data
    assert _build("lmf", spec).loss_weights() == {"task": 1.0}


def test_self_mm_zero_unimodal_weight_removes_unimodal_terms(tiny_data) -> None:
    spec, splits = tiny_data
    model = _build("self_mm", spec, unimodal_weight=0.0)
    batch = _batch(splits)
    assert set(model.loss_terms(batch, model(batch))) == {"task"}
    assert model.label_memory.visits.numel() == 0  # nothing recorded either


def test_self_mm_unimodal_terms_are_scaled_by_unimodal_weight(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = {}
    for weight in (1.0, 2.5):
        model = _build("self_mm", spec, seed=3, unimodal_weight=weight)
        for _ in range(3):  # visit 2 moves the labels, so the terms of visit 3 are non-zero
            terms = model.loss_terms(batch, model(batch))
        values[weight] = {head: float(term.detach()) for head, term in terms.items()}
    for head in ("text", "audio", "vision"):
        assert values[1.0][head] > 0
        assert values[2.5][head] == pytest.approx(2.5 * values[1.0][head])


def test_self_mm_eval_batches_never_touch_the_label_memory(tiny_data) -> None:
    spec, splits = tiny_data
    model = _build("self_mm", spec)
    model.loss_terms(_batch(splits), model(_batch(splits)))
    before = {name: buffer.clone() for name, buffer in model.label_memory.named_buffers()}
    model.eval()
    valid = take_batch(splits["valid"], torch.arange(20))
    assert set(model.loss_terms(valid, model(valid))) == {"task"}
    evaluate(model, splits["valid"], 8, "cpu")
    for name, buffer in model.label_memory.named_buffers():
        assert torch.equal(buffer, before[name])


def test_label_memory_is_not_in_the_state_dict(tiny_data) -> None:
    spec, splits = tiny_data
    model = _build("self_mm", spec)
    model.loss_terms(_batch(splits), model(_batch(splits)))
    assert not any(key.startswith("label_memory") for key in model.state_dict())


# -- ULGM by hand -----------------------------------------------------------------------------
def _memory(warmup: int = 1) -> UnimodalLabelMemory:
    return UnimodalLabelMemory(dict.fromkeys(HEADS, 2), (-3.0, 3.0), warmup, exclude_zero=True)


def test_label_memory_grows_lazily_and_keeps_rows() -> None:
    memory = _memory()
    memory.targets(torch.tensor([5]), torch.tensor([1.5]))
    assert memory.labels.shape == (6, 4) and memory.labels[5].tolist() == [1.5] * 4
    memory.update(torch.tensor([5]), {h: torch.ones(1, 2) for h in HEADS})
    memory.targets(torch.tensor([9, 5]), torch.tensor([-2.0, 1.5]))
    assert memory.labels.shape == (10, 4) and memory.visits.tolist()[5] == 1
    assert memory.labels[9].tolist() == [-2.0] * 4 and memory.labels[5].tolist() == [1.5] * 4
    assert memory.features("text")[5].tolist() == [1.0, 1.0]


def test_label_update_follows_the_paper_after_the_warm_up() -> None:
    memory = _memory(warmup=1)
    index, y_m = torch.arange(4), torch.tensor([2.0, -2.0, 1.0, -1.0])
    first = {h: torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.5, 0.0], [-0.5, 0.0]]) for h in HEADS}
    memory.targets(index, y_m)
    memory.update(index, first)  # visit 1: warm-up, labels stay at y_m
    assert torch.equal(memory.labels[:, 1:], y_m.unsqueeze(1).expand(4, 3))
    # visit 2: text features move towards the negative centre for row 0
    second = {h: f.clone() for h, f in first.items()}
    second["text"][0] = torch.tensor([0.0, 0.0])
    memory.targets(index, y_m)
    memory.update(index, second)
    positive, negative = torch.tensor([0.75, 0.0]), torch.tensor([-0.75, 0.0])  # visit-1 means

    def alpha(f: torch.Tensor) -> torch.Tensor:
        d_p, d_n = (f - positive).norm(dim=-1), (f - negative).norm(dim=-1)
        return (d_n - d_p) / (d_p + 1e-8)

    a_m, a_t = alpha(second["fusion"]), alpha(second["text"])
    generated = (0.5 * y_m * a_t / (a_m + 1e-8) + 0.5 * (y_m + a_t - a_m)).clamp(-3, 3)
    expected = 1 / 3 * y_m + 2 / 3 * generated  # momentum with n = 2
    assert torch.allclose(memory.labels[:, 1], expected)
    assert memory.labels[0, 1] < y_m[0]  # moved towards neutral
    assert torch.allclose(memory.labels[1:, 1], y_m[1:])  # unchanged features: unchanged labels
    assert memory.visits.tolist() == [2, 2, 2, 2]


# -- learning and determinism on a synthetic store ----------------------------------------------
@pytest.fixture(scope="module")
def synth_data(tmp_path_factory: pytest.TempPathFactory):
    directory: Path = tmp_path_factory.mktemp("synth") / "synth"
    config = SyntheticConfig(n_train=300, n_valid=100, n_test=100, seed=1)
    write_synthetic_store(directory, config)
    return load_dataset(directory)


def _fit(name: str, data, seed: int = 0, epochs: int = 10, **overrides):
    spec, splits = data
    cls = METHODS.get(name)
    hparams = cls.resolve_hparams("mosi", {**SMALL[name], **overrides})
    model = build_model(cls, hparams, spec, seed)
    loop = LoopConfig(max_epochs=epochs, patience=10, progress=False)
    return fit(model, splits["train"], splits["valid"], loop, RunContext("synth", name, seed), seed)


# LMF with MMSA's MOSI weight decay (5e-3, coupled L2 in Adam) collapses to the mean on
# standardised synthetic features; its search space reaches lower values. Its product of factors
# starts on a plateau, so it also gets smaller batches (more steps) to leave it within 10 epochs.
# Self-MM at MMSA's accumulation of 4 batches takes a quarter of the steps in this budget (10
# epochs of 300 samples); one batch per step checks what the model learns (the recipe itself:
# tests/test_training_recipes.py)
LEARNING_OVERRIDES = {
    "lmf": {"weight_decay": 1e-4, "batch_size": 16},
    "self_mm": {"grad_accumulation": 1},
}


@pytest.fixture(scope="module")
def trained(synth_data):
    """name -> FitOutcome of 10 epochs on the synthetic store (trained once per module)."""
    return {name: _fit(name, synth_data, **LEARNING_OVERRIDES[name]) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_beats_predicting_the_training_mean(name, synth_data, trained) -> None:
    _, splits = synth_data
    valid = splits["valid"].labels
    mean_mae = float((valid - splits["train"].labels.mean()).abs().mean())
    assert trained[name].best_valid["mae"] < 0.85 * mean_mae


def test_self_mm_label_memory_moves_and_stays_in_range(synth_data, trained) -> None:
    _, splits = synth_data
    outcome = trained["self_mm"]
    memory = outcome.model.label_memory
    assert memory.labels.shape == (len(splits["train"]), 4)
    assert torch.equal(memory.labels[:, 0], splits["train"].labels)
    assert (memory.visits == outcome.epochs_run).all()
    moved = (memory.labels[:, 1:] - memory.labels[:, :1]).abs()
    assert (moved > 0.05).any(dim=0).all()  # every modality has moved for some samples
    assert (memory.labels.abs() <= 3.0).all() and torch.isfinite(memory.labels).all()


@pytest.mark.parametrize("name", NAMES)
def test_fit_is_deterministic_under_a_seed(name, synth_data) -> None:
    _, splits = synth_data
    runs = [_fit(name, synth_data, seed=4, epochs=3) for _ in range(2)]
    predictions = [evaluate(run.model, splits["test"], 64, "cpu")[1] for run in runs]
    assert (predictions[0] == predictions[1]).all()
    assert [h.train for h in runs[0].history] == [h.train for h in runs[1].history]
    if name == "self_mm":
        assert torch.equal(runs[0].model.label_memory.labels, runs[1].model.label_memory.labels)


@pytest.mark.parametrize("train_fusion_weights", [False, True])
def test_lmf_fusion_weights_stay_as_initialised_unless_switched_on(tiny_data, train_fusion_weights):
    """MMSA's LMF optimiser leaves the fusion weights and bias out (the reference default)."""
    spec, splits = tiny_data
    model = _build("lmf", spec, train_fusion_weights=train_fusion_weights)
    before = [p.detach().clone() for p in (model.fusion.fusion_weights, model.fusion.fusion_bias)]
    loop = LoopConfig(max_epochs=1, patience=1, progress=False)
    fit(model, splits["train"], splits["valid"], loop, RunContext("t", "lmf", 0), 0)
    after = [model.fusion.fusion_weights.detach(), model.fusion.fusion_bias.detach()]
    unchanged = all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert unchanged != train_fusion_weights


def test_parameter_groups_cover_every_parameter_once(tiny_data) -> None:
    spec, _ = tiny_data
    for name in NAMES:
        model = _build(name, spec)
        grouped = [p for group in model.parameter_groups() for p in group["params"]]
        trainable = [p for p in model.parameters() if p.requires_grad]
        assert len(grouped) == len({id(p) for p in grouped}) == len(trainable)
    lmf = _build("lmf", spec, factor_learning_rate=7e-4)
    factor_group = lmf.parameter_groups()[0]
    assert factor_group["lr"] == 7e-4 and len(factor_group["params"]) == 3
    self_mm = _build(
        "self_mm",
        spec,
        audio_learning_rate=4e-3,
        audio_weight_decay=2e-2,
        video_learning_rate=1e-4,
        video_weight_decay=0.0,
    )
    audio_group, vision_group = self_mm.parameter_groups()[:2]
    assert {id(p) for p in audio_group["params"]} == {
        id(p) for p in self_mm.audio_encoder.parameters()
    }
    assert {id(p) for p in vision_group["params"]} == {
        id(p) for p in self_mm.vision_encoder.parameters()
    }
    assert audio_group["lr"] == 4e-3 and audio_group["weight_decay"] == 2e-2
    assert vision_group["lr"] == 1e-4 and vision_group["weight_decay"] == 0.0
