"""Hand-checkable cases for three shared blocks: the gradient reversal layer
(methods/common/gradient_reversal.py), factorized bilinear pooling (methods/common/bilinear.py)
and the sequential variation regularisers (methods/common/regularizers.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from methods.common.bilinear import FactorizedBilinearPooling, signed_sqrt
from methods.common.gradient_reversal import GradientReversal, reverse_gradient
from methods.common.regularizers import (
    jensen_shannon_variation,
    real_pairs,
    sequential_variation,
    total_variation,
)

FORMS = ("tv", "js")


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _mask(lengths: list[int], steps: int) -> torch.Tensor:
    return torch.arange(steps).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


# -- gradient reversal ---------------------------------------------------------------------------
@pytest.mark.parametrize("coefficient", [1.0, 0.3, 0.0])
def test_reversal_is_the_identity_forward_and_scales_the_gradient_by_minus_lambda(
    coefficient,
) -> None:
    x = _randn(4, 3).requires_grad_()
    upstream = _randn(4, 3, seed=1)
    y = reverse_gradient(x, coefficient)
    assert torch.equal(y, x)
    (y * upstream).sum().backward()
    assert torch.allclose(x.grad, -coefficient * upstream)


def test_reversal_module_between_two_layers_flips_only_the_layers_below_it() -> None:
    torch.manual_seed(0)
    below, above = nn.Linear(3, 3), nn.Linear(3, 1)
    x = _randn(5, 3)
    plain = {}
    for name, module in (("plain", nn.Identity()), ("reversed", GradientReversal(0.5))):
        below.zero_grad(), above.zero_grad()
        above(module(below(x))).pow(2).sum().backward()
        plain[name] = (below.weight.grad.clone(), above.weight.grad.clone())
    assert torch.allclose(plain["reversed"][0], -0.5 * plain["plain"][0])
    assert torch.allclose(plain["reversed"][1], plain["plain"][1])  # the layer above is unchanged
    assert plain["plain"][0].abs().sum() > 0


def test_a_negative_reversal_coefficient_is_rejected() -> None:
    with pytest.raises(ValueError, match="coefficient"):
        reverse_gradient(torch.zeros(2), -1.0)
    with pytest.raises(ValueError, match="coefficient"):
        GradientReversal(-0.1)


# -- factorized bilinear pooling -----------------------------------------------------------------
def _hand_fbp(power_norm: bool = True) -> FactorizedBilinearPooling:
    """hidden 2, factor 2 on 2-d inputs: U x = [x1, x2, x1, x2], V y = [y1, y2, y2, y1], so the
    sum-pooled z = [x1 y1 + x2 y2, x1 y2 + x2 y1]."""
    fbp = FactorizedBilinearPooling(2, 2, hidden=2, factor=2, power_norm=power_norm, eps=1e-12)
    with torch.no_grad():
        fbp.project_x.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]]))
        fbp.project_y.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [0, 1], [1, 0]]))
    return fbp


def test_fbp_by_hand_sum_pools_power_and_l2_normalises() -> None:
    fbp = _hand_fbp()
    x, y = torch.tensor([[1.0, 2.0], [1.0, -2.0]]), torch.tensor([[3.0, 4.0], [3.0, 4.0]])
    # z = [11, 10] -> [sqrt 11, sqrt 10] / sqrt 21;  z = [-5, -2] -> -[sqrt 5, sqrt 2] / sqrt 7
    expected = torch.tensor(
        [
            [math.sqrt(11 / 21), math.sqrt(10 / 21)],
            [-math.sqrt(5 / 7), -math.sqrt(2 / 7)],
        ]
    )
    torch.testing.assert_close(fbp(x, y), expected, rtol=1e-5, atol=1e-5)
    no_power = _hand_fbp(power_norm=False)(x, y)
    torch.testing.assert_close(no_power[0], torch.tensor([11.0, 10.0]) / math.sqrt(221))


def test_fbp_shapes_broadcast_over_leading_dimensions() -> None:
    fbp = FactorizedBilinearPooling(6, 7, hidden=3, factor=2)
    out = fbp(_randn(4, 5, 6), _randn(4, 1, 7, seed=1))
    assert out.shape == (4, 5, 3)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(4, 5))  # unit L2 norm per vector


def test_fbp_of_a_zero_input_is_exactly_zero_with_finite_gradients() -> None:
    fbp = FactorizedBilinearPooling(6, 7, hidden=3, factor=2)
    y = _randn(4, 7).requires_grad_()
    out = fbp(torch.zeros(4, 6), y)
    assert torch.equal(out, torch.zeros(4, 3))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in fbp.parameters())
    assert torch.isfinite(y.grad).all()


def test_signed_sqrt_is_zero_at_zero_with_a_finite_slope_and_odd() -> None:
    z = torch.tensor([-4.0, 0.0, 9.0], requires_grad=True)
    value = signed_sqrt(z, eps=1e-12)
    torch.testing.assert_close(value.detach(), torch.tensor([-2.0, 0.0, 3.0]))
    assert float(value[1].detach()) == 0.0
    value.sum().backward()
    assert torch.isfinite(z.grad).all()


# -- sequential variation ------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
def test_variation_is_exactly_zero_on_sequences_constant_over_their_real_steps(form) -> None:
    mask = _mask([6, 3, 1, 0], 6)
    x = _randn(4, 1, 5).expand(4, 6, 5).clone()
    x[~mask] = 7.0  # padding may hold anything
    x.requires_grad_()
    value = sequential_variation(x, mask, form)
    assert float(value.detach()) == 0.0
    value.backward()
    assert torch.isfinite(x.grad).all()


def test_total_variation_by_hand() -> None:
    x = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]]])  # steps differ by norms 5, 0
    assert float(total_variation(x, _mask([3], 3))) == pytest.approx(2.5)
    assert float(total_variation(x, _mask([2], 3))) == pytest.approx(5.0)  # one real pair
    # pairs are pooled over the batch: (5 + 0) + 5 over three pairs
    batch = torch.cat([x, x])
    assert float(total_variation(batch, _mask([3, 2], 3))) == pytest.approx(10 / 3)


def test_total_variation_doubles_when_the_differences_double() -> None:
    mask = _mask([8, 5, 2], 8)
    x = _randn(3, 8, 4)
    stretched = x[:, :1] + 2 * (x - x[:, :1])  # every first-order difference times 2
    assert float(total_variation(stretched, mask)) == pytest.approx(
        2 * float(total_variation(x, mask)), rel=1e-5
    )


def test_jensen_shannon_by_hand() -> None:
    # one sample, two steps: softmax([0, 0]) = [1/2, 1/2], softmax([log 3, 0]) = [3/4, 1/4]
    x = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    p, q = [0.5, 0.5], [0.75, 0.25]
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    kl = lambda u, v: sum(a * math.log(a / b) for a, b in zip(u, v, strict=True))  # noqa: E731
    expected = (kl(p, m) + kl(q, m)) / 2
    assert float(jensen_shannon_variation(x, _mask([2], 2))) == pytest.approx(expected, rel=1e-4)


def test_jensen_shannon_grows_with_variation_and_is_bounded() -> None:
    mask = _mask([6, 6, 4], 6)
    base, direction = _randn(3, 1, 5), _randn(3, 6, 5, seed=1)
    values = [float(jensen_shannon_variation(base + c * direction, mask)) for c in (0.5, 1, 2, 4)]
    assert values == sorted(values) and values[0] > 0
    assert values[-1] <= math.log(2)


@pytest.mark.parametrize("form", FORMS)
def test_padding_values_change_nothing(form) -> None:
    mask = _mask([6, 4, 1, 3], 6)
    x = _randn(4, 6, 5)
    changed = x.clone()
    changed[~mask] = _randn(4, 6, 5, seed=2)[~mask] * 100
    assert float(sequential_variation(changed, mask, form)) == float(
        sequential_variation(x, mask, form)
    )
    changed[~mask] = float("nan")
    assert float(sequential_variation(changed, mask, form)) == float(
        sequential_variation(x, mask, form)
    )
    # and the padded steps really are outside: a mask that admits them changes the value
    assert float(sequential_variation(changed.nan_to_num(), torch.ones_like(mask), form)) != float(
        sequential_variation(x, mask, form)
    )


@pytest.mark.parametrize("form", FORMS)
def test_length_one_and_empty_sequences_give_zero_with_finite_gradients(form) -> None:
    for x, mask in (
        (_randn(3, 1, 4), torch.ones(3, 1, dtype=torch.bool)),  # length 1: no pair
        (_randn(3, 5, 4), _mask([1, 0, 1], 5)),  # no row has two real steps
        (torch.zeros(3, 0, 4), torch.zeros(3, 0, dtype=torch.bool)),  # T = 0
    ):
        x.requires_grad_()
        value = sequential_variation(x, mask, form)
        assert value.ndim == 0 and float(value.detach()) == 0.0
        value.backward()
        assert torch.isfinite(x.grad).all()


def test_real_pairs_need_both_steps_real() -> None:
    assert real_pairs(_mask([3, 1, 0], 4)).tolist() == [
        [True, True, False],
        [False, False, False],
        [False, False, False],
    ]


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="variation"):
        sequential_variation(_randn(2, 3, 4), _mask([3, 3], 3), "l2")
    with pytest.raises(ValueError, match="bool mask"):
        total_variation(_randn(2, 3, 4), _mask([3, 3], 3).float())
