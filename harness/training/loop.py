"""The one training loop: every method trains, early-stops and evaluates through `fit`.

Deterministic on CPU under a seed: the model is built, batches are shuffled and dropout is drawn
from generators seeded from that seed, and torch's deterministic algorithms are switched on.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from harness.config import Params, TrainConfig
from harness.data.loading import iterate_batches, num_batches
from harness.data.prefetch import prefetch
from harness.data.types import Batch, DataSpec, SplitData
from harness.errors import ConfigError, NonFiniteLossError
from harness.metrics import compute_metrics, is_better
from harness.schema import default_of
from harness.training.allocator import reuse_freed_memory
from harness.training.compilation import compile_forward
from harness.training.optimisers import (
    TrainingStep,
    make_scheduler,
    step_scheduler,
    training_steps,
)
from methods.base import MsaMethod, OptimHparams


@dataclass(frozen=True)
class LoopConfig:
    """How long and on what to train; early stopping watches `select_metric` on validation.

    The first eight come from params.yaml (`for_training`, `for_tuning`); the defaults of the
    optional ones are the configuration's own (harness/config), read from there, so each lives
    in one place. The last two are the loop's own settings."""

    max_epochs: int
    patience: int
    select_metric: str = default_of(TrainConfig, "select_metric")
    device: str = default_of(Params, "device")
    # torch CPU threads for this fit; 0 leaves torch's setting as it is
    num_threads: int = default_of(Params, "num_threads")
    amp: bool = default_of(Params, "amp")  # CUDA mixed precision (float16 autocast, scaling)
    eval_batch_size: int = default_of(Params, "eval_batch_size")
    compile_mode: str = default_of(Params, "compile_mode")  # torch.compile of forward, or "none"
    progress: bool = True
    prefetch: int = 2  # CUDA only: training batches prepared ahead on a background thread

    @classmethod
    def for_training(cls, params: Params, dataset: str) -> LoopConfig:
        """The train stage's loop on `dataset`: `train.max_epochs`, `train.patience`, ..."""
        train = params.train
        return cls._from(params, dataset, train.max_epochs, train.patience, progress=True)

    @classmethod
    def for_tuning(cls, params: Params, dataset: str) -> LoopConfig:
        """A tuning trial's loop on `dataset`: `tune.max_epochs`, `tune.patience`, no bar."""
        tune = params.tune
        return cls._from(params, dataset, tune.max_epochs, tune.patience, progress=False)

    @classmethod
    def _from(
        cls, params: Params, dataset: str, max_epochs: int, patience: int, progress: bool
    ) -> LoopConfig:
        return cls(
            max_epochs=max_epochs,
            patience=patience,
            select_metric=params.select_metric_for(dataset),
            device=params.device,
            num_threads=params.num_threads,
            amp=params.amp,
            eval_batch_size=params.eval_batch_size,
            compile_mode=params.compile_mode,
            progress=progress,
        )


@dataclass(frozen=True)
class RunContext:
    """Who is training (for error messages and logs)."""

    dataset: str
    method: str
    seed: int


@dataclass(frozen=True)
class EpochLog:
    """One epoch: mean train loss terms (with 'total' and extra-step values) and validation
    metrics."""

    epoch: int
    train: dict[str, float]
    valid: dict[str, float]
    seconds: float
    # the main optimiser's first group's rate for the next epoch (after the recipe's scheduler)
    learning_rate: float = math.nan


@dataclass
class FitOutcome:
    model: MsaMethod  # with the best epoch's weights restored
    best_epoch: int
    best_valid: dict[str, float]
    history: list[EpochLog] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


EpochCallback = Callable[[EpochLog], None]


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and ask torch for deterministic kernels: on CPU a run is
    bitwise reproducible for a given thread count; on CUDA, cuBLAS gets a fixed workspace, cuDNN
    its deterministic algorithms (no autotuning), and an op without a deterministic CUDA kernel
    warns instead of failing (`warn_only`), so GPU runs repeat on the same GPU, driver and torch
    version except through such ops (docs/gpu.md).

    Deterministic mode would also fill every newly allocated tensor with NaN
    (`fill_uninitialized_memory`), a guard against ops that read memory they never wrote. No op
    used here does (every output is fully written, and the determinism tests compare bits), and
    the fill costs a fifth of TFN's CPU step (its 9.5M-element gradients and 4.5M-element fused
    tensor are written twice) and thousands of extra kernels per GPU step, so it is off."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def build_model(
    method_cls: type[MsaMethod], hparams: OptimHparams, spec: DataSpec, seed: int
) -> MsaMethod:
    seed_everything(seed)
    return method_cls(hparams, method_cls.input_spec(hparams, spec))


