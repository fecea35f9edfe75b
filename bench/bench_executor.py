"""Benchmark: what the cluster executor costs over the local path, per stage command.

Times `msabench train DATASET METHOD` (and, with --tune, `msabench tune`) as whole processes in two
identical small projects: one with `executor.kind: local` (today's path), one with
`executor.kind: slurm` through submitit's local executor (`executor.cluster: local`: the job is
a process on this machine, so the difference is the executor itself: pickling the call,
starting the job's interpreter, imports, polling). The two commands alternate (local, executor,
local, ...) so that a drift of the machine's speed hits both; the table gives each command's
median wall time and the median of the per-pair ratios. On a real SLURM cluster add the
queue's scheduling delay, which this machine cannot measure.

Usage: python bench/bench_executor.py [--method lf_dnn] [--pairs 5] [--epochs 4] [--tune]
Prints a Markdown table. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "seed": 3, "n_train": 64, "n_valid": 24, "n_test": 24,
    "max_lengths": {"text": 8, "audio": 12, "vision": 10},
    "feature_dims": {"text": 10, "audio": 6, "vision": 8},
    "noise_dims": {"text": 2, "audio": 2, "vision": 2},
}  # fmt: skip


def project(root: Path, method: str, epochs: int, executor: dict | None) -> Path:
    """A small project at `root`: synth at test size, 3 seeds, one worker, one thread."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"] = {"synth": {**raw["datasets"]["synth"], "synthetic": TINY}}
    raw["benchmark"]["methods"] = [method]
    raw["probe"] = {"datasets": [], "methods": []}
    raw["paper"]["datasets"] = {}
    raw["seeds"] = [1, 2, 3]
    raw["tune"].update(n_trials=3, max_epochs=epochs, patience=epochs)
    raw["train"].update(max_epochs=epochs, patience=epochs, workers=1)
    raw["num_threads"] = 1
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    if executor:
        raw["executor"] = executor
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    msabench(root, "fetch", "synth")
    msabench(root, "tune", "synth", method)
    return root


def msabench(root: Path, *args: str) -> float:
    """Run `msabench ARGS` in `root`; its wall time in seconds. A tune command starts from an
    empty study each time (a finished study would resume with nothing to do)."""
    if args[0] == "tune":
        shutil.rmtree(root / "results" / "studies", ignore_errors=True)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "-q", *args], cwd=root, env=env,
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="lf_dnn")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--tune", action="store_true", help="also time the tune command")
    args = parser.parse_args()
    executor = {"kind": "slurm", "cluster": "local", "poll_s": 0.5}
    commands = [("train", "synth", args.method)]
    if args.tune:
        commands.append(("tune", "synth", args.method))
    with tempfile.TemporaryDirectory(prefix="msabench-executor-") as tmp:
        local = project(Path(tmp) / "local", args.method, args.epochs, None)
        jobs = project(Path(tmp) / "jobs", args.method, args.epochs, executor)
        print(f"| command | local s (median) | executor s (median) | ratio (median of {args.pairs} "
              "pairs) | overhead s |")  # fmt: skip
        print("|---|---|---|---|---|")
        for command in commands:
            msabench(local, *command), msabench(jobs, *command)  # warm-up
            pairs = [(msabench(local, *command), msabench(jobs, *command))
                     for _ in range(args.pairs)]  # fmt: skip
            a = statistics.median(p[0] for p in pairs)
            b = statistics.median(p[1] for p in pairs)
            ratio = statistics.median(p[1] / p[0] for p in pairs)
            print(f"| `msabench {' '.join(command)}` | {a:.2f} | {b:.2f} | {ratio:.2f} | "
                  f"{b - a:+.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
