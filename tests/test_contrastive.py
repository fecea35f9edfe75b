"""The class buckets, the class-wise FIFO queue and the (angle-compensated) SupCon loss, checked
on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pytest
import torch

from methods.common.contrastive import (
    ClassQueue,
    sentiment_classes,
    supervised_contrastive,
)


def test_classes_are_acc7_rounding_and_sims_acc5_bins() -> None:
    mosi = torch.tensor([-3.0, -2.6, -0.5, -0.4, 0.0, 0.5, 1.5, 2.5, 3.0])
    # rounding halves to even, as numpy and the Acc-7 metric do
    assert sentiment_classes(mosi, "mosi").tolist() == [0, 0, 3, 3, 3, 3, 5, 5, 6]
    sims = torch.tensor([-1.0, -0.7, -0.6, -0.1, 0.0, 0.1, 0.2, 0.7, 0.8, 1.0])
    assert sentiment_classes(sims, "sims").tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    with pytest.raises(ValueError, match="kind"):
        sentiment_classes(mosi, "iemocap")


def test_queue_is_fifo_per_class_and_overwrites_the_oldest() -> None:
    queue = ClassQueue(num_classes=2, size=2, dim=2)
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, -1.0]])
    queue.push(features[:3], torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 0, 1]))
    stored, labels, classes = queue.contents()
    assert classes.tolist() == [0, 0, 1] and labels.tolist() == pytest.approx([0.1, 0.2, 0.3])
    torch.testing.assert_close(stored, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    queue.push(features[3:], torch.tensor([0.4]), torch.tensor([0]))  # overwrites label 0.1
    _, labels, classes = queue.contents()
    pairs = sorted(zip(classes.tolist(), [round(v, 4) for v in labels.tolist()], strict=True))
    assert pairs == [(0, 0.2), (0, 0.4), (1, 0.3)]


def test_supcon_matches_the_formula_on_a_hand_case() -> None:
    # anchors a0, a1 of class 0 and a2 of class 1; unit vectors
    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    classes = torch.tensor([0, 0, 1])
    labels = torch.zeros(3)
    tau = 0.5
    loss = supervised_contrastive(z, labels, classes, None, temperature=tau)
    # anchor 0: positive a1 (cos 0.6), others a1, a2 (cos 0.6, 0.0)
    l0 = -(0.6 / tau - math.log(math.exp(0.6 / tau) + math.exp(0.0)))
    # anchor 1: positive a0 (cos 0.6), others a0, a2 (cos 0.6, 0.8)
    l1 = -(0.6 / tau - math.log(math.exp(0.6 / tau) + math.exp(0.8 / tau)))
    # anchor 2 has no positive and is skipped
    assert float(loss) == pytest.approx((l0 + l1) / 2, rel=1e-5)


def test_the_bank_adds_positives_and_negatives_without_gradient() -> None:
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    bank = (torch.tensor([[1.0, 0.0]], requires_grad=True), torch.zeros(1), torch.tensor([0]))
    loss = supervised_contrastive(z, torch.zeros(2), torch.tensor([0, 1]), bank, 1.0)
    # anchor 0: positive = the bank entry (cos 1); denominator over z1 (cos 0) and the bank
    expected = -(1.0 - math.log(math.exp(0.0) + math.exp(1.0)))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert bank[0].grad is None and z.grad is not None


def test_angle_compensation_makes_the_target_angle_the_cheapest_for_a_negative() -> None:
    # anchor 0 (label -3) and a negative (label 0): target angle pi * 3 / 6 = pi / 2
    def loss_at(angle: float) -> float:
        z = torch.tensor([[1.0, 0.0], [math.cos(angle), math.sin(angle)], [1.0, 0.0]])
        labels = torch.tensor([-3.0, 0.0, -3.0])
        classes = torch.tensor([0, 3, 0])  # row 2 is anchor 0's positive
        return float(supervised_contrastive(z, labels, classes, None, 1.0, label_span=6.0))

    angles = [0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, math.pi]
    losses = [loss_at(a) for a in angles]
    assert min(range(5), key=losses.__getitem__) == 2
    # plain SupCon prefers the antipode instead
    plain = [
        float(
            supervised_contrastive(
                torch.tensor([[1.0, 0.0], [math.cos(a), math.sin(a)], [1.0, 0.0]]),
                torch.tensor([-3.0, 0.0, -3.0]),
                torch.tensor([0, 3, 0]),
                None,
                1.0,
            )
        )
        for a in angles
    ]
    assert min(range(5), key=plain.__getitem__) == 4


def test_no_positive_anywhere_gives_a_zero_that_still_backpropagates() -> None:
    z = torch.randn(3, 4, requires_grad=True)
    loss = supervised_contrastive(z, torch.zeros(3), torch.tensor([0, 1, 2]), None, 0.1)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert z.grad is not None
