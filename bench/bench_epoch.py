"""Benchmark: seconds per training epoch and peak memory of every registered method on `synth`.

Usage: python bench/bench_epoch.py [--profile params.yaml] [--epochs 3] [--threads 1]
                                   [--methods lf_dnn tfn ...]
With a profile, each method uses that profile's fixed hyperparameters (methods.<m>.hparams) and
`synth` is generated with the profile's synthetic options (sizes, lengths); without one, every
method runs at its published defaults on the generator's default `synth`. Prints one line per
method: median epoch seconds (train + validation) over the epochs after the first, batches per
second, batch size, parameters, and peak resident memory of the process so far. Not a test:
numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from harness.config import load_params
from harness.data.loading import load_dataset
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods import METHODS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, help="params file whose sizes to use")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = default)")
    parser.add_argument("--methods", nargs="*", default=METHODS.names())
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    params = load_params(args.profile) if args.profile else None
    synthetic = (
        SyntheticConfig.from_mapping(params.dataset("synth").options.get("synthetic", {}))
        if params
        else SyntheticConfig()
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "synth"
        write_synthetic_store(store, synthetic)
        spec, splits = load_dataset(store)
    print(
        f"synth: n_train {synthetic.n_train}, lengths {synthetic.max_lengths}, "
        f"{torch.get_num_threads()} thread(s), profile {args.profile or 'published defaults'}"
    )
    loop = LoopConfig(max_epochs=args.epochs, patience=args.epochs, progress=False)
    for name in args.methods:
        cls = METHODS.get(name)
        fixed = params.method(name).hparams if params else {}
        hparams = cls.resolve_hparams(spec.kind, fixed)
        model = build_model(cls, hparams, spec, seed=0)
        n_parameters = sum(p.numel() for p in model.parameters())
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
            f"batch {hparams.batch_size}, {n_parameters / 1e3:.0f}k parameters, "
            f"peak RSS {peak_mib:.0f} MiB"
        )


if __name__ == "__main__":
    main()
