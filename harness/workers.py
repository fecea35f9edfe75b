"""Run independent tasks in worker processes and yield their results in task order.

CPU workers are forked on Linux (they start at once, with torch and the methods already
imported, like torch's DataLoader workers), spawned elsewhere. Workers that each get a device of
their own (`devices`, e.g. several runs packed onto each GPU: `harness.placement`) are always
spawned: CUDA cannot be used in a process forked from one that has initialised it, and counting
the GPUs already does. A failure in any task is raised in the parent and the tasks not yet
started are cancelled. Functions and tasks must be picklable (module-level functions, frozen
dataclasses).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

_pinned_device: str | None = None  # this worker process's device, set when it starts


def worker_threads(num_threads: int, workers: int) -> int:
    """Torch threads per worker: the configured number, or (0 = auto) the cores shared out."""
    if num_threads > 0:
        return num_threads
    return max(1, (os.cpu_count() or 1) // workers)


def pinned_device() -> str | None:
    """The device this worker process was started on (`devices` of `map_in_order`); None in
    the main process and in workers started without one."""
    return _pinned_device


def map_in_order(
    function: Callable[[Task], Result],
    tasks: Sequence[Task],
    workers: int,
    devices: Sequence[str] | None = None,
) -> Iterator[Result]:
    """`function(task)` for every task, in this process when `workers` <= 1 (or one task), else
    in `workers` processes; results are yielded in the tasks' order as they are ready.

    `devices` (one entry per worker, listed in the order workers start, e.g. ["cuda:0",
    "cuda:1", "cuda:0", "cuda:1"]): up to len(devices) workers (no more than tasks) are spawned,
    worker k pinned to `devices[k]` for its whole life (`pinned_device()`, and the current CUDA
    device); each takes tasks as it frees up, so no device ever runs more tasks at once than it
    has entries. `workers` is then ignored."""
    if devices is not None:
        workers = len(devices)
    if workers <= 1 and devices is None or len(tasks) == 0:
        for task in tasks:
            yield function(task)
        return
    if devices is not None:
        context = multiprocessing.get_context("spawn")
        slots = context.Queue()
        for device in devices:
            slots.put(device)
        initializer, initargs = _pin_to_device, (slots,)
    elif len(tasks) == 1:  # one task: no process to start
        yield function(tasks[0])
        return
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        initializer, initargs = None, ()
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=context,
        initializer=initializer,
        initargs=initargs,
    ) as pool:
        futures: list[Future] = [pool.submit(function, task) for task in tasks]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _pin_to_device(slots) -> None:
    """A spawned worker's start: take one device from `slots` and make it this process's."""
    global _pinned_device
    _pinned_device = slots.get(timeout=60)
    if _pinned_device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(_pinned_device))
