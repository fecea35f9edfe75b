"""Similarity and factorisation losses between batches of representations, defined once here.

Used by MISA (Hazarika et al., ACM MM 2020) and by every method that builds on its shared/private
factorisation (IR-SVR, FINE's "FTRE replaced by MISA" ablation, FSRF's homogeneous/heterogeneous
split). B = batch, H = representation size. All three functions return scalar tensors and are
differentiable everywhere, including at a perfect match (where a plain `sqrt(sum(.^2))` would give
NaN gradients).

References
    CMD: Zellinger et al., "Central Moment Discrepancy (CMD) for Domain-Invariant Representation
    Learning", ICLR 2017; the form below is MISA's (declare-lab/MISA, MMSA's `CMD`).
    Difference loss: Bousmalis et al., "Domain Separation Networks", NeurIPS 2016, as MISA's
    `DiffLoss`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _check_2d(name: str, x: torch.Tensor) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a (B, H) tensor, got shape {tuple(x.shape)}")


def cmd(x: torch.Tensor, y: torch.Tensor, n_moments: int = 5) -> torch.Tensor:
    """Central Moment Discrepancy between two samples: x (B_x, H), y (B_y, H) -> scalar.

    cmd = ||E[x] - E[y]||_2 + sum_{k=2..n_moments} ||E[(x - E[x])^k] - E[(y - E[y])^k]||_2,
    expectations over the batch, per column. This is MISA's form: Zellinger et al. divide the k-th
    term by |b - a|^k for activations in [a, b]; MISA applies CMD to sigmoid outputs (b - a = 1),
    where both agree. 0 for identical batches; a pure shift y = x + c gives ||c||_2.
    """
    _check_2d("x", x)
    _check_2d("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"cmd: x has {x.shape[1]} columns but y has {y.shape[1]}")
    if n_moments < 1:
        raise ValueError(f"n_moments: expected a positive integer, got {n_moments}")
    mean_x, mean_y = x.mean(dim=0), y.mean(dim=0)
    centred_x, centred_y = x - mean_x, y - mean_y
    total = torch.linalg.vector_norm(mean_x - mean_y)
    for k in range(2, n_moments + 1):
        moment_x = centred_x.pow(k).mean(dim=0)
        moment_y = centred_y.pow(k).mean(dim=0)
        total = total + torch.linalg.vector_norm(moment_x - moment_y)
    return total


def difference_loss(shared: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """MISA's soft orthogonality constraint: shared (B, H_s), private (B, H_p) -> scalar >= 0.

    Each input is made zero-mean over the batch and each row scaled to unit L2 norm (the norm is
    treated as a constant in the backward pass, and 1e-6 is added to it, as in MISA's code); the
    result is the mean of the squared entries of the (H_s, H_p) correlation matrix
    shared_n^T private_n, i.e. its squared Frobenius norm divided by H_s * H_p. (The paper writes
    the plain squared Frobenius norm; MISA's code, whose loss weights we use, takes the mean.)
    0 when every column of `shared` is orthogonal to every column of `private`; symmetric in its
    arguments and unchanged by rescaling either one.
    """
    _check_2d("shared", shared)
    _check_2d("private", private)
    if shared.shape[0] != private.shape[0]:
        raise ValueError(
            f"difference_loss: shared has {shared.shape[0]} rows but private has {private.shape[0]}"
        )
    correlation = _unit_rows(shared).t() @ _unit_rows(private)
    return correlation.pow(2).mean()


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Zero-mean columns, then rows divided by their (detached) L2 norm + 1e-6: (B, H) -> (B, H)."""
    centred = x - x.mean(dim=0, keepdim=True)
    norms = torch.linalg.vector_norm(centred, dim=1, keepdim=True).detach()
    return centred / (norms + 1e-6)


def reconstruction_loss(reconstructed: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between tensors of the same shape (e.g. (B, H)) -> scalar."""
    if reconstructed.shape != target.shape:
        raise ValueError(
            f"reconstruction_loss: shapes differ, {tuple(reconstructed.shape)} vs "
            f"{tuple(target.shape)}"
        )
    return F.mse_loss(reconstructed, target)
