"""Measuring what a seed's run costs (`harness.records.RunCost`): parameter counts, peak host and
GPU memory, and the device's description. `run_seed` (seed_runs.py) times the fit and the test
pass itself and calls these around them; nothing here touches the model's numbers.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Mapping, Sequence

import torch

from harness.records.cost import RunCost

_MIB = 2**20


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(every parameter, those with requires_grad) of `model`, each tensor counted once."""
    parameters = list(model.parameters())
    total = sum(p.numel() for p in parameters)
    trained = sum(p.numel() for p in parameters if p.requires_grad)
    return int(total), int(trained)


def peak_host_memory_mb() -> float:
    """This process's high-water resident set size (`ru_maxrss`) in MiB: kibibytes on Linux,
    bytes on macOS. See `RunCost.peak_host_memory_mb` for what it covers in a worker."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024


def reset_gpu_peak(device: torch.device) -> None:
    """Start `device`'s peak-memory statistics afresh (CUDA only; nothing on CPU)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def synchronize(device: torch.device) -> None:
    """Wait for `device`'s queued work (CUDA), so a timer read next covers it; nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gpu_memory_mb(device: torch.device) -> float | None:
    """The most memory torch's tensors held on `device` since `reset_gpu_peak`, in MiB; None
    on a device that is not CUDA."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / _MIB


def describe_device(device: torch.device, hardware: Mapping[str, str]) -> str:
    """ "cpu: <CPU model> (<n> threads)" or "cuda: <GPU name>", from `hardware`
    (`provenance.hardware_facts` of this process)."""
    if device.type == "cuda":
        return f"cuda: {hardware.get('gpu', str(device))}"
    threads = torch.get_num_threads()
    return f"{device.type}: {hardware.get('cpu', 'unknown CPU')} ({threads} thread" + (
        "s)" if threads != 1 else ")"
    )


def run_cost(
    model: torch.nn.Module,
    device: torch.device,
    hardware: Mapping[str, str],
    fit_seconds: float,
    epoch_seconds: Sequence[float],
    test_seconds: float,
    test_samples: int,
    batch_size: int,
) -> RunCost:
    """The `RunCost` of a finished seed: `fit_seconds` (the fit's wall time), `epoch_seconds`
    (E,) (each epoch's), `test_seconds` for the pass over `test_samples` test samples in
    batches of `batch_size`; memory read now."""
    total, trained = parameter_counts(model)
    return RunCost(
        parameters_total=total,
        parameters_trained=trained,
        peak_host_memory_mb=peak_host_memory_mb(),
        peak_gpu_memory_mb=peak_gpu_memory_mb(device),
        train_seconds_total=fit_seconds,
        train_seconds_per_epoch=sum(epoch_seconds) / max(len(epoch_seconds), 1),
        inference_ms_per_sample=1000.0 * test_seconds / max(test_samples, 1),
        inference_batch_size=batch_size,
        inference_samples=test_samples,
        device=describe_device(device, hardware),
    )
