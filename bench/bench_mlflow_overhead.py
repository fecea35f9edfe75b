"""Benchmark: MLflow logging overhead as a share of a training run.

Trains one seed of a method on a MOSI-shaped synthetic store (`harness.seed_runs.run_seed`, the
train stage's own code), then replays exactly what the train stage logs for that run through
`harness.pipeline._track_seed` (start the run with its tags, the hyperparameters, every epoch's
curves, the final metrics, record.json, config.json and the test predictions) into a fresh
sqlite tracking store, timing only the logging. Overhead = logging / (training + logging).

Usage: python bench/bench_mlflow_overhead.py [--method tfn] [--epochs 5] [--scale 0.25]
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="tfn")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.25, help="share of MOSI's 1,284 samples")
    args = parser.parse_args()

    from bench_throughput import make_store

    from harness.data.loading import load_dataset
    from harness.stages import train as train_stage
    from harness.tracking import Tracker
    from harness.training.loop import LoopConfig
    from harness.training.seed_runs import SeedTask, run_seed
    from methods import METHODS

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        make_store(store, "mosi", args.scale)
        spec, splits = load_dataset(store, standardize=False, splits=("test",))
        hparams = METHODS.get(args.method).resolve_hparams(spec.kind, {})
        loop = LoopConfig(max_epochs=args.epochs, patience=args.epochs, progress=False)
        task = SeedTask(args.method, hparams, store, "bench", loop, 1111)
        started = time.perf_counter()
        outcome = run_seed(task)
        train_s = time.perf_counter() - started
        resolved = {
            "dataset": "bench",
            "method": args.method,
            "hparams": asdict(hparams),
            "loop": asdict(loop),
            "data_hash": "0" * 64,
        }
        os.chdir(tmp)
        tracker = Tracker(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        tracker.experiment_id("bench")  # the store's tables, created once per project
        timings = []
        for _ in range(3):  # first, then replacing the run (what a re-run does)
            started = time.perf_counter()
            train_stage._track_seed(
                tracker, resolved, task, splits["test"], lambda t, live: outcome
            )
            timings.append(time.perf_counter() - started)
    logging_s = min(timings[1:])
    print(
        f"{args.method}: training {train_s:.2f} s ({outcome.epochs_run} epochs, "
        f"{len(outcome.history)} epoch logs), MLflow logging {logging_s:.3f} s "
        f"(first run {timings[0]:.3f} s): overhead {100 * logging_s / (train_s + logging_s):.2f}% "
        f"of the run"
    )


if __name__ == "__main__":
    main()
