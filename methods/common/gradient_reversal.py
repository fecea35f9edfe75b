"""Gradient reversal layer (Ganin & Lempitsky, "Unsupervised Domain Adaptation by
Backpropagation", ICML 2015): identity in the forward pass, gradient multiplied by -lambda in the
backward pass. Placed between a feature extractor and an adversarial discriminator, it lets one
optimiser step train the discriminator to *minimise* its loss while the features below it are
trained to *maximise* it (MISA's adversarial variant, IR-SVR's modality discriminator).

Any shape: x (...) -> (...), unchanged values; lambda is a plain float (not trained).
"""

from __future__ import annotations

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    """Forward: identity (a view of x); backward: -lambda * grad."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """x unchanged; in the backward pass its gradient is multiplied by -coefficient (lambda).
    coefficient 0 blocks the gradient; a negative coefficient (which would undo the reversal)
    is rejected."""
    if coefficient < 0:
        raise ValueError(f"gradient reversal coefficient: expected >= 0, got {coefficient}")
    return _ReverseGradient.apply(x, float(coefficient))


class GradientReversal(nn.Module):
    """Module form of `reverse_gradient` with a fixed coefficient lambda."""

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        if coefficient < 0:
            raise ValueError(f"gradient reversal coefficient: expected >= 0, got {coefficient}")
        self.coefficient = float(coefficient)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}"
