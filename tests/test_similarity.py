"""Hand-checkable cases for methods/common/similarity.py (CMD, difference and reconstruction)."""

from __future__ import annotations

import math

import pytest
import torch

from methods.common.similarity import cmd, difference_loss, reconstruction_loss


def _batch(seed: int = 0, shape: tuple[int, int] = (32, 6)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- CMD -------------------------------------------------------------------------------------------
def test_cmd_of_identical_batches_is_zero_with_finite_gradients() -> None:
    x = _batch().requires_grad_()
    value = cmd(x, x.detach().clone())
    assert float(value.detach()) == 0.0
    value.backward()
    assert torch.isfinite(x.grad).all()


def test_cmd_of_a_shift_is_the_norm_of_the_shift() -> None:
    # a shift moves the mean only: every central moment is unchanged
    x = _batch(shape=(16, 4)).double()
    for c in (0.1, 0.5, 2.0):
        assert float(cmd(x, x + c)) == pytest.approx(c * math.sqrt(4), rel=1e-9)
    assert float(cmd(x, x + 0.1)) < float(cmd(x, x + 0.5)) < float(cmd(x, x + 2.0))


def test_cmd_by_hand_on_a_scaled_symmetric_sample() -> None:
    # x = {1, -1}, y = {2, -2}: equal means, odd moments 0; 2nd moments 1 vs 4, 4th 1 vs 16
    x = torch.tensor([[1.0], [-1.0]])
    y = torch.tensor([[2.0], [-2.0]])
    assert float(cmd(x, y, n_moments=1)) == 0.0
    assert float(cmd(x, y, n_moments=2)) == pytest.approx(3.0)
    assert float(cmd(x, y, n_moments=5)) == pytest.approx(3.0 + 15.0)


def test_cmd_is_symmetric_and_accepts_different_batch_sizes() -> None:
    x, y = _batch(1, (10, 3)), _batch(2, (20, 3))
    assert float(cmd(x, y)) == pytest.approx(float(cmd(y, x)))


@pytest.mark.parametrize(
    ("x", "y", "n_moments"),
    [
        (torch.zeros(4, 3), torch.zeros(4, 2), 5),
        (torch.zeros(4), torch.zeros(4), 5),
        (torch.zeros(4, 3), torch.zeros(4, 3), 0),
    ],
)
def test_cmd_rejects_bad_input(x, y, n_moments) -> None:
    with pytest.raises(ValueError):
        cmd(x, y, n_moments)


# -- difference loss -------------------------------------------------------------------------------
def test_difference_of_identical_representations_by_hand() -> None:
    # zero-mean rows of unit norm: the correlation is 2 * I (2x2), the mean of its squares 2
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert float(difference_loss(s, s)) == pytest.approx(2.0, rel=1e-5)


def test_difference_of_orthogonal_representations_is_zero() -> None:
    shared = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]]) * torch.tensor([[1.0, 2.0]])
    private = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]]) * torch.tensor([[3.0, -1.0, 0.5]])
    assert float(difference_loss(shared, private)) == pytest.approx(0.0, abs=1e-12)


def test_difference_is_symmetric_scale_free_and_differentiable() -> None:
    shared, private = _batch(1).requires_grad_(), _batch(2)
    value = difference_loss(shared, private)
    number = float(value.detach())
    assert number == pytest.approx(float(difference_loss(private, shared).detach()), rel=1e-5)
    scaled = difference_loss(5 * shared, private).detach()
    assert number == pytest.approx(float(scaled), rel=1e-4)
    assert number < float(difference_loss(shared, shared).detach())
    value.backward()
    assert torch.isfinite(shared.grad).all() and shared.grad.abs().sum() > 0


def test_difference_of_a_single_sample_is_zero_not_nan() -> None:
    assert float(difference_loss(torch.ones(1, 3), torch.ones(1, 4))) == 0.0


def test_difference_rejects_different_batch_sizes() -> None:
    with pytest.raises(ValueError, match="rows"):
        difference_loss(torch.zeros(4, 3), torch.zeros(5, 3))


# -- reconstruction ------------------------------------------------------------------------------
def test_reconstruction_is_the_mean_squared_error() -> None:
    reconstructed = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert float(reconstruction_loss(reconstructed, target)) == pytest.approx((4 + 16) / 4)
    assert float(reconstruction_loss(target, target)) == 0.0


def test_reconstruction_rejects_different_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        reconstruction_loss(torch.zeros(4, 3), torch.zeros(4, 2))
