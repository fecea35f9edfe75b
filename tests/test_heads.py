"""Output heads: hand-checked values and gradients of the three forms."""

from __future__ import annotations

import pytest
import torch

from methods.common.heads import RegressionHead, bound_scores

RANGE = (-3.0, 3.0)


def test_linear_leaves_the_score() -> None:
    raw = torch.tensor([-7.0, 0.5, 9.0])
    assert torch.equal(bound_scores(raw, "linear", RANGE), raw)


def test_sigmoid_maps_into_the_range() -> None:
    raw = torch.tensor([0.0, 100.0, -100.0])
    assert bound_scores(raw, "sigmoid", RANGE).tolist() == pytest.approx([0.0, 3.0, -3.0])


def test_clamp_is_exact_and_passes_the_gradient_straight_through() -> None:
    raw = torch.tensor([-1e8, -1.0, 2.5, 7.0], requires_grad=True)
    out = bound_scores(raw, "clamp", RANGE)
    assert out.tolist() == [-3.0, -1.0, 2.5, 3.0]
    (out * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert raw.grad.tolist() == [1.0, 2.0, 3.0, 4.0]  # identity, also where clamped


def test_unknown_head_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of linear, sigmoid, clamp, got 'tanh'"):
        RegressionHead(4, RANGE, "tanh")
