"""Reference benchmark: training samples/s of the MMSA framework's own TFN, LMF and MulT (pip package
`mmsa==2.2.1`, thuiar/MMSA), for a paired comparison with `bench/bench_throughput.py` on the same
CPU at the same time.

Everything measured is MMSA's code, unmodified: the config (`MMSA.config.get_config_regression`,
i.e. its bundled `config/config_regression.json`, model on mosi, unaligned features), the data
pipeline (`MMSA.data_loader.MMDataLoader` over an unaligned MMSA-format pickle, passed as
`custom_feature`), the models (`MMSA.models.AMIO`) and the training step (`MMSA.trains.ATIO`, i.e.
`MMSA.trains.singleTask.TFN` / `.LMF`, `do_train`). The script only builds the same `args` that
`MMSA.run.MMSA_run` builds (train_mode regression, device, model_save_path, feature overrides
None), seeds with `setup_seed(1111)` (MMSA's first default seed) and wraps the training
DataLoader so that each pass over it is timed.

MMSA's settings (config_regression.json, mosi, unaligned; need_data_aligned false, need_normalized
true, model not aligned):
- TFN: batch 32, hidden_dims (text, audio, vision) (128, 32, 128), text_out 32, post_fusion_dim 64,
  dropouts (audio, vision, text, post-fusion) (0.3, 0.3, 0.3, 0.5), Adam lr 1e-3 without weight
  decay over all parameters but the two constant output-range ones, L1 loss;
- LMF: batch 64, hidden_dims (128, 16, 128), rank 3, dropouts (0.3, 0.3, 0.3, 0.3), Adam with
  factor_lr 1e-3 for the three modality factors and learning_rate 1e-3 for the sub-networks,
  weight_decay 5e-3, L1 loss. (MMSA's optimizer takes parameters [:3] and [5:], so LMF's
  fusion_weights and fusion_bias get gradients but are never updated: MMSA's behaviour, kept.)
- MulT: batch 16, model width 50 with 10 heads, 4 levels, as MMSA's mosi config has it (attention dropout
  0.3 text and memories, 0.2 audio, 0 vision; `attn_mask` true), unaligned 500/375-step
  sequences (not averaged: no `need_normalized`); its trainer passes `verbose` to
  `ReduceLROnPlateau`, which torch 2.13 no longer takes, so `measure` drops that logging flag.
- data: `need_normalized` makes MMDataset average audio and vision over time once, when the
  dataset is built (audio (N, 500, 5) -> (N, 1, 5), vision (N, 375, 20) -> (N, 1, 20)); text stays
  (N, 50, 768) and goes through an LSTM. Batches come from a torch DataLoader with shuffle=True and
  `num_workers` workers, not persistent (respawned every epoch). MMSA's Python entry point
  `MMSA_run` defaults to num_workers=4 (its command line, `python -m MMSA`, to 8; the config json
  has no such setting): `--num-workers` defaults to 4.

What is timed: `trainer.do_train(model, dataloader)` runs unchanged; the training DataLoader is
wrapped so that each epoch's pass over it is timed from the first batch request (DataLoader
worker start-up included) to the end of the loop body of the last batch. So an epoch's time is
MMSA's training loop itself: loading and collating batches, tqdm, forward, L1 loss, backward,
Adam step, `loss.item()` and `outputs.cpu()` / `labels.cpu()` per batch. What do_train does
between epochs (epoch metrics, validation, saving the best model) is not timed. As in
bench_throughput.py: one warm-up epoch, then the median of `--epochs` epochs; samples/s = training
samples / median epoch seconds; `torch.set_num_threads(--threads)` (0 = torch's default); one
fresh process per model. After the last timed epoch the wrapper stops do_train by raising an
exception; `early_stop` is raised to at least `--epochs` + 2 so that MMSA's early stopping cannot
end the run first (it only decides when to stop, not what an epoch does).

Data: a MOSI-shaped synthetic pickle in MMSA's unaligned layout ({'train', 'valid', 'test'} ->
'text' (N, 50, 768), 'audio' (N, 500, 5), 'vision' (N, 375, 20), float32 normal; 'audio_lengths',
'vision_lengths' (full lengths); 'regression_labels' uniform in [-3, 3];
'classification_labels'; 'id'; 'raw_text'), seed 0. Train has max(64, round(1284 * --scale))
samples (as bench_throughput.py), valid and test 64. 'text_bert' is left out: MMSA reads it only
when `use_bert` is set, which TFN and LMF do not.

Environment: MMSA is not a dependency of this project, so it lives in its own virtual environment
outside the repository, with the project's torch pin (which resolves to the local CPU wheel;
plain `import MMSA` works there, no stubs):

    python3.11 -m venv /work/mmsa-venv
    /work/mmsa-venv/bin/pip install torch==2.13.0 mmsa==2.2.1

(that resolved, on 2026-11-23: torch 2.13.0+cpu, transformers 5.23.0, numpy 2.4.6, pandas 3.1.1,
scikit-learn 1.9.1, tqdm 4.70.1, easydict 1.14, nvidia-ml-py3 7.352.0).

Usage: /work/mmsa-venv/bin/python bench/bench_mmsa_reference.py [--scale 1.0] [--epochs 3]
       [--threads 2] [--models tfn lmf mult] [--num-workers 4]
Prints one Markdown row per model. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_TRAIN = 1284  # MOSI
SHAPES = {"text": (50, 768), "audio": (500, 5), "vision": (375, 20)}


def make_pickle(path: Path, scale: float, seed: int = 0) -> int:
    """Write a MOSI-shaped synthetic pickle in MMSA's unaligned layout; returns n_train."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_train = max(64, round(N_TRAIN * scale))
    data = {}
    for split, n in (("train", n_train), ("valid", 64), ("test", 64)):
        part = {
            name: rng.standard_normal((n, *shape), dtype=np.float32)
            for name, shape in SHAPES.items()
        }
        labels = rng.uniform(-3.0, 3.0, size=(n, 1)).astype(np.float32)
        part["regression_labels"] = labels
        part["classification_labels"] = np.digitize(labels[:, 0], [-1e-9, 1e-9]).astype(np.int64)
        part["audio_lengths"] = np.full(n, SHAPES["audio"][0], dtype=np.int64)
        part["vision_lengths"] = np.full(n, SHAPES["vision"][0], dtype=np.int64)
        part["id"] = np.array([f"synthetic_{split}_{i:05d}" for i in range(n)], dtype=object)
        part["raw_text"] = np.array(["" for _ in range(n)], dtype=object)
        data[split] = part
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=4)
    return n_train


