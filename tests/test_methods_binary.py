"""Every method on the binary (classification) kind: the kind chooses the head (the probability
of class 1) and the loss (binary cross-entropy) for every method that supports it, without a
code path of its own; the one that does not (Self-MM) refuses the kind with its reason."""

from __future__ import annotations

import pytest
import torch

from harness.data.loading import take_batch
from harness.errors import ConfigError
from harness.metrics import METRICS
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
from methods import METHODS

ALL_METHODS = METHODS.names()


@pytest.mark.parametrize("name", ALL_METHODS)
def test_binary_kind_trains_every_method_that_supports_it(name, tiny_binary_data) -> None:
    spec, splits = tiny_binary_data
    cls = METHODS.get(name)
    if "binary" not in cls.KINDS:
        with pytest.raises(ConfigError, match=f"{name} cannot be trained on a dataset of kind"):
            cls.resolve_hparams("binary")
        assert cls.UNSUPPORTED_KINDS_REASON
        return
    hparams = cls.resolve_hparams("binary", {"learning_rate": 3e-3})
    assert hparams.output_head == "sigmoid"
    assert getattr(hparams, "task_loss", "bce") == "bce"
    model = build_model(cls, hparams, spec, seed=0)
    batch = take_batch(splits["train"], torch.arange(16))
    outputs = model(batch)
    probability = outputs["prediction"]
    assert ((probability >= 0) & (probability <= 1)).all()
    terms = model.loss_terms(batch, outputs)
    expected = torch.nn.functional.binary_cross_entropy(probability, batch.labels)
    assert float(terms["task"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    if cls.CLOSED_FORM:  # logistic regression: the fit lowers the BCE from the zero model's
        model.eval()
        before = float(model.loss_terms(batch, model(batch))["task"])
        model.fit_closed_form(splits["train"], splits["valid"], "f1_weighted")
        assert float(model.loss_terms(batch, model(batch))["task"]) < before
        return
    optimizer = torch.optim.Adam(model.parameters(), lr=hparams.learning_rate)

    def total() -> float:
        model.start_epoch(1)  # state kept across batches (MMIM's memories) starts afresh
        return float(
            torch.stack(list(model.loss_terms(batch, model(batch)).values())).sum().detach()
        )

    torch.manual_seed(0)
    before = total()
    for _ in range(20):
        optimizer.zero_grad()
        torch.stack(list(model.loss_terms(batch, model(batch)).values())).sum().backward()
        optimizer.step()
    torch.manual_seed(0)
    assert total() < before


def test_the_kind_refuses_a_regression_head_or_loss() -> None:
    cls = METHODS.get("lf_dnn")
    with pytest.raises(ConfigError, match=r"hparams\.output_head: a dataset of kind 'binary'"):
        cls.resolve_hparams("binary", {"output_head": "linear"})
    with pytest.raises(ConfigError, match=r"hparams\.task_loss: a dataset of kind 'binary'"):
        cls.resolve_hparams("binary", {"task_loss": "l1"})
    with pytest.raises(ConfigError, match=r"hparams\.task_loss: expected one of l1, mse"):
        cls.resolve_hparams("mosi", {"task_loss": "bce"})


def test_fit_and_evaluate_report_the_binary_metrics(tiny_binary_data) -> None:
    spec, splits = tiny_binary_data
    cls = METHODS.get("lf_dnn")
    model = build_model(cls, cls.resolve_hparams("binary"), spec, seed=0)
    config = LoopConfig(max_epochs=2, patience=2, select_metric="f1_weighted", progress=False)
    outcome = fit(model, splits["train"], splits["valid"], config, RunContext("t", "lf_dnn", 0), 0)
    assert set(outcome.best_valid) == set(METRICS["binary"])
    metrics, predictions = evaluate(outcome.model, splits["test"], 64, "cpu")
    assert list(metrics) == list(METRICS["binary"])
    assert ((predictions >= 0) & (predictions <= 1)).all()
