from __future__ import annotations

import math

import pytest
import torch

from harness.errors import NonFiniteLossError
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
from methods import METHODS

LOOP = LoopConfig(max_epochs=4, patience=10, select_metric="mae", progress=False)


def _fit(tiny_data, seed: int, method: str = "lf_dnn", loop: LoopConfig = LOOP, callbacks=()):
    spec, splits = tiny_data
    cls = METHODS.get(method)
    model = build_model(cls, cls.resolve_hparams(spec.kind, {"batch_size": 16}), spec, seed)
    context = RunContext("tiny", method, seed)
    return fit(model, splits["train"], splits["valid"], loop, context, seed, callbacks)


def test_same_seed_gives_bit_identical_metrics(tiny_data) -> None:
    _, splits = tiny_data
    first = _fit(tiny_data, seed=5)
    second = _fit(tiny_data, seed=5)
    test_a, pred_a = evaluate(first.model, splits["test"], 64, "cpu")
    test_b, pred_b = evaluate(second.model, splits["test"], 64, "cpu")
    assert (pred_a == pred_b).all()
    assert test_a == pytest.approx(test_b, abs=0.0, nan_ok=True)
    assert [h.train for h in first.history] == [h.train for h in second.history]


def test_different_seeds_differ(tiny_data) -> None:
    _, splits = tiny_data
    a = evaluate(_fit(tiny_data, seed=1).model, splits["test"], 64, "cpu")[1]
    b = evaluate(_fit(tiny_data, seed=2).model, splits["test"], 64, "cpu")[1]
    assert not (a == b).all()


def test_history_has_named_terms_and_validation_metrics(tiny_data) -> None:
    outcome = _fit(tiny_data, seed=0)
    assert outcome.epochs_run == 4
    for log in outcome.history:
        assert {"task", "total"} <= set(log.train)
        assert {"mae", "corr", "acc7"} <= set(log.valid)


def test_best_weights_are_restored_and_match_best_validation(tiny_data) -> None:
    _, splits = tiny_data
    outcome = _fit(tiny_data, seed=0)
    best = min(outcome.history, key=lambda log: log.valid["mae"])
    assert outcome.best_epoch == best.epoch
    metrics, _ = evaluate(outcome.model, splits["valid"], 64, "cpu")
    assert metrics["mae"] == pytest.approx(best.valid["mae"], rel=1e-6)


def test_early_stopping_respects_patience(tiny_data) -> None:
    loop = LoopConfig(max_epochs=50, patience=2, select_metric="mae", progress=False)
    # a learning rate of 0 never improves after epoch 1, so training stops at epoch 1 + patience
    spec, splits = tiny_data
    cls = METHODS.get("lf_dnn")
    hparams = cls.resolve_hparams(
        spec.kind,
        {"learning_rate": 0.0, "dropout": 0.0, "post_fusion_dropout": 0.0, "batch_size": 16},
    )
    model = build_model(cls, hparams, spec, 0)
    for module in model.modules():  # nor do BatchNorm's running statistics move
        if isinstance(module, torch.nn.BatchNorm1d):
            module.momentum = 0.0
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("t", "lf_dnn", 0), 0)
    assert outcome.epochs_run == 3


def test_callbacks_see_every_epoch(tiny_data) -> None:
    seen = []
    _fit(tiny_data, seed=0, callbacks=[lambda log: seen.append(log.epoch)])
    assert seen == [1, 2, 3, 4]


def test_non_finite_loss_names_dataset_method_seed_epoch(tiny_data, monkeypatch) -> None:
    cls = METHODS.get("lf_dnn")
    original = cls.loss_terms

    def poisoned(self, batch, outputs):
        terms = original(self, batch, outputs)
        return {**terms, "task": terms["task"] * math.nan}

    monkeypatch.setattr(cls, "loss_terms", poisoned)
    with pytest.raises(NonFiniteLossError) as info:
        _fit(tiny_data, seed=3)
    message = str(info.value)
    for part in ("'tiny'", "'lf_dnn'", "seed 3", "epoch 1", "task"):
        assert part in message
    assert "\n" not in message


def test_device_auto_resolves_to_cpu_without_cuda() -> None:
    from harness.training.loop import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_amp_changes_nothing_on_cpu(tiny_data) -> None:
    """Mixed precision exists on CUDA only: on CPU `amp` must give the same bits."""
    from dataclasses import replace

    _, splits = tiny_data
    plain = _fit(tiny_data, seed=3, method="mmim")  # mmim: an extra optimiser step too
    mixed = _fit(tiny_data, seed=3, method="mmim", loop=replace(LOOP, amp=True))
    a = evaluate(plain.model, splits["test"], 64, "cpu")[1]
    b = evaluate(mixed.model, splits["test"], 64, "cpu")[1]
    assert (a == b).all()
    assert [h.train for h in plain.history] == [h.train for h in mixed.history]
