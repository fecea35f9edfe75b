"""After `reuse_freed_memory`, a training step that allocates large blocks every batch (TFN's
36 MiB post-fusion weight gradient) stops paying page faults for them."""

from __future__ import annotations

import platform
import resource

import pytest
import torch
from torch import nn

from harness.allocator import reuse_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _faults_per_step(layer: nn.Linear, x: torch.Tensor, steps: int = 3) -> float:
    """Minor page faults per forward + backward whose weight gradient is freed after each."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        layer(x).sum().backward()
        layer.weight.grad = None
        layer.bias.grad = None
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_a_steps_large_gradient_is_reused_without_page_faults() -> None:
    torch.manual_seed(0)
    layer, x = nn.Linear(140_481, 64), torch.randn(32, 140_481)  # TFN's post-fusion layer
    assert reuse_freed_memory() is True
    _faults_per_step(layer, x)  # the first steps grow the heap and map its pages
    # the 36 MiB gradient is 9,216 pages: freshly mapped (glibc's default) it faults on each
    assert _faults_per_step(layer, x) < 500


@pytest.mark.skipif(GLIBC, reason="a non-glibc platform")
def test_elsewhere_nothing_is_changed() -> None:
    assert reuse_freed_memory() is False
