"""Mutual-information estimators on small Gaussian cases whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from methods.common.mi_estimators import (
    CLUB,
    CPC,
    MMILB,
    NCECLUB,
    InfoNCE,
    LabelSplitMemory,
    estimator_step,
    half_logdet_entropy,
    info_nce,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems are tiny: one thread is faster than two that contend on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pairs(n: int, dependent: bool, seed: int, dim: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, I); y = x + 0.1 noise when dependent, an independent N(0, I) draw otherwise."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=generator)
    noise = torch.randn(n, dim, generator=generator)
    return x, (x + 0.1 * noise) if dependent else noise


def _fit(estimator: torch.nn.Module, dependent: bool, steps: int, lr: float = 1e-2) -> None:
    """Fit the estimator's own objective on fresh batches of 128 pairs."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(estimator.parameters(), lr=lr)
    for step in range(steps):
        x, y = _pairs(128, dependent, seed=100 + step)
        estimator_step(optimizer, estimator.learning_loss(x, y))


def _held_out(estimator: torch.nn.Module, dependent: bool) -> float:
    x, y = _pairs(256, dependent, seed=999)
    with torch.no_grad():
        return float(estimator(x, y))


def test_info_nce_matches_a_hand_computed_case() -> None:
    scores = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    bound = info_nce(torch.zeros(2, 1), torch.zeros(2, 1), lambda x, y: scores)
    expected = 2.0 - math.log(math.exp(2.0) + 1.0) + math.log(2.0)
    assert float(bound) == pytest.approx(expected)


def test_info_nce_is_higher_for_dependent_than_independent_pairs() -> None:
    bounds = {}
    for dependent in (True, False):
        estimator = InfoNCE(2, 2, hidden=32)
        _fit(estimator, dependent, steps=150)
        bounds[dependent] = _held_out(estimator, dependent)
    assert bounds[True] > bounds[False] + 1.0
    assert bounds[True] <= math.log(256) + 1e-6
    assert abs(bounds[False]) < 0.3


def test_club_is_near_zero_for_independent_and_positive_for_dependent_pairs() -> None:
    values = {}
    for dependent in (True, False):
        estimator = CLUB(2, 2, hidden=32)
        _fit(estimator, dependent, steps=200)
        values[dependent] = _held_out(estimator, dependent)
    assert abs(values[False]) < 0.2
    assert values[True] > 1.0


def test_nce_club_is_near_zero_for_independent_and_positive_for_dependent_pairs() -> None:
    values = {}
    for dependent in (True, False):
        estimator = NCECLUB(2, 2, hidden=32)
        _fit(estimator, dependent, steps=150)
        values[dependent] = _held_out(estimator, dependent)
    assert abs(values[False]) < 0.3
    assert values[True] > 1.0


def test_cpc_loss_falls_when_the_target_is_predictable() -> None:
    torch.manual_seed(0)
    cpc = CPC(2, 2)
    optimizer = torch.optim.Adam(cpc.parameters(), lr=1e-2)
    x, y = _pairs(64, dependent=True, seed=1)
    with torch.no_grad():
        before = float(cpc(x, y))
    for _ in range(100):
        estimator_step(optimizer, cpc(x, y))
    with torch.no_grad():
        assert float(cpc(x, y)) < before - 0.5


def test_mmilb_log_likelihood_increases_when_fitting() -> None:
    torch.manual_seed(0)
    estimator = MMILB(2, 2)
    x, y = _pairs(128, dependent=True, seed=2)
    before = _held_out(estimator, dependent=True)
    _fit(estimator, dependent=True, steps=150)
    after = _held_out(estimator, dependent=True)
    assert after > before + 1.0
    # with log-variances bounded in [-1, 1] a log-likelihood per dimension is at most
    # -(log(2 pi) - 1) / 2
    assert after <= 2 * -(math.log(2 * math.pi) - 1) / 2 + 1e-6
    with torch.no_grad():
        assert float(estimator(x, y)) == pytest.approx(-float(estimator.learning_loss(x, y)))


def test_mmilb_reference_form_has_no_variance_term() -> None:
    torch.manual_seed(0)
    estimator = MMILB(2, 2, reference_form=True)
    x, y = _pairs(16, dependent=True, seed=3)
    with torch.no_grad():
        mu, logvar = estimator.q(x)
        expected = (-0.5 * (y - mu) ** 2 * torch.exp(-logvar)).sum(dim=-1).mean()
        assert float(estimator(x, y)) == pytest.approx(float(expected))


