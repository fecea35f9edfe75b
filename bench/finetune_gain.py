"""What fine-tuning the text encoder buys a method: the same method, tuned hyperparameters and
seeds as a finished train stage whose runs fine-tuned the dataset's text model, trained again
on frozen text (`--baseline features`: the method's feature path over the stored frozen token
states, `text_encoder: features`, as msabench ran these methods before it fine-tuned; `frozen`:
the same pooling and layers over the model run frozen, `text_finetune: false`), then paired tests of fine-tuned against frozen on every headline metric: the paired t-test over seeds
and the paired bootstrap over test samples (the comparison tables' own functions), Holm-adjusted
across the table's comparisons.

Reads `results/tuning/<dataset>/<method>/best_params.json`, `results/runs/<dataset>/<method>/`
(records and test predictions) and params.yaml (fixed hparams, seeds, train budget) of the
project in the current directory; trains in worker processes as the train stage does
(`train.workers`). Nothing it trains is written to results/.

Usage: python bench/finetune_gain.py [--dataset mosi_tokens] [--methods misa mmim self_mm]
Prints a Markdown table. Not a test.
"""

from __future__ import annotations

import argparse
import csv
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
METRICS = ("mae", "corr", "acc2_non0", "f1_non0", "acc7")


def _fine_tuned(dataset: str, method: str, seeds: list[int]):
    """({metric: (S,)}, predictions (S, N), truths (N,)) of the train stage's runs."""
    from harness.records import RunResult

    folder = Path("results/runs") / dataset / method
    records = [RunResult.load(folder / f"seed-{s}.json") for s in seeds]
    if any(r.text_model.get("encoder") != "fine-tuned" for r in records):
        raise SystemExit(f"{folder}: these runs did not fine-tune the text model")
    predictions, truths = [], None
    for seed in seeds:
        with open(folder / f"seed-{seed}-test-predictions.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        predictions.append([float(r["prediction"]) for r in rows])
        truths = np.array([float(r["label"]) for r in rows])
    scores = {m: np.array([r.metrics[m] for r in records]) for m in METRICS}
    return scores, np.array(predictions), truths


def _frozen(dataset: str, method: str, params, baseline: str):
    """({metric: (S,)}, predictions (S, N), seconds) of the frozen-text variant over the seeds."""
    from harness import paths
    from harness.records import TuningRecord
    from harness.training.loop import LoopConfig
    from harness.training.seed_runs import SeedTask, run_seeds
    from methods import load_method

    method_cls = load_method(method)
    best = TuningRecord.load(paths.best_params_file(dataset, method))
    hparams = method_cls.resolve_hparams(
        params.dataset(dataset).kind, params.method(method).hparams, best.params
    )
    if baseline == "frozen":
        hparams = replace(hparams, text_finetune=False)
    else:
        hparams = replace(hparams, text_encoder="features")
    loop = LoopConfig.for_training(params, dataset)
    store = paths.feature_store(dataset)
    tasks = [SeedTask(method, hparams, store, dataset, loop, seed) for seed in params.seeds]
    outcomes = list(run_seeds(tasks, params.train.workers))
    scores = {m: np.array([o.test_metrics[m] for o in outcomes]) for m in METRICS}
    seconds = sum(o.wall_time_s for o in outcomes)
    return scores, np.array([o.predictions for o in outcomes]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mosi_tokens")
    parser.add_argument("--methods", nargs="*", default=["misa", "mmim", "self_mm"])
    parser.add_argument("--baseline", choices=["features", "frozen"], default="features")
    args = parser.parse_args()
    from harness.config import load_params
    from harness.metrics import metric_label
    from harness.statistics.resampling import seed_averaged_bootstrap_test
    from harness.statistics.significance import holm, paired_ttest

    params = load_params("params.yaml")
    rows, pvalues = [], []
    for method in args.methods:
        tuned, tuned_predictions, truths = _fine_tuned(args.dataset, method, list(params.seeds))
        frozen, frozen_predictions, seconds = _frozen(args.dataset, method, params, args.baseline)
        boot = seed_averaged_bootstrap_test(
            "mosi", tuned_predictions, frozen_predictions, truths, seed=params.compare.seed
        )
        for metric in METRICS:
            t_p = paired_ttest(tuned[metric], frozen[metric])
            rows.append((method, metric, tuned[metric], frozen[metric], t_p, boot[metric][1]))
            pvalues += [t_p, boot[metric][1]]
        print(f"{method}: {args.baseline} variant trained in {seconds:.0f} s", flush=True)
    adjusted = holm(np.array(pvalues))
    print(
        f"\n| method | metric | fine-tuned | {args.baseline} | difference | t-test p (Holm) | "
        "bootstrap p (Holm) |\n|---|---|---|---|---|---|---|"
    )
    for i, (method, metric, tuned, frozen, _, _) in enumerate(rows):
        print(
            f"| {method} | {metric_label(metric)} | {tuned.mean():.4f} ± {tuned.std(ddof=1):.4f} "
            f"| {frozen.mean():.4f} ± {frozen.std(ddof=1):.4f} | "
            f"{tuned.mean() - frozen.mean():+.4f} | {adjusted[2 * i]:.3g} | "
            f"{adjusted[2 * i + 1]:.3g} |"
        )


if __name__ == "__main__":
    main()