def fit(
    model: MsaMethod,
    train: SplitData,
    valid: SplitData,
    config: LoopConfig,
    context: RunContext,
    seed: int,
    callbacks: Sequence[EpochCallback] = (),
) -> FitOutcome:
    """Train with early stopping on validation `config.select_metric`; restore the best weights."""
    reuse_freed_memory()  # no page faults for blocks allocated anew every batch (TFN: 40%)
    device = resolve_device(config.device)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    model.to(device)
    if model.CLOSED_FORM:
        return _fit_closed_form(model, train, valid, config, device, callbacks)
    compile_forward(model, config.compile_mode)
    passes = training_steps(model)  # the method's own passes first, then the main one
    optimizer = passes[-1].optimizer
    scheduler = make_scheduler(model.hparams, optimizer, config.select_metric, config.max_epochs)
    # mixed precision only where it exists (CUDA); on CPU the option changes nothing
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
    if scaler.is_enabled() and model.hparams.grad_accumulation_mode == "running":
        raise ConfigError(
            f"amp: method {context.method} accumulates gradients in 'running' mode, whose steps "
            "read a running sum that dynamic loss scaling cannot rescale; set amp: false"
        )
    shuffle = torch.Generator().manual_seed(seed)
    best_state, best_epoch, best_valid = None, 0, {}
    history: list[EpochLog] = []
    for epoch in range(1, config.max_epochs + 1):
        started = time.perf_counter()
        train_losses: dict[str, float] = {}
        model.start_epoch(epoch)
        for one in passes:
            train_losses.update(
                _train_epoch(model, one, train, shuffle, device, config, context, epoch, scaler)
            )
        valid_metrics = evaluate(model, valid, config.eval_batch_size, device)[0]
        score = valid_metrics[config.select_metric]
        if scheduler is not None:
            step_scheduler(scheduler, score)
        rate = float(optimizer.param_groups[0]["lr"])
        log = EpochLog(epoch, train_losses, valid_metrics, time.perf_counter() - started, rate)
        history.append(log)
        if best_state is None or is_better(
            config.select_metric, score, best_valid.get(config.select_metric, math.nan)
        ):
            best_state, best_epoch, best_valid = (
                copy.deepcopy(model.state_dict()),
                epoch,
                valid_metrics,
            )
        for callback in callbacks:
            callback(log)
        if epoch - best_epoch >= config.patience:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    return FitOutcome(model, best_epoch, best_valid, history)


def _fit_closed_form(
    model: MsaMethod,
    train: SplitData,
    valid: SplitData,
    config: LoopConfig,
    device: torch.device,
    callbacks: Sequence[EpochCallback],
) -> FitOutcome:
    """A method fitted in closed form: one "epoch" that is its fit (choosing its own penalty on
    validation `config.select_metric`), logged and scored like any epoch."""
    started = time.perf_counter()
    fitted = model.fit_closed_form(train, valid, config.select_metric)
    valid_metrics = evaluate(model, valid, config.eval_batch_size, device)[0]
    log = EpochLog(1, fitted, valid_metrics, time.perf_counter() - started)
    for callback in callbacks:
        callback(log)
    return FitOutcome(model, 1, valid_metrics, [log])


def _train_epoch(
    model: MsaMethod,
    one: TrainingStep,
    split: SplitData,
    shuffle: torch.Generator,
    device: torch.device,
    config: LoopConfig,
    context: RunContext,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """One pass over the training split; returns the mean of each named term over batches
    (a method's own pass: its terms, "total" named "<pass>_total"). With an enabled `scaler`
    (CUDA AMP) the forward pass and losses run under float16 autocast and the loss is scaled
    for backward; a method's extra step stays in float32."""
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=False)
    model.train()
    batch_size = model.hparams.batch_size
    # a last batch of a single sample is dropped: batch normalisation cannot train on it
    drop_last = len(split) % batch_size == 1 and len(split) > 1
    total = num_batches(len(split), batch_size, drop_last)
    batches = iterate_batches(split, batch_size, True, shuffle, drop_last)
    if one.fraction < 1.0:  # the first batches only (MMSA: while i_batch / n < fraction)
        total = math.ceil(one.fraction * total)
        batches = itertools.islice(batches, total)
    desc = f"{context.method}/{context.dataset} seed {context.seed} epoch {epoch}"
    if one.loss_terms is not None:
        desc += f" ({one.name})"
    show = None if config.progress else True
    ahead = config.prefetch if device.type == "cuda" else 0  # on CPU a thread only competes
    with closing(prefetch(batches, device, ahead)) as ahead:
        progress = tqdm(ahead, total=total, desc=desc, leave=False, disable=show)
        sums = _train_batches(model, one, progress, scaler, context, epoch)
    return {name: float(value) / total for name, value in sums.items()}


