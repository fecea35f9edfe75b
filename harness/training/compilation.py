"""torch.compile for the training loop: `compile_mode` in params.yaml (docs/gpu.md).

At MMSA's batch sizes these models are bound by kernel launches on a GPU, not by arithmetic
(MulT kept an H100 15% busy); compiling the forward fuses kernels, and "reduce-overhead" also
replays the step's kernels as CUDA graphs. MaskDropout draws its mask with `torch.rand` under
compile (methods/common/dropout.py), so the graph does not break at every dropout; Dynamo does
not trace LSTMs, so each LSTM still runs eager between compiled graphs.
"""

from __future__ import annotations

import torch

from methods.base import MsaMethod


def compile_forward(model: MsaMethod, mode: str) -> None:
    """Compile `model`'s forward in place with torch.compile (`nn.Module.compile`: parameter
    names, state dicts and checkpoints stay those of the eager model); "none" leaves it eager.

    Shapes are compiled as they come (`dynamic=False`): the training batch, the last partial
    batch and the evaluation batches each get a graph. "reduce-overhead" also captures CUDA
    graphs, cutting the kernel launches that bind these small models on a GPU. The loss terms,
    optimiser steps and a method's extra step stay eager. A compiled run is repeatable on one
    device, but its numbers are not the eager run's (fused kernels sum in another order), and
    on CPU it does not pay (docs/gpu.md).

    Dynamo's caches are cleared first, so that every run compiles the same way whatever the
    process compiled before (a tuning study's earlier trials, other seeds), and no run hits
    torch's recompilation limit, past which a forward silently runs eager."""
    if mode != "none":
        torch._dynamo.reset()
        model.compile(mode=mode, dynamic=False)
