"""Benchmark: seconds per training epoch of every method on the token-level MOSI (`mosi_tokens`:
1,231 training utterances, up to 50 MiniLM tokens), by how the method reads text: the stored
frozen token states (`features`), the pretrained MiniLM run frozen at train time (`frozen`), or
fine-tuned (`fine-tuned`, the default of MISA, MMIM and Self-MM there).

Each (method, text mode) trains one epoch and evaluates the validation split in a fresh process
(the harness's own loop, `harness.training.loop.fit`, with params.yaml's fixed hyperparameters
and the method's batch size); the epoch timed is the first, as every run pays it. Needs `msabench fetch mosi_tokens` first (features/mosi_tokens).

Usage: python bench/bench_text_encoder.py [--methods misa mmim ...] [--modes features frozen
       fine-tuned] [--threads 2]
Prints a Markdown table. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
MODES = {
    "features": {"text_encoder": "features"},
    "frozen": {"text_encoder": "pretrained", "text_finetune": False},
    "fine-tuned": {"text_encoder": "pretrained", "text_finetune": True},
}
CHILD = r"""
import json, sys, time, torch
from harness.config import load_params
from harness.data.loading import load_dataset
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods import load_method
method, overrides, threads = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
params = load_params("params.yaml")
spec, splits = load_dataset("features/mosi_tokens", splits=("train", "valid"))
cls = load_method(method)
hparams = cls.resolve_hparams(spec.kind, params.method(method).hparams, overrides)
model = build_model(cls, hparams, spec, seed=1111)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
loop = LoopConfig(max_epochs=1, patience=1, device="cpu", progress=False)
started = time.perf_counter()
outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("mosi_tokens", method, 1111), 1111)
print(json.dumps({"seconds": time.perf_counter() - started, "trainable": trainable,
                  "batch_size": hparams.batch_size, "mode": model.text_mode,
                  "valid_mae": outcome.best_valid["mae"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not Path("features/mosi_tokens/manifest.json").is_file():
        sys.exit("features/mosi_tokens: not found; run `msabench fetch mosi_tokens` first")
    from methods import METHODS

    methods = args.methods or METHODS.names()
    print(
        "| method | text | batch | trainable parameters | s / epoch (train + valid) | valid MAE |"
    )
    print("|---|---|---|---|---|---|")
    for method in methods:
        for mode in args.modes:
            result = subprocess.run(
                [sys.executable, "-c", CHILD, method, json.dumps(MODES[mode]), str(args.threads)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                tail = result.stderr.strip().splitlines()[-1:]
                print(f"| {method} | {mode} | failed: {' '.join(tail)} | | | |")
                continue
            row = json.loads(result.stdout.strip().splitlines()[-1])
            print(
                f"| {method} | {mode} | {row['batch_size']} | {row['trainable']:,} | "
                f"{row['seconds']:.1f} | {row['valid_mae']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
