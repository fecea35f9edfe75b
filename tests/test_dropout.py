"""MaskDropout behaves as nn.Dropout: the keep rate, the scaling, eval identity, gradients and
determinism under a seed."""

from __future__ import annotations

import pytest
import torch

from methods.common.dropout import MaskDropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_keep_rate_and_scale(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    y = MaskDropout(p).train()(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 400k draws: within ~5 sigma
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    assert abs(y.mean().item() - 1.0) < 0.02  # unbiased in expectation


def test_every_element_can_drop_and_masks_are_independent_of_position() -> None:
    torch.manual_seed(1)
    masks = torch.stack(
        [keep_mask(torch.Size([7, 5]), 0.5, torch.device("cpu")) for _ in range(400)]
    )
    rate = masks.float().mean(0)  # per position, over 400 draws
    assert rate.min() > 0.35 and rate.max() < 0.65  # no stuck lane (e.g. a missing sign bit)


def test_eval_is_identity_and_gradient_is_the_mask() -> None:
    x = torch.randn(8, 9, requires_grad=True)
    module = MaskDropout(0.5)
    assert torch.equal(module.eval()(x), x)
    torch.manual_seed(2)
    y = module.train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.where(y != 0, 2.0, 0.0))


def test_same_seed_same_mask_and_bad_probability() -> None:
    x = torch.randn(50, 60)
    torch.manual_seed(3)
    a = MaskDropout(0.4).train()(x)
    torch.manual_seed(3)
    b = MaskDropout(0.4).train()(x)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        MaskDropout(1.0)


def test_each_of_the_four_16_bit_lanes_of_a_draw_keeps_at_the_same_rate() -> None:
    torch.manual_seed(4)
    mask = keep_mask(torch.Size([400_000]), 0.25, torch.device("cpu")).view(-1, 4)
    rates = mask.float().mean(0)  # 100k draws per lane: sigma 0.0014
    assert torch.all((rates - 0.75).abs() < 0.007), rates
