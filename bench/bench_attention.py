"""Benchmark (issue 23, part 4): MulT's training samples/s and peak memory at MOSI's full
lengths (text 50, audio 500, vision 375) and MMSA's batch 16, beside MMSA's own MulT, in
alternating rounds on the same CPU.

Each round runs, one fresh process each:
- `msabench` MulT at its MMSA defaults (`bench_throughput.py --one mult`): attention dropout
  0.3 (text and memories) and 0.2 (audio), so training attention takes SDPA's math path on CPU
  (torch has no fused CPU kernel with dropout);
- `msabench` MulT with the attention dropouts at 0 (`--set attn_dropout_text=0 ...`): every
  attention through the fused CPU flash kernel (not MMSA's setting; what the kernel buys);
- MMSA 2.2.1's MulT (`bench_mmsa_reference.py --one mult`, its own virtual environment, its
  config, data loader with `--num-workers` workers and training step).
Samples/s: training samples / the median timed epoch (after one warm-up epoch); peak memory:
each process's VmHWM (the store or pickle is built by this parent, not counted). The ratios are
taken round by round (ours / MMSA's), so a drift in the machine's speed cancels.

Usage: python bench/bench_attention.py [--rounds 2] [--epochs 1] [--threads 2]
       [--mmsa-python /work/mmsa-venv/bin/python] [--num-workers 0]
Prints one Markdown row per measurement and a summary. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_mmsa_reference import make_pickle
from bench_throughput import make_store

HERE = Path(__file__).resolve().parent
NO_ATTENTION_DROPOUT = ["attn_dropout_text=0", "attn_dropout_audio=0", "attn_dropout_vision=0"]


def run_json(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"{command[1]} failed (exit {done.returncode}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs after one warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=float, default=0.05, help="of MOSI's 1,284 (min 64)")
    parser.add_argument("--mmsa-python", default="/work/mmsa-venv/bin/python")
    parser.add_argument("--num-workers", type=int, default=0, help="MMSA's DataLoader workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, pickle_path = Path(tmp) / "store", Path(tmp) / "unaligned_50.pkl"
        make_store(store, "mosi", args.scale)
        make_pickle(pickle_path, args.scale)
        common = ["--epochs", str(args.epochs), "--threads", str(args.threads)]
        ours = [sys.executable, str(HERE / "bench_throughput.py"), "--store", str(store)]
        ours += ["--one", "mult", "--scale", str(args.scale), *common]
        variants = {
            "msabench MulT, MMSA's attention dropout": ours,
            "msabench MulT, attention dropout 0": ours
            + [f"--set={setting}" for setting in NO_ATTENTION_DROPOUT],
            "MMSA 2.2.1 MulT": [
                args.mmsa_python,
                str(HERE / "bench_mmsa_reference.py"),
                "--feature",
                str(pickle_path),
                "--one",
                "mult",
                "--num-workers",
                str(args.num_workers),
                *common,
            ],
        }
        print("| round | what | batch | samples | train samples/s | peak RSS (MiB) |")
        print("|---|---|---|---|---|---|")
        rows: dict[str, list[dict]] = {name: [] for name in variants}
        for round_index in range(1, args.rounds + 1):
            for name, command in variants.items():
                row = run_json(command)
                rows[name].append(row)
                print(
                    f"| {round_index} | {name} | {row['batch']} | {row['n']} | "
                    f"{row['train_sps']:.2f} | {row['peak_rss_mib']:.0f} |",
                    flush=True,
                )
        reference = rows["MMSA 2.2.1 MulT"]
        print()
        print("| what | median samples/s | x MMSA (per round) | median peak RSS (MiB) |")
        print("|---|---|---|---|")
        for name, measured in rows.items():
            ratios = [
                a["train_sps"] / b["train_sps"] for a, b in zip(measured, reference, strict=True)
            ]
            print(
                f"| {name} | {statistics.median(r['train_sps'] for r in measured):.2f} | "
                f"{', '.join(f'{r:.2f}' for r in ratios)} | "
                f"{statistics.median(r['peak_rss_mib'] for r in measured):.0f} |"
            )


if __name__ == "__main__":
    main()
