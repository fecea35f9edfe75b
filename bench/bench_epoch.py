"""Benchmark: seconds per training epoch and peak memory of every registered method on `synth`.

Usage: python bench/bench_epoch.py [--epochs 3] [--n-train 600] [--methods lf_dnn tfn]
Prints one line per method (median epoch seconds over the epochs after the first, batches per
second, peak resident memory of the process so far). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from harness.data.loading import load_dataset
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.training import LoopConfig, RunContext, build_model, fit
from methods import METHODS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--methods", nargs="*", default=METHODS.names())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "synth"
        write_synthetic_store(store, SyntheticConfig(n_train=args.n_train))
        spec, splits = load_dataset(store)
    loop = LoopConfig(max_epochs=args.epochs, patience=args.epochs, progress=False)
    for name in args.methods:
        cls = METHODS.get(name)
        hparams = cls.resolve_hparams(spec.kind)
        model = build_model(cls, hparams, spec, seed=0)
        started = time.perf_counter()
        outcome = fit(
            model, splits["train"], splits["valid"], loop, RunContext("synth", name, 0), 0
        )
        total = time.perf_counter() - started
        seconds = [log.seconds for log in outcome.history[1:]] or [total]
        batches = -(-len(splits["train"]) // hparams.batch_size)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{name:<8} epoch {statistics.median(seconds):.3f} s (train + valid), "
            f"{batches / statistics.median(seconds):.1f} batches/s, "
            f"batch {hparams.batch_size}, peak RSS {peak_mib:.0f} MiB"
        )


if __name__ == "__main__":
    main()
