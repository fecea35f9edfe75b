"""Where worker processes run: on CPU, `workers` processes sharing the cores; on CUDA, a fixed
number of runs packed onto each GPU (`train.runs_per_gpu`, `robustness.runs_per_gpu`).

At MMSA's batch sizes these models leave a GPU mostly idle, waiting on kernel launches (MulT
kept an H100 15% busy), so several seed runs on one GPU raise its throughput; each run is its
own process (its own CUDA context and allocator), so one run's numbers do not depend on what
else shares the GPU.
"""

from __future__ import annotations

from harness.errors import ConfigError


def worker_devices(device: str, runs_per_gpu: int, gpu_count: int) -> list[str] | None:
    """The device of each worker process to start, in start order; None where the runs are on
    the CPU (the caller's `workers` setting applies there).

    `device` is params.yaml's (`auto`, `cpu`, `cuda`, `cuda:<k>`); `gpu_count` the GPUs this
    process sees (`torch.cuda.device_count()`). `auto` and `cuda` use every GPU, `cuda:<k>` that
    one only. The list interleaves GPUs (cuda:0, cuda:1, cuda:0, cuda:1, ...), so that fewer
    tasks than workers still spread over every GPU."""
    if runs_per_gpu < 1:
        raise ValueError(f"runs_per_gpu: expected a positive integer, got {runs_per_gpu}")
    if device == "auto":
        device = "cuda" if gpu_count > 0 else "cpu"
    if not device.startswith("cuda"):
        return None
    if gpu_count == 0:
        raise ConfigError(f"device: '{device}' asks for CUDA, but torch sees no GPU here")
    if device == "cuda":
        gpus = [f"cuda:{index}" for index in range(gpu_count)]
    else:
        index = device.partition(":")[2]
        if not index.isdigit() or int(index) >= gpu_count:
            raise ConfigError(
                f"device: '{device}' is not one of the {gpu_count} GPU(s) torch sees here "
                f"(cuda:0 .. cuda:{gpu_count - 1})"
            )
        gpus = [device]
    return [gpu for _ in range(runs_per_gpu) for gpu in gpus]
