"""Self-distillation between two views of one network: a complete (teacher) and an incomplete
(student) view of the same samples (FSRF's distribution-aligned self-distillation; usable by any
method that trains on both views).

Divergences take (target, prediction). The per-sample ones return (B,) values so that a direction
can be weighted per sample; `moment_matching` compares whole batches and returns a scalar.
`distill` always sends the teacher -> student direction (the teacher a detached target) and, with
per-sample `reverse` weights, the student -> teacher direction too (the student a detached target),
the deep-mutual-learning form (Zhang et al., CVPR 2018). `reverse_weights` gives those weights for
the three directions FSRF offers:
  * "teacher_to_student": none (one-way distillation);
  * "symmetric": every sample (plain mutual learning between the two views);
  * "bidirectional": the samples whose student prediction is closer to the label than the
    teacher's, i.e. the incomplete view teaches the complete one where it is the better estimate.
    Ungated mutual learning between a view and its degraded copy can settle on agreeing about a
    constant (measured on synth: stuck at the mean prediction; see methods/fsrf.py).
Labels enter only the loss, never a prediction.

B = batch, K = tokens, H = features per token. Predictions are (B,) scores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from methods.common.similarity import cmd

Divergence = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DIRECTIONS = ("bidirectional", "symmetric", "teacher_to_student")


def gaussian_kl(target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """KL(N(target, 1) || N(prediction, 1)) per sample, i.e. half the squared difference: the KL
    between the predicted distributions of a regression model read as unit-variance Gaussians.
    target, prediction (B,) -> (B,) >= 0."""
    return 0.5 * (prediction - target).pow(2)


def softmax_kl(temperature: float) -> Divergence:
    """Per sample: KL(softmax(target / tau) || softmax(prediction / tau)) over the last axis,
    times tau^2 (Hinton et al. 2015, so gradients keep their scale across temperatures), averaged
    over the token axis. target, prediction (B, K, H) or (B, H) -> (B,) >= 0."""
    if temperature <= 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature}")

    def divergence(target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(target / temperature, dim=-1)
        log_q = F.log_softmax(prediction / temperature, dim=-1)
        kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
        return kl.flatten(start_dim=1).mean(dim=1) * temperature**2

    return divergence


def moment_matching(n_moments: int) -> Divergence:
    """CMD (methods.common.similarity.cmd: the first `n_moments` central moments per feature)
    between the batches of the two views: (B, H) -> scalar; (B, K, H) -> mean over the K tokens
    of the per-token CMD, so the scale follows H, not K * H."""

    def divergence(target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        if prediction.ndim == 2:
            return cmd(prediction, target, n_moments)
        tokens = prediction.shape[1]
        return sum(cmd(prediction[:, k], target[:, k], n_moments) for k in range(tokens)) / tokens

    return divergence


def reverse_weights(
    direction: str,
    student_prediction: torch.Tensor,
    teacher_prediction: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor | None:
    """Per-sample weights (B,) of the student -> teacher direction (None: one-way), see the module
    docstring. All inputs (B,); the result carries no gradient."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: expected one of {DIRECTIONS}, got {direction!r}")
    if direction == "teacher_to_student":
        return None
    if direction == "symmetric":
        return torch.ones_like(labels)
    student_error = (student_prediction.detach() - labels).abs()
    teacher_error = (teacher_prediction.detach() - labels).abs()
    return (student_error < teacher_error).to(labels.dtype)


def distill(
    divergence: Divergence,
    student: torch.Tensor,
    teacher: torch.Tensor,
    reverse: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean(divergence(teacher.detach(), student)) + mean(reverse * divergence(student.detach(),
    teacher)); the second part only with `reverse` (B,) weights, which need a per-sample
    divergence. student, teacher: (B, ...) -> scalar."""
    value = divergence(teacher.detach(), student).mean()
    if reverse is not None:
        value = value + (reverse * divergence(student.detach(), teacher)).mean()
    return value
