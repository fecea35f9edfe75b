"""The training recipe in the one loop: gradient accumulation, clipping by value or by norm, the
plateau schedule and a method's own passes, each against the pattern of MMSA's trainers written
out here by hand."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from harness.data.loading import iterate_batches
from harness.errors import ConfigError
from harness.metrics import is_better
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from harness.training.optimisers import main_optimizer, warmup_cosine_factor
from methods import METHODS
from methods.base import TrainingPass

ONE_EPOCH = LoopConfig(max_epochs=1, patience=1, select_metric="mae", progress=False)
SEED = 7
NO_DROPOUT = {"dropout": 0.0, "post_fusion_dropout": 0.0}


def _lf_dnn(tiny_data, **recipe):
    spec, _ = tiny_data
    cls = METHODS.get("lf_dnn")
    hparams = cls.resolve_hparams(spec.kind, {"batch_size": 5, **NO_DROPOUT, **recipe})
    return build_model(cls, hparams, spec, SEED)


def _fit_one_epoch(tiny_data, **recipe) -> dict[str, torch.Tensor]:
    _, splits = tiny_data
    model = _lf_dnn(tiny_data, **recipe)
    fit(model, splits["train"], splits["valid"], ONE_EPOCH, RunContext("t", "lf_dnn", SEED), SEED)
    return model.state_dict()


def _mmsa_epoch(
    tiny_data, clip_mode: str, running: bool = False, **recipe
) -> dict[str, torch.Tensor]:
    """One epoch as MMSA's MulT/MISA trainers run it: zero_grad at the start of each cycle of
    `update_epochs` batches, backward, clip_grad_value_ after every backward (or, for MMIM's
    pattern, clip_grad_norm_ before the step), step when the cycle is full; the last partial
    cycle is never stepped. `running`: as MMSA's TFR-Net trainer, also a step after every
    backward, on the running sum."""
    _, splits = tiny_data
    model = _lf_dnn(tiny_data, **recipe)
    hp = model.hparams
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    model.train()
    shuffle = torch.Generator().manual_seed(SEED)
    left = hp.grad_accumulation
    for batch in iterate_batches(splits["train"], hp.batch_size, True, shuffle, False):
        if left == hp.grad_accumulation:
            optimizer.zero_grad()
        left -= 1
        loss = sum(model.loss_terms(batch, model(batch)).values())
        loss.backward()
        if clip_mode == "value":
            nn.utils.clip_grad_value_(params, hp.grad_clip)
        if running:
            optimizer.step()
        if not left:
            if clip_mode == "norm":
                nn.utils.clip_grad_norm_(params, hp.grad_clip)
            optimizer.step()
            left = hp.grad_accumulation
    return model.state_dict()


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize("mode", ["value", "norm"])
def test_accumulation_and_clipping_follow_mmsa_trainers(tiny_data, mode) -> None:
    # 64 training samples in batches of 5: 13 batches, so 4 steps of 3 and one batch dropped
    recipe = {"grad_accumulation": 3, "grad_clip": 0.01, "grad_clip_mode": mode}
    ours = _fit_one_epoch(tiny_data, **recipe)
    reference = _mmsa_epoch(tiny_data, mode, **recipe)
    assert _max_difference(ours, reference) < 1e-6
    plain = _fit_one_epoch(tiny_data)  # the recipe changes the weights: the test can fail
    assert _max_difference(ours, plain) > 1e-4


def test_running_accumulation_follows_mmsas_tfr_net_trainer(tiny_data) -> None:
    # 13 batches of 5: a step after each (13) and one more after batches 3, 6, 9 and 12
    recipe = {"grad_accumulation": 3, "grad_clip": 0.01, "grad_clip_mode": "value"}
    ours = _fit_one_epoch(tiny_data, grad_accumulation_mode="running", **recipe)
    reference = _mmsa_epoch(tiny_data, "value", running=True, **recipe)
    assert _max_difference(ours, reference) < 1e-6
    summed = _fit_one_epoch(tiny_data, **recipe)  # the mode changes the weights
    assert _max_difference(ours, summed) > 1e-4


def test_value_clipping_acts_after_every_backward(tiny_data) -> None:
    """clip(clip(g1) + g2) is not clip(g1 + g2): clipping only at the step would differ."""
    recipe = {"grad_accumulation": 3, "grad_clip": 0.01, "grad_clip_mode": "value"}
    ours = _fit_one_epoch(tiny_data, **recipe)
    at_step = _mmsa_epoch(tiny_data, "none", **{**recipe, "grad_clip": 0.0})
    assert _max_difference(ours, at_step) > 1e-4


def test_plateau_schedule_cuts_the_rate_after_epochs_without_improvement(tiny_data) -> None:
    _, splits = tiny_data
    spec, _ = tiny_data
    cls = METHODS.get("lf_dnn")
    hparams = cls.resolve_hparams(
        spec.kind,
        {
            "learning_rate": 3e-2,
            "lr_scheduler": "plateau",
            "scheduler_factor": 0.5,
            "scheduler_patience": 0,
        },
    )
    model = build_model(cls, hparams, spec, SEED)
    loop = LoopConfig(max_epochs=10, patience=100, select_metric="mae", progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("t", "p", 1), SEED)
    rate, best = 3e-2, None
    for log in outcome.history:  # ReduceLROnPlateau, mode min, relative threshold 1e-4
        score = log.valid["mae"]
        if best is None or score < best * (1 - 1e-4):
            best = score
        else:
            rate *= 0.5
        assert log.learning_rate == pytest.approx(rate)
    assert outcome.history[-1].learning_rate < 3e-2  # at least one cut happened


def test_no_schedule_keeps_the_rate(tiny_data) -> None:
    _, splits = tiny_data
    model = _lf_dnn(tiny_data, learning_rate=3e-2)
    loop = LoopConfig(max_epochs=4, patience=100, select_metric="mae", progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("t", "p", 1), SEED)
    assert [log.learning_rate for log in outcome.history] == [3e-2] * 4


# the rate multipliers of MMSA's own ALMT schedule (trains/singleTask/ALMT.py get_scheduler,
# MMSA master a94e65d), read epoch by epoch from its optimiser for a base rate of 1, stepping once
# per epoch as its trainer does: for MMSA's max_epochs 200 (the first 26 epochs) and for 15
MMSA_ALMT_RATES = {
    200: [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75,
          0.8, 0.85, 0.9, 0.95, 1.0, 1.0, 0.99992, 0.9997, 0.99931, 0.99878],
    15: [0.0, 0.66667, 1.0, 0.98652, 0.94682, 0.88302, 0.79858, 0.69804, 0.58682, 0.47093,
         0.3566, 0.25, 0.15688, 0.08226, 0.03015, 0.00338, 0.00338, 0.03015, 0.08226],
}  # fmt: skip


@pytest.mark.parametrize("epochs", sorted(MMSA_ALMT_RATES))
def test_warmup_cosine_is_mmsas_almt_schedule(epochs) -> None:
    expected = MMSA_ALMT_RATES[epochs]
    assert [round(warmup_cosine_factor(k, epochs), 5) for k in range(len(expected))] == expected


def test_the_loop_steps_the_warmup_cosine_schedule_and_adamw(tiny_data) -> None:
    """Each epoch's logged rate is the schedule's for the next epoch; n = the run's max_epochs
    when scheduler_epochs is 0; the optimiser is AdamW (decoupled weight decay)."""
    _, splits = tiny_data
    model = _lf_dnn(tiny_data, learning_rate=1e-2, lr_scheduler="warmup_cosine", optimizer="adamw")
    loop = LoopConfig(max_epochs=5, patience=100, select_metric="mae", progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("t", "p", 1), SEED)
    rates = [log.learning_rate for log in outcome.history]
    assert rates == pytest.approx([1e-2 * warmup_cosine_factor(k, 5) for k in range(1, 6)])
    assert isinstance(main_optimizer(model), torch.optim.AdamW)
    assert type(main_optimizer(_lf_dnn(tiny_data))) is torch.optim.Adam


def test_plateau_mode_follows_the_metric_direction() -> None:
    assert is_better("corr", 1.0, 0.0) and not is_better("mae", 1.0, 0.0)


class _WithOwnPass(METHODS.get("lf_dnn")):  # type: ignore[misc, valid-type]
    """LF-DNN with one extra vector trained only by a pass of its own before the main pass;
    the pass's loss also depends on the model's prediction, so its gradients reach the main
    parameters, which the pass must not step."""

    def __init__(self, hparams, spec) -> None:
        super().__init__(hparams, spec)
        self.extra = nn.Parameter(torch.ones(3))

    def parameter_groups(self):
        return [{"params": [p for p in self.parameters() if p is not self.extra]}]

    def training_passes(self):
        def terms(batch):
            return {"shrink": (self.extra**2).sum() + self(batch)["prediction"].mean()}

        group = {"params": [self.extra], "lr": 0.1, "weight_decay": 0.0}
        return [TrainingPass("own", [group], terms)]


def test_a_methods_own_pass_steps_only_its_parameters(tiny_data) -> None:
    spec, splits = tiny_data
    hparams = _WithOwnPass.resolve_hparams(
        spec.kind, {"learning_rate": 0.0, "batch_size": 16, **NO_DROPOUT}
    )
    model = build_model(_WithOwnPass, hparams, spec, SEED)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    outcome = fit(model, splits["train"], splits["valid"], ONE_EPOCH, RunContext("t", "o", 1), 1)
    after = dict(model.named_parameters())
    assert float(after["extra"].detach().abs().max()) < 0.9  # the pass stepped it (4 batches)
    assert all(torch.equal(before[k], after[k]) for k in before if k != "extra")
    assert {"shrink", "own_total", "task", "total"} <= set(outcome.history[0].train)


class _PartialPass(METHODS.get("lf_dnn")):  # type: ignore[misc, valid-type]
    """LF-DNN with a pass of its own that reads a share of the batches and records them."""

    fraction = 1.0

    def __init__(self, hparams, spec) -> None:
        super().__init__(hparams, spec)
        self.extra = nn.Parameter(torch.ones(1))
        self.seen: list[list[int]] = []

    def parameter_groups(self):
        return [{"params": [p for p in self.parameters() if p is not self.extra]}]

    def training_passes(self):
        def terms(batch):
            self.seen.append(batch.index.tolist())
            return {"shrink": (self.extra**2).sum()}

        group = {"params": [self.extra], "lr": 0.1, "weight_decay": 0.0}
        return [TrainingPass("own", [group], terms, self.fraction)]


@pytest.mark.parametrize(("fraction", "expected"), [(1.0, 4), (0.5, 2), (0.6, 3), (0.1, 1)])
def test_a_pass_reads_the_first_share_of_the_batches(fraction, expected, tiny_data) -> None:
    """MMSA's MMIM on MOSEI: `if i_batch / len(loader) >= 0.5: break` over the shuffled loader;
    here 64 samples in batches of 16 (4 batches)."""
    spec, splits = tiny_data
    cls = type("Partial", (_PartialPass,), {"fraction": fraction})
    hparams = cls.resolve_hparams(spec.kind, {"batch_size": 16, **NO_DROPOUT})
    model = build_model(cls, hparams, spec, SEED)
    fit(model, splits["train"], splits["valid"], ONE_EPOCH, RunContext("t", "p", 1), 1)
    shuffled = iterate_batches(splits["train"], 16, True, torch.Generator().manual_seed(1), False)
    first = [batch.index.tolist() for batch in shuffled]
    assert model.seen == first[:expected]
    assert expected == len([i for i in range(4) if i / 4 < fraction])  # MMSA's rule
    with pytest.raises(ValueError, match="fraction must be in"):
        TrainingPass("own", [], lambda batch: {}, 0.0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("grad_clip_mode", "global", "grad_clip_mode: expected one of norm, value"),
        ("lr_scheduler", "cosine", "lr_scheduler: expected one of none, plateau, warmup_cosine"),
        ("optimizer", "sgd", "optimizer: expected one of adam, adamw"),
        ("grad_accumulation_mode", "mean", "grad_accumulation_mode: expected one of sum, running"),
        ("scheduler_epochs", -1, "scheduler_epochs: expected >= 0"),
        ("adam_epsilon", 0.0, "adam_epsilon: expected > 0"),
        ("grad_accumulation", 0, "grad_accumulation: expected >= 1"),
        ("grad_clip", -1.0, "grad_clip: expected >= 0"),
        ("scheduler_factor", 1.5, "scheduler_factor/scheduler_patience: expected a factor"),
    ],
)
def test_bad_recipe_values_are_one_line_errors(key, value, message) -> None:
    cls = METHODS.get("mult")
    with pytest.raises(ConfigError, match=message) as error:
        cls.resolve_hparams("mosi", {key: value}, where="methods.mult.hparams")
    assert str(error.value).startswith(f"methods.mult.hparams.{key}")
    assert "\n" not in str(error.value)


def test_recipe_fields_are_hyperparameters_of_every_method() -> None:
    for name in METHODS.names():
        fields = {f.name for f in dataclasses.fields(METHODS.get(name).Hparams)}
        assert {"grad_accumulation", "grad_clip_mode", "lr_scheduler"} <= fields, name
