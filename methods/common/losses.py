"""Task losses shared by methods. Predictions and labels are (B,)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.errors import ConfigError

TASK_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


def task_loss(name: str, prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The regression loss named `name` ("l1" or "mse") between (B,) tensors."""
    if name not in TASK_LOSSES:
        raise ConfigError(f"task_loss: expected one of {sorted(TASK_LOSSES)}, got {name!r}")
    return TASK_LOSSES[name](prediction, labels)
