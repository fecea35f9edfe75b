"""Batches prepared ahead, on a background thread, while the model computes on the current one.

Taking a batch (gathering rows from the memory-mapped store, standardising, and for CUDA pinning
the host memory) is CPU work that the training step would otherwise wait for: 6-14% of the
fastest methods' steps on CPU and 13-23% on a GPU, where the device idles meanwhile
(bench/README.md). `prefetch` runs the batch iterator `depth` batches ahead on one thread; the
batches, their order and every number in them are the same as without it (the iterator is
consumed in order by one thread), so results are bitwise unchanged.

The training loop uses it for CUDA only: on CPU the thread competes with torch's own compute
threads, and on the 2-core development machine it made LF-DNN and LMF train 2-3x slower
(bench/README.md), so CPU training takes its batches in the loop.

For a CUDA target the batches are pinned, and `Prefetched.batches` moves each with
`non_blocking=True`, so the copy overlaps the host's next launches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import torch

from harness.data.types import Batch

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(batches: Iterator[Batch], device: torch.device, depth: int = 2) -> Iterator[Batch]:
    """The batches of `batches`, in order, on `device`, prepared up to `depth` ahead on a
    background thread (depth 0: in this thread, no thread). An exception in the iterator is
    raised here, at the batch where it happened. Leaving the loop early (break, an exception in
    the step, `close()`) stops the thread at its next batch."""
    pin = device.type == "cuda" and torch.cuda.is_available()
    if depth <= 0:
        for batch in batches:
            yield batch.to(device)
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Put `item` on the queue unless the consumer has stopped; False once it has."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch.pin_memory() if pin else batch):
                    return
            offer(_DONE)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consuming thread
            offer(_Failure(error))

    worker = threading.Thread(target=produce, name="msabench-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item.to(device, non_blocking=pin)
    finally:
        stop.set()
        worker.join()