def test_half_logdet_entropy_of_a_known_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(20000, 2, generator=generator) * torch.tensor([2.0, 1.0])
    value = float(half_logdet_entropy(samples, jitter=0.0))
    assert value == pytest.approx(0.5 * math.log(4.0), abs=0.05)


def test_label_split_memory_keeps_the_last_batches_per_sign() -> None:
    memory = LabelSplitMemory(size=2)
    labels = torch.tensor([1.0, -1.0, 0.0, 2.0])
    for value in (1.0, 2.0, 3.0):
        memory.push(torch.full((4, 3), value), labels)
    assert [float(batch[0, 0]) for batch in memory.banks["pos"]] == [2.0, 3.0]
    assert [batch.shape[0] for batch in memory.banks["pos"]] == [2, 2]
    assert [batch.shape[0] for batch in memory.banks["neg"]] == [1, 1]
    memory.clear()
    assert not memory.banks["pos"] and not memory.banks["neg"]


def test_label_split_entropy_is_mmim_quarter_logdet_sum() -> None:
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(12, 2, generator=generator)
    labels = torch.tensor([1.0, -1.0] * 6)
    memory = LabelSplitMemory(size=1)
    value = float(memory.entropy(samples, labels, jitter=0.0))

    def logdet(rows: torch.Tensor) -> float:
        centred = rows - rows.mean(dim=0)
        return float(torch.logdet(centred.t() @ centred / rows.shape[0]))

    expected = 0.25 * (logdet(samples[labels > 0]) + logdet(samples[labels < 0]))
    assert value == pytest.approx(expected, rel=1e-5)


def test_label_split_memory_warmup_restarts_after_clear() -> None:
    samples = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([1.0, -1.0] * 4)
    memory = LabelSplitMemory(size=1, warmup=2)
    values = []
    for _ in range(3):
        values.append(float(memory.entropy(samples, labels, jitter=1e-3)))
        memory.push(samples, labels)
    assert values[:2] == [0.0, 0.0] and values[2] != 0.0
    memory.clear()
    assert memory.pushed == 0 and float(memory.entropy(samples, labels, jitter=1e-3)) == 0.0
    with pytest.raises(ValueError, match="warmup"):
        LabelSplitMemory(size=1, warmup=-1)


def test_label_split_entropy_without_jitter_skips_a_singular_sign() -> None:
    # 3 positive samples in 3 dimensions: a singular covariance (logdet -inf in MMIM's code)
    samples = torch.randn(9, 3, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0])
    value = LabelSplitMemory(size=0).entropy(samples, labels, jitter=0.0)
    assert float(value) == pytest.approx(0.5 * float(half_logdet_entropy(samples[3:], 0.0)))
    with_jitter = LabelSplitMemory(size=0).entropy(samples, labels, jitter=1e-3)
    assert torch.isfinite(with_jitter) and float(with_jitter) != pytest.approx(float(value))


def test_mmilb_entropy_is_finite_for_degenerate_batches_and_remembers() -> None:
    estimator = MMILB(4, 8, memory_size=1)
    y = torch.zeros(3, 8)
    value = estimator.entropy(y, torch.tensor([1.0, 1.0, -1.0]), remember=True)
    assert torch.isfinite(value)
    assert len(estimator.memory.banks["pos"]) == 1
    estimator.entropy(y, torch.tensor([1.0, 1.0, -1.0]), remember=False)
    assert len(estimator.memory.banks["pos"]) == 1
    assert not any(p.requires_grad for p in estimator.entropy_projection.parameters())


def test_estimator_step_leaves_no_gradients_behind() -> None:
    estimator = CLUB(2, 2)
    optimizer = torch.optim.Adam(estimator.parameters(), lr=1e-3)
    x, y = _pairs(8, dependent=True, seed=4)
    estimator_step(optimizer, estimator.learning_loss(x, y), grad_clip=1.0)
    assert all(p.grad is None for p in estimator.parameters())


def test_half_logdet_entropy_computes_in_float32_for_half_inputs() -> None:
    # under CUDA autocast the samples arrive as float16, which logdet refuses
    samples = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    full = half_logdet_entropy(samples)
    half = half_logdet_entropy(samples.half())
    assert half.dtype == torch.float32
    assert torch.isfinite(half)
    assert abs(float(half) - float(full)) < 1e-2
