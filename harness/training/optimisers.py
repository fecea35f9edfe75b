"""The optimisers and learning-rate schedule of a fit, as the method's recipe declares them: the
main pass's Adam over the method's parameter groups (a fine-tuned text encoder in groups of its
own), one Adam per method pass (`training_passes`), and the optional plateau schedule."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from harness.data.types import Batch
from harness.metrics import is_better
from methods.base import MsaMethod, OptimHparams
from methods.common.pretrained_text import (
    TEXT_ENCODER_GROUP,
    is_bias_or_norm,
    named_text_encoder_parameters,
)


def training_steps(model: MsaMethod) -> list[TrainingStep]:
    """The passes of every epoch, in order: the method's own (`training_passes`, each with its
    own Adam), then the main one (`main_optimizer`, loss None)."""
    steps = [
        TrainingStep(p.name, _adam(p.parameter_groups, model.hparams), p.loss_terms, p.fraction)
        for p in model.training_passes()
    ]
    steps.append(TrainingStep("main", main_optimizer(model), None))
    return steps


@dataclass(frozen=True)
class TrainingStep:
    """One pass of an epoch as the loop runs it: its optimiser, its loss (None: the method's
    loss_terms over model(batch), with the extra step before each batch), and the share of the
    epoch's batches it reads (TrainingPass.fraction)."""

    name: str
    optimizer: torch.optim.Optimizer
    loss_terms: Callable[[Batch], dict[str, torch.Tensor]] | None
    fraction: float = 1.0


def main_optimizer(model: MsaMethod) -> torch.optim.Optimizer:
    """The main pass's Adam over the method's parameter groups. A fine-tuned pretrained text
    encoder's parameters leave the method's groups for a group of their own (`text_encoder`:
    learning_rate_bert, weight_decay_bert), as MMSA does."""
    return _adam(text_encoder_groups(model), model.hparams)


def _adam(groups: list[dict[str, Any]], hp: OptimHparams) -> torch.optim.Optimizer:
    """The recipe's optimiser (`hp.optimizer`: Adam, or AdamW with decoupled weight decay) over
    parameter groups (lr and weight decay from `hp` where a group sets none; the epsilon
    `hp.adam_epsilon` for every group: MMSA's CENET sets it per dataset), fused (one kernel for
    every parameter) where torch has it (CPU and CUDA): 10x faster than the per-parameter loop
    on a 9M-parameter model (TFN), which otherwise spends a fifth of each step in the optimiser
    (bench/README.md)."""
    devices = {p.device.type for group in groups for p in group["params"]}
    fused = devices <= {"cpu", "cuda"}
    optimizer = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
    return optimizer(
        groups, lr=hp.learning_rate, weight_decay=hp.weight_decay, eps=hp.adam_epsilon, fused=fused
    )


def make_scheduler(
    hp: OptimHparams, optimizer: torch.optim.Optimizer, select_metric: str, max_epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """The recipe's learning-rate schedule on the main optimiser, or None; the loop steps it
    after every epoch (`step_scheduler`). `plateau` reduces every group's rate by
    `scheduler_factor` after `scheduler_patience` epochs without a better validation
    `select_metric` (its direction from the metric); `warmup_cosine` is MMSA's ALMT schedule
    (`warmup_cosine_factor`) over `scheduler_epochs` epochs, or `max_epochs` when that is 0."""
    if hp.lr_scheduler == "none":
        return None
    if hp.lr_scheduler == "warmup_cosine":
        epochs = hp.scheduler_epochs or max_epochs
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine_factor(step, epochs)
        )
    mode = "max" if is_better(select_metric, 1.0, 0.0) else "min"
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=hp.scheduler_factor, patience=hp.scheduler_patience
    )


def step_scheduler(scheduler, score: float) -> None:
    """One epoch's step: the plateau schedule reads the validation score, the others do not."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(score)
    else:
        scheduler.step()


def warmup_cosine_factor(step: int, epochs: int) -> float:
    """The rate multiplier of the epoch after `step` scheduler steps (0 for the first epoch) in
    MMSA's ALMT schedule for `epochs` epochs (trains/singleTask/ALMT.py `get_scheduler`: a
    GradualWarmupScheduler of 0.1 epochs, multiplier 1, then CosineAnnealingLR with T_max 0.9
    epochs, both fractional): step / W while step <= W = 0.1 epochs (the first epoch trains at
    rate 0), then (1 + cos(pi j / T)) / 2 with j = step - floor(W) - 1 and T = 0.9 epochs (the
    closed form, periodic past T, as torch's). Tested against MMSA's own scheduler's rates."""
    warmup, cosine = 0.1 * epochs, 0.9 * epochs
    if step <= warmup:
        return step / warmup
    j = step - math.floor(warmup) - 1
    return (1.0 + math.cos(math.pi * j / cosine)) / 2.0


def text_encoder_groups(model: MsaMethod) -> list[dict[str, Any]]:
    """The method's parameter groups with every trainable PretrainedTextEncoder parameter moved
    into a last group named TEXT_ENCODER_GROUP (none if there are no such parameters); with
    `bert_no_decay_norms` its biases and LayerNorm weights go to a group of their own without
    weight decay (TEXT_ENCODER_GROUP + "_no_decay"), as MMSA's Self-MM groups BERT."""
    named = named_text_encoder_parameters(model)
    if not named:
        return model.parameter_groups()
    ids = {id(p) for _, p in named}
    groups = []
    for group in model.parameter_groups():
        rest = [p for p in group["params"] if id(p) not in ids]
        if rest:
            groups.append({**group, "params": rest})
    hp = model.hparams
    exempt = [p for n, p in named if hp.bert_no_decay_norms and is_bias_or_norm(n)]
    exempt_ids = {id(p) for p in exempt}
    decayed = [p for _, p in named if id(p) not in exempt_ids]
    groups.append(
        {
            "params": decayed,
            "lr": hp.learning_rate_bert,
            "weight_decay": hp.weight_decay_bert,
            "name": TEXT_ENCODER_GROUP,
        }
    )
    if exempt:
        groups.append(
            {
                "params": exempt,
                "lr": hp.learning_rate_bert,
                "weight_decay": 0.0,
                "name": f"{TEXT_ENCODER_GROUP}_no_decay",
            }
        )
    return groups
