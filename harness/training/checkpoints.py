"""Trained models on disk: one checkpoint per (dataset, method, seed), written by the train stage
and read by later stages (robustness) to evaluate the very model the run record describes.

A checkpoint is a `torch.save` of plain data only (read back with `weights_only=True`, so loading
never runs pickled code): the method name, dataset, seed, resolved hyperparameters, the feature
store's data hash, and the state dict. Written atomically (temporary file, then rename).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.data.types import DataSpec
from harness.errors import DataError
from harness.io_utils import atomic_path

FORMAT = "msabench-checkpoint-1"


@dataclass(frozen=True)
class Checkpoint:
    method: str
    dataset: str
    seed: int
    hparams: dict[str, Any]
    data_hash: str
    state: dict[str, torch.Tensor]


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    payload = {
        "format": FORMAT,
        "method": checkpoint.method,
        "dataset": checkpoint.dataset,
        "seed": checkpoint.seed,
        "hparams": dict(checkpoint.hparams),
        "data_hash": checkpoint.data_hash,
        "state": {k: v.detach().cpu() for k, v in checkpoint.state.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint; DataError (naming the file) if it is missing, unreadable or not one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found (run the train stage first)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise DataError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        raise DataError(f"{path}: not an msabench checkpoint (expected format {FORMAT!r})")
    try:
        return Checkpoint(
            method=str(payload["method"]),
            dataset=str(payload["dataset"]),
            seed=int(payload["seed"]),
            hparams=dict(payload["hparams"]),
            data_hash=str(payload["data_hash"]),
            state=dict(payload["state"]),
        )
    except KeyError as exc:
        raise DataError(f"{path}: checkpoint lacks the key {exc.args[0]!r}") from None


def restore_model(checkpoint: Checkpoint, spec: DataSpec, data_hash: str, where: str = ""):
    """The trained model, in eval mode. DataError if the checkpoint was trained on other data
    (its data hash differs from the store's) or its weights do not fit the method."""
    from harness.training.loop import build_model
    from methods import load_method

    where = where or f"checkpoint {checkpoint.dataset}/{checkpoint.method}/seed {checkpoint.seed}"
    if checkpoint.data_hash != data_hash:
        raise DataError(
            f"{where}: trained on data {checkpoint.data_hash[:12]}, but the feature store holds "
            f"{data_hash[:12]}; re-run the train stage"
        )
    method_cls = load_method(checkpoint.method)
    hparams = method_cls.resolve_hparams(spec.kind, checkpoint.hparams, where=f"{where}: hparams")
    model = build_model(method_cls, hparams, spec, checkpoint.seed)
    try:
        model.load_state_dict(checkpoint.state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DataError(f"{where}: weights do not fit {checkpoint.method} ({first})") from None
    return model.eval()
