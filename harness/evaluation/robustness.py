"""The missing-modality protocol applied to trained models: every checkpoint of every method is
evaluated on the test split at missing rates 0.0, 0.1, ..., 0.9, intra-modal and for each
inter-modal pattern, with masks fixed by one missing seed (harness/data/missing.py), so every method
sees exactly the same missing steps and samples.

Conditions: "intra" (each real step of every modality dropped with probability r) and
"drop-<modalities>" (e.g. "drop-audio-vision": each sample loses those modalities with
probability r). Inter-modal predictions are composed, not recomputed per rate: the model predicts
the test split once complete and once with the pattern dropped from every sample, and at rate r
a sample takes its dropped prediction if the seeded draw selects it. That is exact because every
method predicts each sample independently of the others in its batch in eval mode (a contract
test checks it for every registered method), and it costs 16 passes instead of 64.

N = test samples. Records are typed (`RobustnessRecord`), one per (method, seed, condition,
rate), each with every metric of the dataset's kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.data.loading import load_dataset
from harness.data.missing import INTER_PATTERNS, RATES, MissingMasks, drop_modalities
from harness.data.store import read_manifest
from harness.data.types import MODALITIES, SplitData
from harness.errors import DataError
from harness.metrics import compute_metrics
from harness.records import RobustnessRecord
from harness.training.checkpoints import load_checkpoint, restore_model
from harness.training.loop import predict, resolve_device
from harness.workers import pinned_device
from methods.base import MsaMethod

INTRA = "intra"


def condition_name(pattern: tuple[str, ...]) -> str:
    """("audio", "vision") -> "drop-audio-vision"."""
    return "drop-" + "-".join(pattern)


CONDITIONS: tuple[str, ...] = (INTRA,) + tuple(condition_name(p) for p in INTER_PATTERNS)


def describe_condition(condition: str) -> str:
    """Human-readable name: "intra-modal missing" or "inter-modal missing: audio + vision"."""
    if condition == INTRA:
        return "intra-modal missing (frames/tokens dropped at rate r)"
    dropped = condition.removeprefix("drop-").split("-")
    return f"inter-modal missing: {' + '.join(dropped)} dropped from a fraction r of samples"


@dataclass(frozen=True)
class RobustnessTask:
    """Everything one checkpoint's evaluation needs (picklable, for worker processes)."""

    dataset: str
    method: str
    seed: int
    checkpoint: Path
    store: Path
    missing_seed: int
    batch_size: int
    device: str
    num_threads: int


def robustness_curves(
    model: MsaMethod, test: SplitData, masks: MissingMasks, batch_size: int, device
) -> dict[str, dict[float, np.ndarray]]:
    """{condition: {rate: predictions (N,) float64}} for every condition and rate in RATES."""
    complete = predict(model, test, batch_size, device)
    curves: dict[str, dict[float, np.ndarray]] = {INTRA: {0.0: complete}}
    for rate in RATES[1:]:
        curves[INTRA][rate] = predict(
            model, test, batch_size, device, lambda batch, r=rate: masks.apply(batch, r)
        )
    for pattern in INTER_PATTERNS:
        dropped = predict(
            model, test, batch_size, device, lambda batch, p=pattern: drop_modalities(batch, p)
        )
        curves[condition_name(pattern)] = {
            rate: np.where(masks.dropped_rows(pattern, rate), dropped, complete) for rate in RATES
        }
    return curves


def evaluate_checkpoint(task: RobustnessTask) -> list[RobustnessRecord]:
    """Load one checkpoint, sweep every condition and rate, return its records (rate order)."""
    if task.num_threads > 0:
        torch.set_num_threads(task.num_threads)
    spec, splits = load_dataset(task.store, splits=("train", "test"))  # train: scaler only
    checkpoint = load_checkpoint(task.checkpoint)
    if (checkpoint.method, checkpoint.seed) != (task.method, task.seed):
        raise DataError(
            f"{task.checkpoint}: holds {checkpoint.method} seed {checkpoint.seed}, "
            f"expected {task.method} seed {task.seed}"
        )
    model = restore_model(checkpoint, spec, read_manifest(task.store).data_hash)
    test = splits["test"]
    device = resolve_device(pinned_device() or task.device)  # a worker started on one GPU
    model.to(device)
    masks = MissingMasks(
        test.lengths, {m: int(test.features[m].shape[1]) for m in MODALITIES}, task.missing_seed
    )
    truths = test.labels.detach().cpu().double().numpy()
    records = []
    for condition, by_rate in robustness_curves(
        model, test, masks, task.batch_size, device
    ).items():
        for rate, predictions in by_rate.items():
            records.append(
                RobustnessRecord(
                    task.dataset,
                    task.method,
                    task.seed,
                    condition,
                    rate,
                    compute_metrics(spec.kind, predictions, truths),
                )  # fmt: skip
            )
    return records
