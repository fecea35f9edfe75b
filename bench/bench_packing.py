"""Benchmark: the grid's throughput with several seed runs packed onto each GPU (issue 23).

For each method and each `--packing` (runs per GPU: `train.runs_per_gpu`), train `--seeds`
seeds exactly as the train stage does (`run_seeds` with the devices `harness.placement` gives:
spawned processes pinned to their GPU) on a MOSI-shaped synthetic store, and report
- wall seconds for all seeds, and runs per GPU-hour (seeds / wall hours / GPUs used);
- the speed-up over one run at a time (packing 1);
- whether every seed's test predictions are bitwise equal to packing 1's (a run's numbers must
  not depend on what shares its GPU);
- the largest per-run GPU memory peak (each run's own CUDA allocator).

`--compile-mode` and `--eval-batch-size` pass through to the loop (params `compile_mode`,
`eval_batch_size`), so the launch-overhead settings can be measured with and without packing.
`--device cpu` runs the same spawned, pinned path on the CPU (one thread per run): a smoke test
of this script, no GPU measurement.

Usage: python bench/bench_packing.py [--methods lf_dnn tfn mult] [--packing 1 2 4 8] [--seeds 8]
       [--epochs 3] [--scale 1.0] [--device cuda] [--compile-mode none] [--eval-batch-size 256]
Prints one Markdown row per (method, packing). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_throughput import make_store


def run_grid(store: Path, method: str, packing: int, args: argparse.Namespace):
    """(wall seconds, outcomes in seed order, GPUs used) for `--seeds` seeds at `packing`."""
    import torch

    from harness.data.loading import load_dataset
    from harness.placement import worker_devices
    from harness.training.loop import LoopConfig
    from harness.training.seed_runs import SeedTask, run_seeds
    from methods import METHODS

    spec, _ = load_dataset(store, splits=("train",))
    cls = METHODS.get(method)
    hparams = cls.resolve_hparams(spec.kind, {})
    loop = LoopConfig(
        max_epochs=args.epochs,
        patience=args.epochs,
        progress=False,
        device=args.device,
        num_threads=1,
        eval_batch_size=args.eval_batch_size,
        compile_mode=args.compile_mode,
    )
    tasks = [
        SeedTask(method, hparams, store, "bench", loop, seed) for seed in range(1, args.seeds + 1)
    ]
    if args.device == "cpu":
        devices = ["cpu"] * packing
    else:
        devices = worker_devices(args.device, packing, torch.cuda.device_count())
    gpus = len(set(devices))
    started = time.perf_counter()
    outcomes = list(run_seeds(tasks, workers=1, devices=devices))
    return time.perf_counter() - started, outcomes, gpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=["lf_dnn", "tfn", "mult"])
    parser.add_argument("--packing", nargs="*", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:<k>, or cpu (smoke test)")
    parser.add_argument("--compile-mode", default="none")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        make_store(store, "mosi", args.scale)
        print(
            f"# MOSI-shaped store (scale {args.scale}), {args.seeds} seeds x {args.epochs} "
            f"epochs, compile {args.compile_mode}, eval batch {args.eval_batch_size}, "
            f"device {args.device}"
        )
        print(
            "| method | runs per GPU | wall s | runs per GPU-hour | x one at a time "
            "| predictions = packing 1's | largest GPU peak per run (MiB) |"
        )
        print("|---" * 7 + "|")
        for method in args.methods:
            alone = None
            for packing in args.packing:
                wall, outcomes, gpus = run_grid(store, method, packing, args)
                per_hour = len(outcomes) / (wall / 3600) / gpus
                if alone is None:
                    alone = (per_hour, outcomes)
                same = all(
                    np.array_equal(a.predictions, b.predictions)
                    for a, b in zip(alone[1], outcomes, strict=True)
                )
                peaks = [o.cost.peak_gpu_memory_mb for o in outcomes]
                peak = max(peaks) if all(p is not None for p in peaks) else float("nan")
                print(
                    f"| {method} | {packing} | {wall:.1f} | {per_hour:.0f} | "
                    f"{per_hour / alone[0]:.2f} | {'yes' if same else 'NO'} | {peak:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