class _Done(Exception):
    """Raised from the timed loader to leave MMSA's do_train after the last timed epoch."""


class _TimedLoader:
    """Wraps MMSA's training DataLoader: times each full pass; stops after `passes` passes."""

    def __init__(self, loader, passes: int) -> None:
        self.loader = loader
        self.passes = passes
        self.seconds: list[float] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        started = time.perf_counter()
        yield from self.loader
        self.seconds.append(time.perf_counter() - started)
        if len(self.seconds) >= self.passes:
            raise _Done


def measure(feature: Path, model_name: str, args: argparse.Namespace) -> dict:
    """In this (fresh) process: time MMSA's training loop for one model."""
    import torch
    import torch.optim.lr_scheduler as schedulers

    class _ReduceLROnPlateau(schedulers.ReduceLROnPlateau):
        """torch 2.13's scheduler no longer takes `verbose` (a logging flag), which MMSA's MulT
        trainer passes; dropped here, nothing else changes (as bench/parity/mmsa_run.py)."""

        def __init__(self, *args, verbose=None, **kwargs) -> None:
            super().__init__(*args, **kwargs)

    schedulers.ReduceLROnPlateau = _ReduceLROnPlateau
    from MMSA.config import get_config_regression
    from MMSA.data_loader import MMDataLoader
    from MMSA.models import AMIO
    from MMSA.trains import ATIO
    from MMSA.utils import setup_seed

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    config = get_config_regression(model_name, "mosi")  # MMSA's bundled config_regression.json
    with tempfile.TemporaryDirectory() as tmp:
        # the keys MMSA_run sets before _run
        config["model_save_path"] = Path(tmp) / f"{model_name}-mosi.pth"
        config["device"] = torch.device(args.device)
        config["train_mode"] = "regression"
        config["custom_feature"] = str(feature)
        config["feature_T"] = config["feature_A"] = config["feature_V"] = None
        config["cur_seed"] = 1
        config["early_stop"] = max(config["early_stop"], args.epochs + 2)
        setup_seed(1111)
        # MMSA.run._run, up to do_train
        dataloader = MMDataLoader(config, args.num_workers)
        model = AMIO(config).to(config["device"])
        trainer = ATIO().getTrain(config)
        timed = _TimedLoader(dataloader["train"], args.epochs + 1)  # the first is a warm-up
        dataloader["train"] = timed
        try:
            trainer.do_train(model, dataloader)
        except _Done:
            pass
        else:
            raise RuntimeError(f"do_train stopped after {len(timed.seconds)} epochs")
    n = len(timed.loader.dataset)
    epoch_s = statistics.median(timed.seconds[1:])
    return {
        "model": model_name,
        "batch": config["batch_size"],
        "n": n,
        "train_sps": n / epoch_s,
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "num_workers": args.num_workers,
        "audio_batch_shape": list(timed.loader.dataset.audio.shape[1:]),
        "vision_batch_shape": list(timed.loader.dataset.vision.shape[1:]),
        "epoch_seconds": timed.seconds,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--models", nargs="*", default=["tfn", "lmf"], choices=["tfn", "lmf", "mult"]
    )
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--num-workers", type=int, default=4, help="MMSA_run's default: 4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--feature", type=Path, help="(internal) the pickle to read")
    parser.add_argument("--one", help="(internal) measure this model in this process")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.one:
        print(json.dumps(measure(args.feature, args.one, args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        feature = Path(tmp) / "unaligned_50.pkl"
        started = time.perf_counter()
        n_train = make_pickle(feature, args.scale)
        print(
            f"# MOSI-shaped MMSA pickle ({n_train} train samples) built in "
            f"{time.perf_counter() - started:.0f} s; MMSA DataLoader num_workers={args.num_workers}"
        )
        print("| model | batch | train samples/s | epochs | threads |")
        print("|---|---|---|---|---|")
        for model_name in args.models:
            command = [sys.executable, __file__, "--feature", str(feature), "--one", model_name]
            for flag in ("scale", "epochs", "threads", "num_workers", "device"):
                command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"| {model_name} | failed (exit {done.returncode}): {last} |", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"| {row['model']} (MMSA 2.2.1) | {row['batch']} | {row['train_sps']:.0f} | "
                f"{row['epochs']} | {row['threads']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
