"""Run independent tasks in worker processes and yield their results in task order.

Forked on Linux (workers start at once, with torch and the methods already imported, like
torch's DataLoader workers), spawned elsewhere. A failure in any task is raised in the parent
and the tasks not yet started are cancelled. Functions and tasks must be picklable (module-level
functions, frozen dataclasses).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")


def worker_threads(num_threads: int, workers: int) -> int:
    """Torch threads per worker: the configured number, or (0 = auto) the cores shared out."""
    if num_threads > 0:
        return num_threads
    return max(1, (os.cpu_count() or 1) // workers)


def map_in_order(
    function: Callable[[Task], Result], tasks: Sequence[Task], workers: int
) -> Iterator[Result]:
    """`function(task)` for every task, in this process when `workers` <= 1 (or one task), else
    in `workers` processes; results are yielded in the tasks' order as they are ready."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield function(task)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        futures: list[Future] = [pool.submit(function, task) for task in tasks]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
