"""Batches prepared ahead on a thread are the same batches, in the same order, and the thread
never outlives the loop (exhausted, left early, or failing)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from harness.data.loading import iterate_batches
from harness.data.prefetch import prefetch
from harness.data.types import Batch, SplitData

CPU = torch.device("cpu")


def _split(n: int = 37) -> SplitData:
    generator = torch.Generator().manual_seed(0)
    return SplitData(
        name="train",
        features={"text": torch.randn(n, 6, 4, generator=generator)},
        lengths={"text": torch.randint(1, 7, (n,), generator=generator)},
        labels=torch.randn(n, generator=generator),
        ids=[str(i) for i in range(n)],
    )


def _batches(depth: int) -> list[Batch]:
    source = iterate_batches(_split(), 8, True, torch.Generator().manual_seed(5))
    return list(prefetch(source, CPU, depth))


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "msabench-prefetch"]


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_prefetched_batches_equal_the_batches_taken_in_the_loop(depth: int) -> None:
    expected, got = _batches(0), _batches(depth)
    assert len(got) == len(expected) == 5
    for a, b in zip(expected, got, strict=True):
        assert torch.equal(a.index, b.index)
        assert torch.equal(a.features["text"], b.features["text"])
        assert torch.equal(a.lengths["text"], b.lengths["text"])
        assert torch.equal(a.labels, b.labels)
    assert not _prefetch_threads()


def test_leaving_the_loop_early_stops_the_thread() -> None:
    ahead = prefetch(iterate_batches(_split(200), 4, False), CPU, depth=2)
    first = next(ahead)
    assert first.size == 4
    assert len(_prefetch_threads()) == 1
    ahead.close()
    assert not _prefetch_threads()


def test_an_error_in_the_batch_source_is_raised_in_the_loop_at_its_batch() -> None:
    def failing():
        for i, batch in enumerate(iterate_batches(_split(), 8, False)):
            if i == 2:
                raise OSError("store unreadable at batch 2")
            yield batch

    seen = []
    with pytest.raises(OSError, match="store unreadable at batch 2"):
        for batch in prefetch(failing(), CPU, depth=3):
            seen.append(batch)
    assert len(seen) == 2
    assert not _prefetch_threads()


def test_closing_after_the_thread_has_read_every_batch_does_not_hang() -> None:
    # depth 1, two batches: the thread ends waiting to hand over "done" behind batch 2
    ahead = prefetch(iterate_batches(_split(16), 8, False), CPU, depth=1)
    next(ahead)
    closer = threading.Thread(target=lambda: (time.sleep(0.2), ahead.close()))
    closer.start()
    closer.join(timeout=5)
    assert not closer.is_alive(), "closing the prefetcher hung"
    assert not _prefetch_threads()
