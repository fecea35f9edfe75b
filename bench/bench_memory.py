"""Benchmark: peak memory converting a MOSEI-shaped MMSA pickle to the feature store, and reading
the store for training (memory-mapped).

MOSEI unaligned_50.pkl shapes: text (N, 50, 768), audio (N, 500, 74), vision (N, 375, 35), splits
16326 / 1871 / 4659 (about 8.1 GB of float32). `--scale` shrinks the sample counts (default 0.25,
about 2 GB, to fit this machine's time budget); the ratios below do not depend on it.

Each phase runs in a fresh subprocess; reported: the arrays' size and the process's peak anonymous
memory (RssAnon, sampled every 5 ms) above its value after imports, also as a multiple of the
arrays' size. Pages of the memory-mapped store are page cache (file-backed), not copies, and are
reported separately as the peak total RSS (VmHWM).
Usage: python bench/bench_memory.py [--scale 0.25] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MOSEI = {"train": 16326, "valid": 1871, "test": 4659}
SHAPES = {"text": (50, 768), "audio": (500, 74), "vision": (375, 35)}


def make_pickle(path: Path, scale: float) -> int:
    """Write a MOSEI-shaped MMSA pickle (random float32 features); return the arrays' bytes."""
    rng = np.random.default_rng(0)
    data, total = {}, 0
    for split, count in MOSEI.items():
        n = max(2, int(count * scale))
        part = {
            "id": [f"{split}{i}$_$0" for i in range(n)],
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        }
        for m, (length, dim) in SHAPES.items():
            part[m] = rng.standard_normal((n, length, dim), dtype=np.float32)
            total += part[m].nbytes
        part["audio_lengths"] = np.full(n, SHAPES["audio"][0])
        part["vision_lengths"] = np.full(n, SHAPES["vision"][0])
        data[split] = part
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=4)
    return total


CHILD = r"""
import json, sys, time
from pathlib import Path

import threading

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024

peak_anon = [0]
def sample():  # anonymous (heap) memory; mapped file pages are page cache, not copies
    while True:
        peak_anon[0] = max(peak_anon[0], status("RssAnon"))
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()

import torch  # noqa: F401  (imports count in the baseline)
from harness.config import DatasetConfig
from harness.data.loading import iterate_batches, load_dataset
from harness.data.sources import fetch_dataset
phase, pickle_path, store = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
baseline = status("RssAnon")
started = time.perf_counter()
if phase == "convert":
    config = DatasetConfig("mosei_bench", "file", "mosi", {"format": "mmsa", "path": str(pickle_path)})
    fetch_dataset(config, store)
else:
    spec, splits = load_dataset(store)
    for batch in iterate_batches(splits["train"], 64, shuffle=True, generator=torch.Generator().manual_seed(0)):
        pass
time.sleep(0.05)
print(json.dumps({"baseline": baseline, "peak": peak_anon[0], "hwm": status("VmHWM"), "seconds": time.perf_counter() - started}))
"""


def run_phase(phase: str, pickle_path: Path, store: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, phase, str(pickle_path), str(store)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        pickle_path, store = Path(tmp) / "unaligned_50.pkl", Path(tmp) / "store"
        started = time.perf_counter()
        array_bytes = make_pickle(pickle_path, args.scale)
        print(
            f"MOSEI-shaped pickle at scale {args.scale}: arrays {array_bytes / 2**30:.2f} GiB, "
            f"file {pickle_path.stat().st_size / 2**30:.2f} GiB ({time.perf_counter() - started:.0f} s)"
        )
        for phase in ("convert", "train-read"):
            stats = run_phase(phase, pickle_path, store)
            working = stats["peak"] - stats["baseline"]
            print(
                f"{phase:<10} peak anonymous memory above baseline {working / 2**30:.2f} GiB = "
                f"{working / array_bytes:.2f} x arrays; peak RSS incl. mapped pages "
                f"{stats['hwm'] / 2**30:.2f} GiB ({stats['seconds']:.0f} s)"
            )


if __name__ == "__main__":
    main()
