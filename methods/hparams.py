"""The hyperparameters every method has (`OptimHparams`: the training recipe the loop reads,
the output head, the text encoder) and the checks of a resolved set of them, which
`MsaMethod.resolve_hparams` (methods/base.py) runs: one-line ConfigErrors naming the key.
Not a method module (methods/__init__.py's NOT_METHODS)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.data.spec import is_classification
from harness.errors import ConfigError
from methods.common.heads import OUTPUT_HEADS
from methods.common.losses import REGRESSION_LOSSES


@dataclass(frozen=True)
class OptimHparams:
    """Hyperparameters every method has (the loop reads these).

    The training recipe is part of them, so each method declares its reference's recipe next
    to its other defaults (MMSA's trainer for the method where MMSA has it) and a user can switch
    any part of it in params.yaml: gradient accumulation, clipping by norm or by value, a
    learning-rate schedule. Parameter groups with their own rates are `parameter_groups`, and
    alternating optimisation passes are `training_passes` (below)."""

    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8  # Adam's epsilon (torch's default; MMSA's CENET sets its own)
    batch_size: int = 32
    grad_clip: float = 0.0  # the clipping threshold; 0 disables clipping
    # GRAD_CLIP_MODES: "norm" clips the global norm of every parameter's gradient before each
    # optimiser step; "value" clips each gradient entry to [-grad_clip, grad_clip] after every
    # backward, as MMSA's MulT and MISA trainers do (`clip_grad_value_` per batch)
    grad_clip_mode: str = "norm"
    # batches whose gradients are summed (not averaged) into one optimiser step (MMSA's
    # `update_epochs`); a remainder at an epoch's end is dropped, as MMSA's trainers drop it
    grad_accumulation: int = 1
    # GRAD_ACCUMULATION_MODES: "sum" steps once per `grad_accumulation` batches on their summed
    # gradients (MMSA's MulT, MISA, Self-MM); "running" zeroes the gradients every
    # `grad_accumulation` batches but steps after every batch on the running sum, and once more
    # at the cycle's last batch (MMSA's TFR-Net trainer: k + 1 steps per k batches)
    grad_accumulation_mode: str = "sum"
    # OPTIMIZERS: "adam" (torch's Adam, weight decay as an L2 term: MMSA's trainers) or "adamw"
    # (decoupled weight decay: MMSA's ALMT), for the main pass and every method pass
    optimizer: str = "adam"
    # LR_SCHEDULERS, on the main optimiser, stepped after every epoch: "none"; "plateau": torch's
    # ReduceLROnPlateau on the validation selection metric (with select_metric mae that is MMSA's
    # validation L1 loss), its `scheduler_factor` and `scheduler_patience`; "warmup_cosine":
    # MMSA's ALMT schedule over n = `scheduler_epochs` epochs (0: the run's max_epochs), a linear
    # warm-up from 0 over 0.1 n epochs, then a cosine over 0.9 n (harness/training/optimisers.py)
    lr_scheduler: str = "none"
    scheduler_factor: float = 0.1
    scheduler_patience: int = 5
    scheduler_epochs: int = 0
    # OUTPUT_HEADS (methods/common/heads.py): how the score leaves the model: "linear" (MMSA's
    # LF-DNN, LMF, MulT, MISA, MMIM, Self-MM and the four later baselines), "sigmoid" into the
    # label range (MMSA's TFN), or "clamp" into it with a straight-through gradient
    output_head: str = "sigmoid"
    text_encoder: str = "auto"  # TEXT_ENCODERS: auto | features | pretrained
    text_finetune: bool = True  # pretrained encoder fine-tuned (True) or frozen
    learning_rate_bert: float = 5e-5  # the pretrained encoder's group (MMSA's BERT settings)
    weight_decay_bert: float = 0.0
    # the encoder's biases and LayerNorm weights without weight decay, in a group of their own
    # (MMSA's Self-MM; the usual BERT fine-tuning recipe)
    bert_no_decay_norms: bool = False


TEXT_ENCODERS = ("auto", "features", "pretrained")
# what a classification kind fixes for every method, before the method's own KIND_DEFAULTS: the
# prediction is the probability of class 1 (the sigmoid head over the (0, 1) label range) and
# the task loss its binary cross-entropy (fields a method does not have are skipped)
TASK_KIND_HPARAMS: dict[str, dict[str, Any]] = {
    "binary": {"output_head": "sigmoid", "task_loss": "bce"},
}
GRAD_CLIP_MODES = ("norm", "value")
GRAD_ACCUMULATION_MODES = ("sum", "running")
LR_SCHEDULERS = ("none", "plateau", "warmup_cosine")
OPTIMIZERS = ("adam", "adamw")


def check_choice(hparams: OptimHparams, key: str, choices: Iterable[str], where: str) -> None:
    """ConfigError naming `where`.<key> unless hparams.<key> is one of `choices`."""
    value, allowed = getattr(hparams, key), list(choices)
    if value not in allowed:
        raise ConfigError(f"{where}.{key}: expected one of {', '.join(allowed)}, got {value!r}")


def _check_recipe(hparams: OptimHparams, where: str) -> None:
    """The training recipe's and output head's values: ConfigError naming `where`.<key> for one
    the loop or the method cannot use."""
    check_choice(hparams, "grad_clip_mode", GRAD_CLIP_MODES, where)
    check_choice(hparams, "lr_scheduler", LR_SCHEDULERS, where)
    check_choice(hparams, "optimizer", OPTIMIZERS, where)
    check_choice(hparams, "grad_accumulation_mode", GRAD_ACCUMULATION_MODES, where)
    if hparams.scheduler_epochs < 0:
        raise ConfigError(
            f"{where}.scheduler_epochs: expected >= 0 (0 = the run's max_epochs), got "
            f"{hparams.scheduler_epochs}"
        )
    check_choice(hparams, "output_head", OUTPUT_HEADS, where)
    if hparams.grad_clip < 0:
        raise ConfigError(
            f"{where}.grad_clip: expected >= 0 (0 = no clipping), got {hparams.grad_clip}"
        )
    if hparams.grad_accumulation < 1:
        raise ConfigError(
            f"{where}.grad_accumulation: expected >= 1 batches per step, got "
            f"{hparams.grad_accumulation}"
        )
    if not 0 < hparams.scheduler_factor < 1 or hparams.scheduler_patience < 0:
        raise ConfigError(
            f"{where}.scheduler_factor/scheduler_patience: expected a factor in (0, 1) and a "
            f"patience >= 0, got {hparams.scheduler_factor} and {hparams.scheduler_patience}"
        )


def _check_task(hparams: OptimHparams, kind: str, where: str) -> None:
    """A classification kind needs the probability head and the BCE loss; a regression kind
    refuses the BCE loss. ConfigError naming `where`.<key> otherwise."""
    loss = getattr(hparams, "task_loss", None)
    if is_classification(kind):
        for key, value in TASK_KIND_HPARAMS[kind].items():
            if getattr(hparams, key, value) != value:
                raise ConfigError(
                    f"{where}.{key}: a dataset of kind {kind!r} needs {value!r} (the prediction "
                    f"is the probability of class 1), got {getattr(hparams, key)!r}"
                )
    elif loss is not None and loss not in REGRESSION_LOSSES:
        raise ConfigError(
            f"{where}.task_loss: expected one of {', '.join(REGRESSION_LOSSES)} on a dataset "
            f"of kind {kind!r}, got {loss!r}"
        )


def _coerce(value: Any, field: dataclasses.Field, key: str) -> Any:
    """Check a hyperparameter value against its dataclass field's declared type."""
    expected = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if expected == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif expected == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
    elif expected == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif expected == "str" and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value
