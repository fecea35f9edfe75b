"""Profile: where one method's training step spends its time, on CPU or CUDA.

Builds a MOSI-shaped synthetic store (text (50, 768), audio (500, 5), vision (375, 20)) of
`--samples` training samples, trains one warm-up epoch, then:
- times one epoch with `torch.use_deterministic_algorithms(True, warn_only=True)` (the harness's
  setting, `seed_everything`) and one without, to show what determinism costs;
- profiles one epoch with `torch.profiler` and prints the top operators by self device time (CUDA)
  or self CPU time.

Usage: python bench/profile_step.py --method mult [--device cuda] [--samples 256] [--top 15]
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_throughput import LENGTHS, SHAPES  # this folder: the MOSI shape, defined once
from torch.profiler import ProfilerActivity, profile

from harness.data.loading import load_dataset
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.training import loop as training
from harness.training.allocator import reuse_freed_memory
from harness.training.loop import LoopConfig, RunContext, build_model, resolve_device
from harness.training.optimisers import training_steps
from methods import METHODS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    reuse_freed_memory()  # as training.fit does
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        write_synthetic_store(
            store,
            SyntheticConfig(
                seed=0,
                n_train=args.samples,
                n_valid=16,
                n_test=16,
                max_lengths=dict(LENGTHS),
                feature_dims=dict(SHAPES["mosi"]["dims"]),
                noise_dims={"text": 4, "audio": 4, "vision": 4},
            ),
        )
        spec, splits = load_dataset(store, splits=("train",))
        train = splits["train"]
        cls = METHODS.get(args.method)
        hparams = cls.resolve_hparams(spec.kind, {})
        device = resolve_device(args.device)
        model = build_model(cls, hparams, spec, seed=0).to(device)
        steps = training_steps(model)  # the method's own passes, then the main one
        config = LoopConfig(max_epochs=1, patience=1, progress=False, device=str(device))
        context = RunContext("profile", args.method, 0)
        shuffle = torch.Generator().manual_seed(0)

        def epoch() -> float:
            started = time.perf_counter()
            model.start_epoch(1)
            for one in steps:
                training._train_epoch(model, one, train, shuffle, device, config, context, 0)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - started

        epoch()  # warm-up
        timed = {}
        for deterministic in (True, False, True):
            torch.use_deterministic_algorithms(deterministic, warn_only=True)
            timed[deterministic] = epoch()
        torch.use_deterministic_algorithms(True, warn_only=True)
        print(
            f"# {args.method} on {device}, batch {hparams.batch_size}, {len(train)} samples: "
            f"{len(train) / timed[True]:.0f} samples/s deterministic, "
            f"{len(train) / timed[False]:.0f} samples/s without"
        )
        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if device.type == "cuda" else []
        )
        with profile(activities=activities) as profiler:
            epoch()
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(
            profiler.key_averages().table(sort_by=key, row_limit=args.top, max_name_column_width=48)
        )


if __name__ == "__main__":
    main()
