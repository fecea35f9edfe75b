"""Factorized bilinear pooling (FBP), i.e. MFB: Yu, Yu, Fan & Tao, "Multi-modal Factorized Bilinear
Pooling with Co-Attention Learning for Visual Question Answering", ICCV 2017.

A bilinear map z_i = x^T W_i y (i = 1..o) with each W_i factorised as U_i V_i^T of rank k:

    joint = dropout((U x) * (V y))                 (..., o*k)  U: D_x -> o*k, V: D_y -> o*k
    z     = sum of each group of k consecutive entries of joint          (..., o)   (sum pooling)
    z     = sign(z) * (sqrt(|z| + eps) - sqrt(eps))     power normalisation (signed square root)
    z     = z / max(||z||_2, eps)                       L2 normalisation over the o entries

x (..., D_x) and y (..., D_y) have broadcastable leading dimensions (e.g. (B, T, D_x) with
(B, 1, D_y)); the output is (..., o). Used by IR-SVR (hidden o = 32, factor k = 2) to gate fusion
by the modality-invariant representation.

Choices, each documented here once:
  * U and V have no bias by default (as IR-SVR's v1 code, X-G-Y/SATI's `FBP`), so a zero x or y
    gives a zero output exactly; MFB's own code has biases (`bias=True`).
  * The signed square root is shifted by sqrt(eps) so that it is exactly 0 at 0 but has a finite
    slope there (1 / (2 sqrt(eps))); MFB's sqrt(relu(z)) - sqrt(relu(-z)) has an infinite one.
    Away from 0 it differs from sign(z) sqrt(|z|) by at most sqrt(eps) (1e-3 for eps = 1e-6).
  * L2 normalisation divides by max(norm, eps) (F.normalize), so a zero vector stays zero.
  * `power_norm=False` skips the signed square root (IR-SVR's v1 code only L2-normalises).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def signed_sqrt(z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MFB's power normalisation, exactly 0 at 0 with a finite gradient: any shape -> same."""
    return torch.sign(z) * (torch.sqrt(z.abs() + eps) - eps**0.5)


class FactorizedBilinearPooling(nn.Module):
    """MFB: x (..., in_x), y (..., in_y) -> (..., hidden); see the module docstring."""

    def __init__(
        self,
        in_x: int,
        in_y: int,
        hidden: int,
        factor: int,
        dropout: float = 0.0,
        bias: bool = False,
        power_norm: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if hidden < 1 or factor < 1:
            raise ValueError(f"FBP: hidden and factor must be positive, got {hidden}, {factor}")
        self.hidden, self.factor = hidden, factor
        self.project_x = nn.Linear(in_x, hidden * factor, bias=bias)
        self.project_y = nn.Linear(in_y, hidden * factor, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.power_norm = power_norm
        self.eps = eps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        joint = self.dropout(self.project_x(x) * self.project_y(y))  # (..., o*k)
        z = joint.unflatten(-1, (self.hidden, self.factor)).sum(dim=-1)  # (..., o)
        if self.power_norm:
            z = signed_sqrt(z, self.eps)
        return F.normalize(z, p=2.0, dim=-1, eps=self.eps)
