"""One seed of one method trained by msabench on the parity store, with the hyperparameters
MMSA's config gives the method (msabench's defaults for the `mosi` kind, checked against
methods/reference/mmsa_defaults.csv) and MMSA's treatment of the features: the store is not
standardised (`standardize: false`), and LF-DNN, TFN and LMF read the padded lengths
(`feature_steps: padded`). Early stopping as MMSA's: its early_stop (8; ALMT 32, TFR-Net 6) as
the patience on the validation loss (the harness's `mae`: the L1 loss these methods train with;
MISA's MMSA criterion is MSE), best weights kept; the same epoch cap as the MMSA side.

With `--treatment msabench` the run uses msabench's own defaults instead (a standardised store,
real steps, MISA's own audio/vision lengths), to measure what MMSA's treatment costs.

Writes the JSON that bench/parity/mmsa_run.py writes, with "side" ("msabench", or
"msabench-own" for msabench's treatment) and "msabench_metrics" (the harness's test metrics).

Usage: python -m bench.parity.msabench_run --store DIR --method tfn --seed 1111 --out F.json
       [--max-epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# MMSA's treatment of the pooled features, per method (the other methods have no such switch)
# (CENET and ALMT attend to the padded steps, TETFN reads padding under MulT's future mask)
MMSA_TREATMENT = {"lf_dnn": {"feature_steps": "padded"}, "tfn": {"feature_steps": "padded"},
                  "lmf": {"feature_steps": "padded"}, "cenet": {"nonverbal_padding": "attend"},
                  "tetfn": {"attention_masking": "future"}, "almt": {"mask_padding": False}}  # fmt: skip
# msabench's own treatment, where its default is MMSA's (the rest are msabench's defaults)
OWN_TREATMENT = {"misa": {"av_lengths": "own"}}
# config_regression.json: early_stop (commonParams), 8 for every method but these
MMSA_PATIENCE = {"almt": 32, "tfr_net": 6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--treatment", choices=["mmsa", "msabench"], default="mmsa")
    args = parser.parse_args()

    from harness.data.loading import read_split_arrays
    from harness.data.store import read_manifest
    from harness.io_utils import write_json_atomic
    from harness.training.loop import LoopConfig
    from harness.training.seed_runs import SeedTask, run_seed
    from methods import load_method

    started = time.perf_counter()
    manifest = read_manifest(args.store)
    own = args.treatment == "msabench"
    if manifest.standardize != own:
        raise SystemExit(
            f"{args.store}: standardize is {manifest.standardize}; the {args.treatment} "
            f"treatment needs {own}"
        )
    overrides = (OWN_TREATMENT if own else MMSA_TREATMENT).get(args.method, {})
    hparams = load_method(args.method).resolve_hparams(
        "mosi", overrides, where=f"parity.{args.method}"
    )
    loop = LoopConfig(
        max_epochs=args.max_epochs,
        patience=MMSA_PATIENCE.get(args.method, 8),
        select_metric="mae",
        device="cpu",
        num_threads=args.threads,
        progress=False,
    )
    task = SeedTask(args.method, hparams, args.store, "parity", loop, args.seed)
    outcome = run_seed(task)
    test = read_split_arrays(args.store, "test", manifest)
    write_json_atomic(
        args.out,
        {
            "side": "msabench-own" if own else "msabench",
            "model": args.method,
            "seed": args.seed,
            "ids": [str(i) for i in test.ids],
            "predictions": [float(v) for v in outcome.predictions],
            "labels": [float(v) for v in test.labels],
            "msabench_metrics": outcome.test_metrics,
            "epochs": outcome.epochs_run,
            "max_epochs": args.max_epochs,
            "best_epoch": outcome.best_epoch,
            "seconds": time.perf_counter() - started,
        },
    )


if __name__ == "__main__":
    main()
