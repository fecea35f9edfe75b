"""Regression outputs: a score per sample, left as it is or kept in the label range.

MMSA's models differ here, and the difference changes what a model learns near the range's
ends, so every method states its own (`output_head`, a hyperparameter every method has):
  * "linear": the raw score, as MMSA's LF-DNN, LMF, MulT, MISA, MMIM and Self-MM end;
  * "sigmoid": sigmoid(score) * (high - low) + low, as MMSA's TFN ends (output_range and
    output_shift); the paper methods written for msabench use it too;
  * "clamp": the score clamped into [low, high] with the identity as its gradient (straight
    through): predictions stay in range and training sees the linear score.
B = batch, H = input size.
"""

from __future__ import annotations

import torch
from torch import nn

OUTPUT_HEADS = ("linear", "sigmoid", "clamp")


def bound_scores(raw: torch.Tensor, output: str, label_range: tuple[float, float]) -> torch.Tensor:
    """Scores of any shape as `output` says ("linear", "sigmoid" or "clamp"); same shape."""
    low, high = label_range
    if output == "linear":
        return raw
    if output == "sigmoid":
        return torch.sigmoid(raw) * (high - low) + low
    if output == "clamp":  # exactly the clamped value (raw - raw.detach() is 0), raw's gradient
        return raw.clamp(low, high).detach() + (raw - raw.detach())
    raise ValueError(f"output head: expected one of {', '.join(OUTPUT_HEADS)}, got {output!r}")


class RegressionHead(nn.Module):
    """A Linear layer to one score, then `bound_scores`: (B, H) -> (B,)."""

    def __init__(self, in_size: int, label_range: tuple[float, float], output: str) -> None:
        super().__init__()
        if output not in OUTPUT_HEADS:
            choices = ", ".join(OUTPUT_HEADS)
            raise ValueError(f"output head: expected one of {choices}, got {output!r}")
        self.linear = nn.Linear(in_size, 1)
        self.output = output
        self.label_range = (float(label_range[0]), float(label_range[1]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return bound_scores(self.linear(h).squeeze(-1), self.output, self.label_range)