def _train_batches(
    model: MsaMethod,
    one: TrainingStep,
    batches: Iterable[Batch],
    scaler: torch.amp.GradScaler,
    context: RunContext,
    epoch: int,
) -> dict[str, torch.Tensor]:
    """The pass over batches already on the model's device, as the method's recipe says: the
    gradients of `grad_accumulation` batches summed into each optimiser step (a remainder at the
    end dropped, as MMSA drops it; or stepped on their running sum, `_steps_after`), clipped by
    value after every backward or by global norm before every step. Returns each named term's
    sum over the batches, as tensors on the device (read once per epoch: no sync per term). With
    an enabled `scaler` the forward pass and losses run under float16 autocast."""
    hp = model.hparams
    optimizer = one.optimizer
    parameters = [p for p in model.parameters() if p.requires_grad]
    sums: dict[str, torch.Tensor] = {}
    for index, batch in enumerate(batches):
        device = batch.labels.device
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
            batch = model.prepare_batch(batch)
        values: dict[str, float | torch.Tensor] = {}
        if one.loss_terms is None:
            # the extra step sees the prepared batch without its graph (it has its own backward)
            values.update(model.extra_step(_detached(batch)))
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
            terms = (
                model.loss_terms(batch, model(batch))
                if one.loss_terms is None
                else one.loss_terms(batch)
            )
            loss = torch.stack([term.float() for term in terms.values()]).sum()
        _check_finite(loss, terms, context, epoch)
        if index % hp.grad_accumulation == 0:
            model.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if hp.grad_clip > 0 and hp.grad_clip_mode == "value":
            torch.nn.utils.clip_grad_value_(parameters, _threshold(hp.grad_clip, scaler))
        for _ in range(_steps_after(index, hp)):
            if hp.grad_clip > 0 and hp.grad_clip_mode == "norm":
                torch.nn.utils.clip_grad_norm_(parameters, _threshold(hp.grad_clip, scaler))
            scaler.step(optimizer)
            scaler.update()
        total = "total" if one.loss_terms is None else f"{one.name}_total"
        values.update({name: term.detach().double() for name, term in terms.items()})
        values[total] = loss.detach().double()
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
    return sums


def _steps_after(index: int, hp: OptimHparams) -> int:
    """Optimiser steps after the backward of batch `index` (0-based) of a pass: "sum"
    accumulation steps once at the end of each cycle of `grad_accumulation` batches; "running"
    steps after every batch and once more at a cycle's end (MMSA's TFR-Net trainer)."""
    cycle_end = (index + 1) % hp.grad_accumulation == 0
    if hp.grad_accumulation_mode == "running":
        return 2 if cycle_end else 1
    return 1 if cycle_end else 0


def _threshold(clip: float, scaler: torch.amp.GradScaler) -> float:
    """The clipping threshold for the (AMP-)scaled gradients: the same clip, and it covers every
    parameter, not only those of the pass's optimiser (MMSA clips model.parameters()), where
    unscale_ would reach only the optimiser's own. Read only when clipping (get_scale syncs)."""
    return clip * (scaler.get_scale() if scaler.is_enabled() else 1.0)


def _detached(batch: Batch) -> Batch:
    """The batch with every feature tensor detached from autograd (the same values)."""
    if all(not x.requires_grad for x in batch.features.values()):
        return batch
    return batch.with_features({m: x.detach() for m, x in batch.features.items()})


def _check_finite(
    loss: torch.Tensor, terms: dict[str, torch.Tensor], context: RunContext, epoch: int
) -> None:
    if torch.isfinite(loss):
        return
    bad = [name for name, term in terms.items() if not torch.isfinite(term)]
    raise NonFiniteLossError(
        f"non-finite loss ({float(loss.detach())}) in dataset '{context.dataset}', method "
        f"'{context.method}', seed {context.seed}, epoch {epoch} (terms: {', '.join(bad)})"
    )


@torch.no_grad()
def predict(
    model: MsaMethod,
    split: SplitData,
    batch_size: int,
    device: torch.device | str,
    transform: Callable[[Batch], Batch] | None = None,
) -> np.ndarray:
    """Predicted scores for every sample of the split in order: (N,) float64. `transform` (e.g.
    a missing-modality mask) is applied to each standardised batch before the model sees it."""
    model.eval()
    outputs = []
    for batch in iterate_batches(split, batch_size, shuffle=False, generator=None):
        if transform is not None:
            batch = transform(batch)
        batch = model.prepare_batch(batch.to(device))
        outputs.append(model(batch)["prediction"].detach().cpu())
    return torch.cat(outputs).double().numpy()


def evaluate(
    model: MsaMethod,
    split: SplitData,
    batch_size: int,
    device: torch.device | str,
    transform: Callable[[Batch], Batch] | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """(metrics of the dataset's kind, predictions (N,)) on `split`."""
    predictions = predict(model, split, batch_size, device, transform)
    truths = split.labels.detach().cpu().double().numpy()
    return compute_metrics(model.spec.kind, predictions, truths), predictions
