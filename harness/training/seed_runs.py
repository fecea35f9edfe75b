"""Training one seed, in this process or in worker processes (one seed per task).

`run_seed` builds the model, fits it with early stopping, restores the best weights and predicts
the test split once; it returns a picklable `SeedOutcome`. `run_seeds` runs a list of seeds with
`workers` processes (forked on Linux, spawned elsewhere) and yields the outcomes in seed order as
they are ready. Each worker reads the memory-mapped feature store itself and sets
its own number of torch threads, so a seed's result does not depend on how many run at once: with
the same thread count, one worker and two workers give bit-identical metrics (tested).

This module imports no MLflow: workers start fast, and logging stays in the parent process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from harness.data.loading import load_dataset
from harness.provenance import hardware_facts
from harness.records.cost import RunCost
from harness.training.cost import reset_gpu_peak, run_cost, synchronize
from harness.training.loop import (
    EpochLog,
    LoopConfig,
    RunContext,
    build_model,
    evaluate,
    fit,
    resolve_device,
)
from harness.workers import map_in_order, pinned_device, worker_threads
from methods import load_method
from methods.base import OptimHparams


@dataclass(frozen=True)
class SeedTask:
    """Everything one seed's run needs (picklable)."""

    method: str
    hparams: OptimHparams
    store: Path
    dataset: str
    loop: LoopConfig
    seed: int


@dataclass(frozen=True)
class SeedOutcome:
    seed: int
    test_metrics: dict[str, float]
    predictions: np.ndarray  # (N_test,) float32, in the store's test order
    best_valid: dict[str, float]
    best_epoch: int
    epochs_run: int
    history: list[EpochLog]
    wall_time_s: float
    started_at: float  # time.time() at the start and end of `run_seed`, in the process that
    ended_at: float  # trained the seed: its MLflow run's start and end times
    device: str  # e.g. "cpu (1 thread)" or "cuda:0": CPU results depend on the thread count
    hardware: dict[str, str]  # `provenance.hardware_facts` of the process that trained it
    state: dict[str, torch.Tensor]  # the restored best weights (CPU), saved as the checkpoint
    cost: RunCost  # parameters, peak memory, train and inference time, device (not deterministic)


def run_seed(task: SeedTask, callbacks: Sequence[Callable[[EpochLog], None]] = ()) -> SeedOutcome:
    """Fit one seed and evaluate it on the test split (the test split is read only here).
    Its cost is measured around the fit and the test pass (timers, memory peaks: the numbers
    computed are the same with or without)."""
    started, started_at = time.perf_counter(), time.time()
    if pinned_device() is not None:  # a worker started on one device (packed onto a GPU)
        task = replace(task, loop=replace(task.loop, device=pinned_device()))
    device = resolve_device(task.loop.device)
    reset_gpu_peak(device)
    method_cls = load_method(task.method)
    spec, splits = load_dataset(task.store)
    model = build_model(method_cls, task.hparams, spec, task.seed)
    context = RunContext(task.dataset, task.method, task.seed)
    fit_started = time.perf_counter()
    outcome = fit(model, splits["train"], splits["valid"], task.loop, context, task.seed, callbacks)
    synchronize(device)
    test_started = time.perf_counter()
    test_metrics, predictions = evaluate(
        outcome.model, splits["test"], task.loop.eval_batch_size, device
    )
    synchronize(device)
    test_seconds = time.perf_counter() - test_started
    hardware = hardware_facts(device)
    cost = run_cost(
        outcome.model, device, hardware, test_started - fit_started,
        [epoch.seconds for epoch in outcome.history], test_seconds, len(splits["test"]),
        task.loop.eval_batch_size,
    )  # fmt: skip
    return SeedOutcome(
        seed=task.seed,
        test_metrics=test_metrics,
        predictions=np.asarray(predictions, dtype=np.float32),
        best_valid=outcome.best_valid,
        best_epoch=outcome.best_epoch,
        epochs_run=outcome.epochs_run,
        history=outcome.history,
        wall_time_s=time.perf_counter() - started,
        started_at=started_at,
        ended_at=time.time(),
        device=_describe(device),
        hardware=hardware,
        state={k: v.detach().cpu().clone() for k, v in outcome.model.state_dict().items()},
        cost=cost,
    )


def _describe(device: torch.device) -> str:
    if device.type != "cpu":
        return str(device)
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


def run_seeds(
    tasks: Sequence[SeedTask], workers: int, devices: Sequence[str] | None = None
) -> Iterator[SeedOutcome]:
    """Run the tasks with `workers` processes (each with its share of the cores), or with one
    spawned process per entry of `devices` (runs packed onto GPUs: `harness.placement`); yield
    outcomes in the tasks' order. A failure in any seed is raised here (the remaining tasks
    are cancelled)."""
    processes = len(devices) if devices is not None else workers
    if processes > 1 and len(tasks) > 1:
        threads = worker_threads(tasks[0].loop.num_threads, processes)
        tasks = [replace(task, loop=replace(task.loop, num_threads=threads)) for task in tasks]
    yield from map_in_order(run_seed, tasks, workers, devices)
