"""Benchmark: does pruning pay? Tuning wall time and the best validation score reached, with the
median pruner and without pruning, at the same trial budget.

Runs `harness.tuning.run_study` (the tune stage's own code) for each method and each
`tune.pruner.kind` in a fresh folder, on `synth` as the params file defines it (default: the
repository's params.yaml, i.e. the default budget). The budget (`--trials`) and epochs per trial
(`--epochs`) can be raised to look at longer searches.

Usage: python bench/bench_pruning.py [--params params.yaml] [--methods tfn mult misa]
       [--trials 12] [--epochs 8]
Prints a Markdown table. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--methods", nargs="*", default=["tfn", "mult", "misa"])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()

    from harness import paths
    from harness.config import load_params
    from harness.data.loading import load_dataset
    from harness.data.store import read_manifest
    from harness.stages import fetch as fetch_stage
    from harness.tracking import Tracker
    from harness.tuning.study import TuningJob, run_study
    from methods import METHODS

    base = load_params(args.params.resolve())
    print(
        f"| method | pruner | trials | pruned | wall time (s) | best valid {base.train.select_metric} |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        fetch_stage.run(base, "synth")
        store = paths.feature_store("synth")
        spec, splits = load_dataset(store, splits=("train", "valid"))
        for method in args.methods:
            for kind in ("median", "none"):
                tune = replace(base.tune, n_trials=args.trials, max_epochs=args.epochs,
                               patience=args.epochs, pruner=kind)  # fmt: skip
                params = replace(base, tune=tune, tracking_uri=f"sqlite:///{tmp}/mlflow.db")
                job = TuningJob("synth", METHODS.get(method), params.method(method), spec,
                                read_manifest(store).data_hash, splits["train"],
                                splits["valid"], params)  # fmt: skip
                started = time.perf_counter()
                result = run_study(job, Path(tmp) / f"{method}-{kind}.journal",
                                   Tracker(params.tracking_uri))  # fmt: skip
                seconds = time.perf_counter() - started
                print(f"| {method} | {kind} | {result.n_complete + result.n_pruned} | "
                      f"{result.n_pruned} | {seconds:.1f} | {result.best_value:.4f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
