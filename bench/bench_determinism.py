"""Benchmark: what is bitwise reproducible. Trains each method twice with the same seed on the
same data and compares the two runs' test predictions, per device and precision, and the
devices and precisions against each other.

Rows (each a pair of full `harness.training.fit` runs on a small synthetic store):
- `cpu` vs `cpu`: two CPU runs, same seed, same thread count;
- `cuda` vs `cuda`: two CUDA runs (float32, `seed_everything`'s deterministic settings);
- `cuda amp` vs `cuda amp`: two CUDA runs with automatic mixed precision;
- `cuda` vs `cpu` and `cuda amp` vs `cuda`: across devices and precisions, expected to differ.

For each: whether the predictions (N,) are bitwise equal, the largest absolute difference, and
the test MAE of each side. CUDA rows are skipped without a GPU.

Usage: python bench/bench_determinism.py [--methods tfn mult ...] [--epochs 3]
Not a test: the CPU row is also checked by tests/test_faults.py (determinism) on every CI run.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from harness.data.loading import load_dataset
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.training.loop import LoopConfig, RunContext, build_model, fit, predict
from methods import METHODS

DEFAULT_METHODS = [
    "lf_dnn",
    "tfn",
    "lmf",
    "mult",
    "misa",
    "mmim",
    "self_mm",
    "fine",
    "fsrf",
    "mmmie",
    "ir_svr",
]


def make_store(directory: Path) -> None:
    """MOSI-like dims, short sequences: 256/64/128 samples, text (20, 32), audio (30, 5),
    vision (25, 20)."""
    write_synthetic_store(
        directory,
        SyntheticConfig(
            seed=0,
            n_train=256,
            n_valid=64,
            n_test=128,
            max_lengths={"text": 20, "audio": 30, "vision": 25},
            feature_dims={"text": 32, "audio": 5, "vision": 20},
            noise_dims={"text": 4, "audio": 2, "vision": 4},
        ),
    )


def run_once(store: Path, method: str, device: str, amp: bool, epochs: int) -> np.ndarray:
    """Test predictions (N,) of one seeded fit."""
    spec, splits = load_dataset(store)
    cls = METHODS.get(method)
    hparams = cls.resolve_hparams(spec.kind, {})
    model = build_model(cls, hparams, spec, seed=7)
    config = LoopConfig(max_epochs=epochs, patience=epochs, device=device, progress=False, amp=amp)
    outcome = fit(model, splits["train"], splits["valid"], config, RunContext("det", method, 7), 7)
    return predict(outcome.model, splits["test"], 256, torch.device(device))


def compare(a: np.ndarray, b: np.ndarray, truth: np.ndarray) -> str:
    equal = a.shape == b.shape and np.array_equal(a, b)
    diff = float(np.max(np.abs(a - b)))
    mae_a, mae_b = (float(np.mean(np.abs(x - truth))) for x in (a, b))
    return f"{'yes' if equal else 'no'} | {diff:.2e} | {mae_a:.6f} | {mae_b:.6f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=DEFAULT_METHODS)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        make_store(store)
        truth = load_dataset(store)[1]["test"].labels.double().numpy()
        print(
            f"# torch {torch.__version__}, "
            f"{torch.cuda.get_device_name() if cuda else 'no GPU'}, {args.epochs} epochs"
        )
        print(
            "| method | runs compared | bitwise equal | max abs difference | test MAE (first) "
            "| test MAE (second) | nondeterministic-op warnings |"
        )
        print("|---|---|---|---|---|---|---|")
        for method in args.methods:
            runs: dict[str, list[np.ndarray]] = {}
            caught: dict[str, set[str]] = {}
            modes = [("cpu", False)] + ([("cuda", False), ("cuda", True)] if cuda else [])
            for device, amp in modes:
                name = f"{device}{' amp' if amp else ''}"
                with warnings.catch_warnings(record=True) as seen:
                    warnings.simplefilter("always")
                    runs[name] = [
                        run_once(store, method, device, amp, args.epochs) for _ in range(2)
                    ]
                caught[name] = {
                    str(w.message).split(".")[0][:60]
                    for w in seen
                    if "deterministic" in str(w.message)
                }
            rows = [(f"{n} vs {n}", runs[n][0], runs[n][1], caught[n]) for n in runs]
            if cuda:
                rows.append(("cuda vs cpu", runs["cuda"][0], runs["cpu"][0], set()))
                rows.append(("cuda amp vs cuda", runs["cuda amp"][0], runs["cuda"][0], set()))
            for label, a, b, warned in rows:
                print(
                    f"| {method} | {label} | {compare(a, b, truth)} | "
                    f"{'; '.join(sorted(warned)) or '—'} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
