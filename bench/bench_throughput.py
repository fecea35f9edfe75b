"""Benchmark: training and evaluation samples/s, the share of a training step spent loading
data, and peak memory, per method, on MOSI- or MOSEI-shaped synthetic data at MMSA's settings.

Shapes (unaligned MMSA pickles): MOSI text (50, 768), audio (500, 5), vision (375, 20), 1,284
training samples; MOSEI text (50, 768), audio (500, 74), vision (375, 35), 16,326 training
samples. `--scale` shrinks the sample counts (MOSEI at full size is 5.8 GB of float32; samples/s
does not depend on N). Every method runs at its published (MMSA) defaults, batch size included,
unless `--batch-size` overrides it. Each measurement runs in a fresh process, so peak memory is
the method's own.

What is timed, after one warm-up epoch:
- train: `harness.training._train_epoch`, the real loop (batching from the memory-mapped store,
  the method's extra step, named losses, backward, clipping, Adam), over the training split;
- loading: the same batches drawn and moved to the device with no compute, as a share of the
  epoch (what batching would cost if nothing overlapped it);
- waiting: the time the training loop actually waits for its next batch, as a share of the
  epoch (batches are prepared `--prefetch` ahead on a background thread; 0 = in the loop);
- eval: `harness.training.predict` over the training split at the evaluation batch size.

Splits are loaded as training loads them: standardised once into memory when they fit
$MSABENCH_IN_MEMORY_MIB (1 GiB by default; MOSI-shaped data does), otherwise memory-mapped and
standardised batch by batch. `--in-memory-mib 0` measures the memory-mapped path, the one
full-size MOSEI (5.8 GB of training features) takes. The last column says which was measured.

Usage: python bench/bench_throughput.py [--shape mosi|mosei] [--scale 1.0] [--methods tfn lmf]
       [--epochs 2] [--threads 0] [--batch-size N] [--device cpu] [--amp] [--prefetch 2]
       [--in-memory-mib N] [--eval-batch-size 256] [--compile-mode none] [--set KEY=VALUE ...]
Prints one Markdown row per method. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES = {
    "mosi": {"n_train": 1284, "dims": {"text": 768, "audio": 5, "vision": 20}},
    "mosei": {"n_train": 16326, "dims": {"text": 768, "audio": 74, "vision": 35}},
}
LENGTHS = {"text": 50, "audio": 500, "vision": 375}


def make_store(directory: Path, shape: str, scale: float) -> None:
    from harness.data.synthetic import SyntheticConfig, write_synthetic_store

    dims = SHAPES[shape]["dims"]
    config = SyntheticConfig(
        seed=0,
        n_train=max(64, round(SHAPES[shape]["n_train"] * scale)),
        n_valid=64,
        n_test=64,
        max_lengths=dict(LENGTHS),
        feature_dims=dict(dims),
        noise_dims={name: min(4, dim - 1) for name, dim in dims.items()},
    )
    write_synthetic_store(directory, config)


def measure(store: Path, method: str, args: argparse.Namespace) -> dict:
    """In this (fresh) process: time one method; returns the row's numbers."""

    import torch

    from harness.data.loading import iterate_batches, load_dataset
    from harness.training import loop as training
    from harness.training.allocator import reuse_freed_memory
    from harness.training.compilation import compile_forward
    from harness.training.loop import LoopConfig, RunContext, build_model, predict, resolve_device
    from harness.training.optimisers import training_steps
    from methods import METHODS

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as training.fit does
    spec, splits = load_dataset(store, splits=("train",))
    train = splits["train"]
    cls = METHODS.get(method)
    fixed = {"batch_size": args.batch_size} if args.batch_size else {}
    fixed.update(overrides(args.set))
    hparams = cls.resolve_hparams(spec.kind, fixed)
    device = resolve_device(args.device)
    model = build_model(cls, hparams, spec, seed=0).to(device)
    steps = training_steps(model)  # the method's own passes, then the main one
    config = LoopConfig(
        max_epochs=1,
        patience=1,
        progress=False,
        device=str(device),
        amp=args.amp,
        prefetch=args.prefetch,
        eval_batch_size=args.eval_batch_size,
        compile_mode=args.compile_mode,
    )
    compile_forward(model, config.compile_mode)  # as training.fit does
    waited = _time_waits_for_batches()
    context = RunContext("bench", method, 0)
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp and device.type == "cuda")
    shuffle = torch.Generator().manual_seed(0)
    epochs, waits = [], []
    for epoch in range(args.epochs + 1):  # the first is a warm-up
        waited.clear()
        started = time.perf_counter()
        model.start_epoch(epoch + 1)
        for one in steps:
            training._train_epoch(
                model, one, train, shuffle, device, config, context, epoch, scaler
            )
        if device.type == "cuda":
            torch.cuda.synchronize()
        epochs.append(time.perf_counter() - started)
        waits.append(sum(waited) / epochs[-1])
    compile_s = epochs[0] - statistics.median(epochs[1:]) if args.compile_mode != "none" else 0.0
    train_s = statistics.median(epochs[1:])
    started = time.perf_counter()
    for batch in iterate_batches(train, hparams.batch_size, True, shuffle):
        batch.to(device)
    loading_s = time.perf_counter() - started
    predict(model, train, config.eval_batch_size, device)  # warm-up (and its compilation)
    started = time.perf_counter()
    predict(model, train, config.eval_batch_size, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    eval_s = time.perf_counter() - started
    peak = _status_mib("VmHWM")  # this process's own peak (ru_maxrss would include the
    # parent's resident memory at fork: the parent builds the store, 1.5 GB for MOSI)
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else math.nan
    anon = _status_mib("RssAnon")
    return {
        "method": method,
        "batch": hparams.batch_size,
        "n": len(train),
        "train_sps": len(train) / train_s,
        "eval_sps": len(train) / eval_s,
        "loading_share": loading_s / train_s,
        "wait_share": statistics.median(waits[1:]),
        "peak_rss_mib": peak,
        "gpu_peak_mib": gpu_peak,
        "rss_anon_mib": anon,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "features": "mapped" if train.scale is not None else "in memory",
        "eval_batch": config.eval_batch_size,
        "compile": args.compile_mode,
        "compile_s": compile_s,
    }


def overrides(settings: list[str]) -> dict:
    """`--set key=value` hyperparameter overrides (values parsed as YAML: 0.0, true, [1, 2])."""
    import yaml

    parsed = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set: expected key=value, got {setting!r}")
        parsed[key] = yaml.safe_load(value)
    return parsed


def _time_waits_for_batches() -> list[float]:
    """Wrap the training loop's batch source so that each wait for the next batch is timed;
    returns the list the waits (s) are appended to."""
    from harness.training import loop as training

    waits: list[float] = []
    real = training.prefetch

    def timed(batches, device, depth):
        source = real(batches, device, depth)
        while True:
            started = time.perf_counter()
            try:
                batch = next(source)
            except StopIteration:
                return
            waits.append(time.perf_counter() - started)
            yield batch

    training.prefetch = timed
    return waits


def _compiled(row: dict) -> str:
    """The compile column: the mode, and the seconds compiling took (the warm-up's excess)."""
    if row["compile"] == "none":
        return "none"
    return f"{row['compile']} ({row['compile_s']:.0f})"


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmHWM: peak resident; RssAnon: heap now), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mosi")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--methods", nargs="*", default=["tfn", "lmf"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--amp", action="store_true", help="CUDA mixed precision (LoopConfig.amp)")
    parser.add_argument("--prefetch", type=int, default=2, help="batches prepared ahead (0: none)")
    parser.add_argument(
        "--eval-batch-size", type=int, default=256, help="evaluation batch (params eval_batch_size)"
    )
    parser.add_argument(
        "--compile-mode",
        default="none",
        choices=["none", "default", "reduce-overhead", "max-autotune"],
        help="torch.compile of the forward (params compile_mode); its compile time is the "
        "warm-up epoch's excess, reported apart",
    )
    parser.add_argument(
        "--in-memory-mib",
        type=int,
        help="standardise splits up to this size into memory ($MSABENCH_IN_MEMORY_MIB; 0 = keep "
        "them memory-mapped, as full-size MOSEI is; default: the harness's 1024)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter override for every method measured (repeatable)",
    )
    parser.add_argument("--store", type=Path, help="(internal) the store to measure")
    parser.add_argument("--one", help="(internal) measure this method in this process")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.store, args.one, args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        started = time.perf_counter()
        make_store(store, args.shape, args.scale)
        print(f"# {args.shape}-shaped store built in {time.perf_counter() - started:.0f} s")
        print(
            "| method | batch | train samples/s | eval samples/s | loading share of a step "
            "| waiting for batches, share of a step "
            "| peak RSS (MiB) | anon RSS at end (MiB) | peak GPU memory (MiB) | parameters "
            "| threads | device | features | eval batch | compile (s to compile) |"
        )
        print("|---" * 15 + "|")
        env = dict(os.environ)
        if args.in_memory_mib is not None:
            env["MSABENCH_IN_MEMORY_MIB"] = str(args.in_memory_mib)
        for method in args.methods:
            command = [sys.executable, __file__, "--store", str(store), "--one", method]
            for flag in ("shape", "scale", "epochs", "threads", "batch_size", "device", "prefetch",
                         "eval_batch_size", "compile_mode"):  # fmt: skip
                command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            command += ["--amp"] if args.amp else []
            command += [f"--set={setting}" for setting in args.set]
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"| {method} | failed (exit {done.returncode}): {last} |", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"| {row['method']} | {row['batch']} | {row['train_sps']:.0f} | "
                f"{row['eval_sps']:.0f} | {row['loading_share'] * 100:.1f}% | "
                f"{row['wait_share'] * 100:.1f}% | "
                f"{row['peak_rss_mib']:.0f} | {row['rss_anon_mib']:.0f} | "
                f"{row['gpu_peak_mib']:.0f} | {row['parameters'] / 1e3:.0f}k | "
                f"{row['threads']} | {row['device']}{' amp' if args.amp else ''} | "
                f"{row['features']} | {row['eval_batch']} | "
                f"{_compiled(row)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
