"""FSRF: its switches and named weighted terms, one network for the teacher (complete) and the
student (incomplete) view, the student view's masks (real steps only, deterministic under the
seed), the two distillation directions, gradient reversal on the noise part, label independence,
and learning on synth."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from learning_check import assert_learns_and_logs_terms

import methods.fsrf  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.data.types import MODALITIES, Batch
from harness.errors import ConfigError
from harness.training.loop import build_model
from methods.common.distillation import gaussian_kl, moment_matching, reverse_weights, softmax_kl
from methods.common.recurrent import RealStepsLSTM
from methods.fsrf import FSRF, WEIGHTS

SMALL = {"model_dim": 32, "batch_size": 64}
DHF = {"homo_align", "decorrelation", "noise_task", "recon"}
DISTILL = {"distill_pred", "distill_repr", "distill_cmd"}
TERMS = {"task", "task_student"} | DHF | DISTILL


def _model(spec, seed: int = 0, **overrides) -> FSRF:
    return build_model(FSRF, FSRF.resolve_hparams(spec.kind, {**SMALL, **overrides}), spec, seed)


def _batch(splits, n: int = 24) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


def _terms(model: FSRF, batch: Batch) -> dict[str, torch.Tensor]:
    return model.loss_terms(batch, model(batch))


def _with_labels(batch: Batch, labels: torch.Tensor) -> Batch:
    return Batch(batch.features, batch.lengths, labels, batch.index)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, TERMS),
        ({"use_factorization": False}, {"task", "task_student"} | DISTILL),
        ({"use_noise_factor": False}, TERMS - {"noise_task"}),
        ({"use_self_distillation": False}, TERMS - DISTILL),
        ({"distillation": "teacher_to_student"}, TERMS),
        ({"distillation": "symmetric", "reverse_representations": True}, TERMS),
        ({"intra_missing_max_rate": 0.0}, TERMS),
        ({"intra_missing_max_rate": 0.0, "inter_missing_probability": 0.0}, {"task"} | DHF),
        *[({weight: 0.0}, TERMS - {term}) for term, weight in WEIGHTS.items()],
    ],
)
def test_terms_follow_the_switches_and_weights(tiny_data, overrides, expected) -> None:
    spec, splits = tiny_data
    model = _model(spec, **overrides)
    model.train()
    terms = _terms(model, _batch(splits))
    assert set(terms) == expected
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    assert expected <= set(model.loss_weights())
    assert all(model.loss_weights()[name] == 0.0 for name in set(model.loss_weights()) - expected)


def test_eval_mode_has_no_student_terms(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    model.eval()
    with torch.no_grad():
        outputs = model(_batch(splits))
        terms = model.loss_terms(_batch(splits), outputs)
    assert not any(name.startswith("student_") for name in outputs)
    assert set(terms) == {"task"} | DHF


@pytest.mark.parametrize(("term", "weight"), sorted(WEIGHTS.items()))
def test_weights_scale_their_terms(tiny_data, term, weight) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = []
    for w in (0.1, 0.3):
        model = _model(spec, dropout=0.0, **{weight: w})  # same seed: same weights and masks
        model.train()
        values.append(float(_terms(model, batch)[term].detach()))
    assert values[0] > 0
    assert values[1] == pytest.approx(3 * values[0], rel=1e-4)


def test_one_network_serves_both_views(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    lstms = {name for name, module in model.named_modules() if isinstance(module, RealStepsLSTM)}
    assert lstms == {f"encoders.{m}" for m in MODALITIES}  # no second (teacher/student) copy
    model.train()
    batch = _batch(splits)
    reached = {}
    for term in ("task", "task_student"):
        model.zero_grad(set_to_none=True)
        _terms(model, batch)[term].backward()
        reached[term] = {
            name
            for name, p in model.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0
        }
    assert {f"encoders.{m}.forward_rnn.weight_ih_l0" for m in MODALITIES} <= reached["task"]
    assert reached["task_student"] == reached["task"]


def test_the_views_are_plain_forwards_of_the_same_network(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, dropout=0.0)
    batch = _batch(splits, 16)
    state = model.mask_generator.get_state()
    model.train()
    outputs = model(batch)
    model.mask_generator.set_state(state)
    student = model.student_view(batch)  # the same draws as inside forward
    model.eval()
    with torch.no_grad():
        teacher_alone, student_alone = model(batch), model(student)
    torch.testing.assert_close(outputs["prediction"], teacher_alone["prediction"])
    torch.testing.assert_close(outputs["student_prediction"], student_alone["prediction"])
    torch.testing.assert_close(outputs["student_fused_tokens"], student_alone["fused_tokens"])
    assert not torch.allclose(outputs["prediction"], outputs["student_prediction"])


def test_student_view_drops_real_steps_and_never_touches_padding(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, inter_missing_probability=0.0)
    batch = _batch(splits, 32)
    filled = {}
    for m, x in batch.features.items():  # mark padding so that any change to it shows
        filled[m] = torch.where(batch.mask(m).unsqueeze(-1), x, torch.full_like(x, 7.0))
    batch = Batch(filled, batch.lengths, batch.labels, batch.index)
    student = model.student_view(batch)
    dropped_any = False
    for m in MODALITIES:
        real, x, y = batch.mask(m), batch.features[m], student.features[m]
        assert torch.equal(student.lengths[m], batch.lengths[m])
        assert torch.equal(y[~real], x[~real])  # padding untouched
        kept = (y == x).all(dim=-1)
        zeroed = (y == 0).all(dim=-1)
        assert (kept | zeroed)[real].all()  # a real step is kept or zero-filled, nothing else
        dropped_any |= bool((zeroed & real & ~(x == 0).all(dim=-1)).any())
    assert dropped_any


def test_inter_modal_missing_drops_whole_modalities(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, intra_missing_max_rate=0.0, inter_missing_probability=1.0)
    batch = _batch(splits, 32)
    student = model.student_view(batch)
    lost = torch.stack(
        [(student.features[m] == 0).flatten(1).all(dim=1) for m in MODALITIES], dim=1
    )  # (B, M): modality wholly zero
    assert lost.any(dim=1).all() and not lost.all(dim=1).any()  # one or two lost, never three


def test_training_masks_are_deterministic_under_the_seed(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)

    def losses(seed: int) -> list[dict[str, float]]:
        model = _model(spec, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        logged = []
        for _ in range(3):
            terms = _terms(model, batch)
            optimizer.zero_grad()
            torch.stack(list(terms.values())).sum().backward()
            optimizer.step()
            logged.append({name: float(t.detach()) for name, t in terms.items()})
        return logged

    assert losses(5) == losses(5)
    views = [_model(spec, seed=seed).student_view(batch).features for seed in (5, 5, 6)]
    assert all(torch.equal(views[0][m], views[1][m]) for m in MODALITIES)
    assert not all(torch.equal(views[0][m], views[2][m]) for m in MODALITIES)
    model = _model(spec)
    assert not any("generator" in key for key in model.state_dict())
    state = model.mask_generator.get_state()
    model.eval()
    model(batch)  # evaluation draws no masks
    assert torch.equal(model.mask_generator.get_state(), state)


def _distill_grads(spec, splits, term: str, output: str, **overrides):
    """(teacher-view gradient of `term` w.r.t. outputs[output] or None, outputs)."""
    model = _model(spec, dropout=0.0, **overrides)
    model.train()
    batch = _batch(splits)
    outputs = model(batch)
    for name in (output, f"student_{output}"):
        outputs[name].retain_grad()
    model.loss_terms(batch, outputs)[term].backward()
    assert outputs[f"student_{output}"].grad.abs().sum() > 0  # the student always learns
    return outputs[output].grad, outputs, batch


@pytest.mark.parametrize("direction", ["bidirectional", "symmetric", "teacher_to_student"])
def test_distillation_direction_decides_where_the_teacher_learns(tiny_data, direction) -> None:
    spec, splits = tiny_data
    grad, outputs, batch = _distill_grads(
        spec, splits, "distill_pred", "prediction", distillation=direction
    )
    if direction == "teacher_to_student":
        assert grad is None or not grad.any()  # no path from the term to the teacher
        return
    teacher, student = outputs["prediction"].detach(), outputs["student_prediction"].detach()
    student_better = (student - batch.labels).abs() < (teacher - batch.labels).abs()
    expected = student_better if direction == "bidirectional" else torch.ones_like(student_better)
    assert 0 < int(student_better.sum()) < batch.size  # the gate is not trivial here
    assert torch.equal(grad != 0, expected & (teacher != student))


@pytest.mark.parametrize("reverse", [False, True])
def test_representations_flow_back_only_when_asked(tiny_data, reverse) -> None:
    spec, splits = tiny_data
    grad, _, _ = _distill_grads(
        spec, splits, "distill_repr", "fused_tokens", reverse_representations=reverse
    )
    assert (grad is not None and bool(grad.any())) == reverse


def test_prediction_distillation_adds_the_directions(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = {}
    for direction in ("bidirectional", "symmetric", "teacher_to_student"):
        model = _model(spec, dropout=0.0, distillation=direction)  # same seed: same masks
        model.train()
        outputs = model(batch)
        values[direction] = float(model.loss_terms(batch, outputs)["distill_pred"].detach())
    teacher, student = outputs["prediction"].detach(), outputs["student_prediction"].detach()
    gate = (student - batch.labels).abs() < (teacher - batch.labels).abs()
    one_way = values["teacher_to_student"]
    # the Gaussian KL is symmetric: all samples back give twice one way, the gated ones part of it
    assert values["symmetric"] == pytest.approx(2 * one_way, rel=1e-5)
    gated = float((gate * 0.5 * (teacher - student) ** 2).mean())
    assert values["bidirectional"] == pytest.approx(one_way + gated, rel=1e-5)
    assert one_way < values["bidirectional"] < values["symmetric"]


def test_divergences() -> None:
    x = torch.randn(5, 3, 4)
    assert torch.equal(
        gaussian_kl(torch.zeros(3), torch.tensor([0.0, 1.0, 2.0])), torch.tensor([0.0, 0.5, 2.0])
    )
    kl = softmax_kl(2.0)
    assert kl(x, x).shape == (5,) and kl(x, x).abs().max() < 1e-6
    assert (kl(x, torch.randn(5, 3, 4)) > 0).all()
    assert float(moment_matching(2)(x, x)) == 0.0 and float(moment_matching(2)(x, x + 1)) > 0
    with pytest.raises(ValueError, match="direction"):
        reverse_weights("both", x[:, 0, 0], x[:, 0, 1], x[:, 0, 2])


def test_noise_part_is_trained_against_its_adversary(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    model.eval()
    batch = _batch(splits)
    outputs = model(batch)
    outputs["noise"].retain_grad()
    model.loss_terms(batch, outputs)["noise_task"].backward()
    reversed_grad = outputs["noise"].grad
    noise = outputs["noise"].detach().requires_grad_()
    plain = sum(
        torch.nn.functional.mse_loss(model.noise_adversaries[m](noise[:, i]), batch.labels)
        for i, m in enumerate(MODALITIES)
    ) / len(MODALITIES)
    (model.hparams.noise_task_weight * plain).backward()
    assert reversed_grad.abs().sum() > 0
    torch.testing.assert_close(reversed_grad, -noise.grad)  # the encoders maximise its loss
    adversary = model.noise_adversaries["text"][0].weight.grad
    assert adversary is not None and adversary.abs().sum() > 0  # the adversary minimises it


@pytest.mark.parametrize("training", [False, True])
def test_predictions_do_not_depend_on_labels(tiny_data, training) -> None:
    spec, splits = tiny_data
    model = _model(spec, dropout=0.0)
    model.train(training)
    batch = _batch(splits, 16)
    state = model.mask_generator.get_state()
    first = model(batch)
    model.mask_generator.set_state(state)
    second = model(_with_labels(batch, torch.randn(16) * 3))
    for name in ("prediction", "student_prediction") if training else ("prediction",):
        torch.testing.assert_close(first[name], second[name])


def test_padding_does_not_change_predictions(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    model.eval()
    batch = _batch(splits, 8)
    padded = Batch(
        {m: torch.cat([x, torch.zeros(8, 4, x.shape[2])], 1) for m, x in batch.features.items()},
        batch.lengths,
        batch.labels,
        batch.index,
    )
    with torch.no_grad():
        torch.testing.assert_close(model(padded)["prediction"], model(batch)["prediction"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fusion_heads": 5}, "hparams.fusion_heads: expected a positive divisor"),
        ({"distillation": "both"}, "hparams.distillation: expected one of"),
        ({"recon_weight": -1.0}, "hparams.recon_weight: expected a weight >= 0"),
        ({"inter_missing_probability": 1.5}, "hparams.inter_missing_probability: expected"),
    ],
)
def test_invalid_hparams_are_one_line_errors(tiny_data, overrides, message) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match=message):
        _model(spec, **overrides)


def test_learns_the_synthetic_benchmark_and_logs_every_term(short_synth_data) -> None:
    spec, splits = short_synth_data
    assert_learns_and_logs_terms(_model(spec), splits, "fsrf", TERMS)


def test_hparams_are_frozen_and_documented() -> None:
    hp = FSRF.resolve_hparams("mosi")
    assert replace(hp, model_dim=32).model_dim == 32 and hp.model_dim == 64
    assert all(hasattr(hp, weight) for weight in WEIGHTS.values())
