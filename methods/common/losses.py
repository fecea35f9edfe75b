"""Task losses shared by methods. Predictions and labels are (B,).

The regression kinds use "l1" or "mse" (each method's reference says which). The binary kind
uses "bce": binary cross-entropy of the predicted probability of class 1 (the sigmoid head over
(0, 1)) against the 0/1 labels; `methods.base` sets both for every method on that kind.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.errors import ConfigError


def _binary_cross_entropy(probability: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean BCE of probabilities (B,) in [0, 1] against labels (B,) in {0, 1}, in float32 (torch
    refuses BCE under float16 autocast). Through the sigmoid head its gradient with respect to the
    logit is p - y until the probability rounds to exactly 0 or 1 (|logit| > ~88 in float32)."""
    with torch.autocast(probability.device.type, enabled=False):
        return F.binary_cross_entropy(probability.float(), labels.float())


TASK_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "bce": _binary_cross_entropy}
REGRESSION_LOSSES = ("l1", "mse")


def task_loss(name: str, prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The task loss named `name` ("l1", "mse" or "bce") between (B,) tensors."""
    if name not in TASK_LOSSES:
        raise ConfigError(f"task_loss: expected one of {sorted(TASK_LOSSES)}, got {name!r}")
    return TASK_LOSSES[name](prediction, labels)
