"""Sequential variation regularisers: how much a representation sequence changes from one real time
step to the next. IR-SVR's "sequential variation regularization" (Xu et al., arXiv 2409.00143):
v3 penalises the total variation of the sequence, v1 (SATI, code X-G-Y/SATI) a Jensen-Shannon
divergence between consecutive steps.

B = batch, T = padded steps, D = features; x (B, T, D) float, mask (B, T) bool, True at real steps.
A *pair* is (t, t+1) with both steps real; padding, and anything at padding, never counts. Every
function returns a scalar that is exactly 0 for a sequence constant over its real steps, 0 when no
pair exists (length-1 or empty sequences, T <= 1), and finite with finite gradients everywhere;
values at padding are never read (even inf or NaN there changes nothing).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

VARIATIONS = ("tv", "js")


def real_pairs(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool -> (B, max(T - 1, 0)) bool: True where steps t and t+1 are both real."""
    return mask[:, 1:] & mask[:, :-1]


def total_variation(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """IR-SVR v3: mean over all real pairs of the batch of ||x[b, t+1] - x[b, t]||_2.

    The plain (not squared) L2 norm of the first-order difference, averaged over pairs so the value
    does not grow with sequence length or batch size; scaling every difference by c scales it by
    |c|. The norm's gradient at a zero difference is 0 (torch's subgradient)."""
    _check(x, mask)
    pairs = real_pairs(mask)
    differences = torch.where(pairs.unsqueeze(-1), x[:, 1:] - x[:, :-1], 0.0)  # (B, T-1, D)
    norms = torch.linalg.vector_norm(differences, dim=-1)  # (B, T-1), 0 at non-pairs
    return norms.sum() / pairs.sum().clamp_min(1).to(x.dtype)


def jensen_shannon_variation(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """IR-SVR v1 (SATI's code): for each step t, p_t = batch mean of softmax(x[:, t]) and
    q_t = batch mean of softmax(x[:, t+1]), both over the samples for which (t, t+1) is a real
    pair; JS(p_t, q_t) = (KL(p_t || m) + KL(q_t || m)) / 2 with m = (p_t + q_t) / 2 and 1e-10
    added inside the logarithms, as SATI; the mean over the steps t that have at least one pair.
    SATI averages over all T - 1 steps of (unpadded) aligned sequences; padding is excluded here.
    Bounded by log 2."""
    _check(x, mask)
    pairs = real_pairs(mask).unsqueeze(-1)  # (B, T-1, 1)
    counts = pairs.sum(dim=0).to(x.dtype)  # (T-1, 1) samples per step
    probabilities = F.softmax(x, dim=-1)
    p = torch.where(pairs, probabilities[:, :-1], 0.0).sum(dim=0) / counts.clamp_min(1)  # (T-1, D)
    q = torch.where(pairs, probabilities[:, 1:], 0.0).sum(dim=0) / counts.clamp_min(1)
    m = (p + q) / 2
    divergence = (_kl(p, m) + _kl(q, m)) / 2  # (T-1,)
    steps = (counts.squeeze(-1) > 0).to(x.dtype)
    return (divergence * steps).sum() / steps.sum().clamp_min(1)


def sequential_variation(x: torch.Tensor, mask: torch.Tensor, form: str = "tv") -> torch.Tensor:
    """The regulariser named `form`: "tv" (`total_variation`) or "js"
    (`jensen_shannon_variation`). x (B, T, D), mask (B, T) -> scalar."""
    if form == "tv":
        return total_variation(x, mask)
    if form == "js":
        return jensen_shannon_variation(x, mask)
    raise ValueError(f"variation: expected one of {VARIATIONS}, got {form!r}")


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Row-wise KL(p || q) of (S, D) distributions with SATI's 1e-10 smoothing -> (S,)."""
    p, q = p + 1e-10, q + 1e-10
    return (p * torch.log(p / q)).sum(dim=-1)


def _check(x: torch.Tensor, mask: torch.Tensor) -> None:
    if x.ndim != 3 or mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(
            f"expected x (B, T, D) and a bool mask (B, T), got {tuple(x.shape)} and "
            f"{tuple(mask.shape)} {mask.dtype}"
        )
