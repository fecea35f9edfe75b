"""Parity against the reference implementation: each baseline trained by MMSA's own code
(its models, its trainers, its config; bench/parity/mmsa_run.py, in MMSA's own virtual
environment) and by msabench (bench/parity/msabench_run.py) on the same MMSA-layout pickle of
real CMU-MOSI (bench/parity/mmsa_pickle.py: the `mosi_tokens` store, i.e. the bc-LSTM
utterances and split with token-level text from the built-in MiniLM), with the same
hyperparameters (MMSA's config for mosi), the same early stopping (MMSA's early_stop) and the same
epoch cap, over the same seeds; then per metric the two means, the difference with a bootstrap
95% CI and an equivalence verdict (bench/parity/report.py).

Runs are resumable: a run whose JSON exists under `--out`/runs is not run again. Two runs at a
time by default, one torch thread each.

Which MMSA: PyPI's 2.2.1 for the seven first baselines; ALMT, CENET and TETFN exist only in MMSA's
GitHub master (thuiar/MMSA at a94e65d, still versioned 2.2.1; its TFR-Net is 2.2.1's), so the
four later baselines run there (`REFERENCE`), in a second environment.

Setup (MMSA is not a dependency of msabench):
    python3.11 -m venv /work/mmsa-venv && /work/mmsa-venv/bin/pip install torch==2.13.0 mmsa==2.2.1
    python3.11 -m venv /work/mmsa-master-venv && /work/mmsa-master-venv/bin/pip install \
        torch==2.13.0 "mmsa @ git+https://github.com/thuiar/MMSA@a94e65d" einops pytorch-transformers
    msabench fetch mosi_tokens --path ../shared/data/mosi-bclstm     (the source store)

Usage: python -m bench.parity [--methods lf_dnn tfn ...] [--seeds 1111 ...] [--max-epochs 30]
       [--jobs 2] [--report-only]
Writes `--out` (default bench/results/parity): runs/<side>/<method>/seed-<seed>.json (test
predictions, epochs, seconds), report.md (the table). The pickle and the parity store go to
`--work` (default .parity-work/, ignored by git: the pickle is ~200 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SEEDS = (1111, 1112, 1113, 1114, 1115)  # MMSA's seeds
# cheapest first; the later four last
METHODS = ("lf_dnn", "tfn", "lmf", "mult", "self_mm", "misa", "mmim",
           "cenet", "almt", "tetfn", "tfr_net")  # fmt: skip
NAMES = {"lf_dnn": "LF-DNN", "tfn": "TFN", "lmf": "LMF", "mult": "MulT", "misa": "MISA",
         "mmim": "MMIM", "self_mm": "Self-MM", "almt": "ALMT", "cenet": "CENET",
         "tetfn": "TETFN", "tfr_net": "TFR-Net"}  # fmt: skip
# the MMSA each method runs in: "pypi" (mmsa 2.2.1, `--mmsa-python`) or "master" (GitHub master,
# `--mmsa-master-python`): ALMT, CENET and TETFN are only there
MASTER_ONLY = ("almt", "cenet", "tetfn", "tfr_net")
REFERENCE = {m: "master" if m in MASTER_ONLY else "pypi" for m in METHODS}
SIDES = ("mmsa", "msabench")  # compared for parity
# msabench with its own treatment (standardised features, real steps): `--sides msabench-own`,
# compared with the msabench side to measure what MMSA's treatment changes
OWN = "msabench-own"
# audio/vision steps of the pickle each method reads (bench/parity/mmsa_pickle.py): 5 for MMSA's
# MulT kernel; MISA reads audio and vision over the text's lengths, and MMSA runs TETFN on
# aligned data (every modality at the text's length), so they need the text's 50; TFR-Net attends
# over time with the sequence length as the width, 25 heads: a multiple of 25 steps
AV_STEPS = {"misa": 50, "tetfn": 50, "tfr_net": 50}
DEFAULT_AV_STEPS = 5


def _parity_store(
    source: Path, work: Path, steps: int, standardize: bool = False
) -> tuple[Path, Path]:
    """The MMSA-layout pickle with `steps` audio/vision steps and the msabench store read from
    it, standardised or not (each built once)."""
    from bench.parity.mmsa_pickle import export_mmsa_pickle
    from harness.data.declaration import parse_dataset
    from harness.data.sources import fetch_dataset

    pickle_path = work / f"mosi_tokens_mmsa_av{steps}.pkl"
    store = work / f"store_av{steps}{'_z' if standardize else ''}"
    if not pickle_path.is_file():
        print(f"writing {pickle_path} from {source}", flush=True)
        export_mmsa_pickle(source, pickle_path, steps)
    if not (store / "manifest.json").is_file():
        section = {"source": "file", "kind": "mosi", "format": "mmsa",
                   "path": str(pickle_path.resolve()), "standardize": standardize}  # fmt: skip
        fetch_dataset(parse_dataset("parity_mosi", section, "bench.parity"), store)
    return pickle_path, store


def _command(side: str, method: str, seed: int, out: Path, args, pickle_path, store) -> list[str]:
    common = ["--seed", str(seed), "--out", str(out), "--max-epochs", str(args.max_epochs)]
    if side == "mmsa":
        from harness.text_models import resolve

        text = resolve("minilm")
        python = args.mmsa_master_python if REFERENCE[method] == "master" else args.mmsa_python
        return [python, str(Path(__file__).with_name("mmsa_run.py")),
                "--pickle", str(pickle_path), "--model", method, "--pretrained", str(text.path),
                "--text-dim", str(text.hidden_size), *common]  # fmt: skip
    treatment = "msabench" if side == OWN else "mmsa"
    return [sys.executable, "-m", "bench.parity.msabench_run", "--store", str(store),
            "--method", method, "--treatment", treatment, *common]  # fmt: skip


def _run(command: list[str], out: Path, log: Path) -> str:
    log.parent.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT).returncode
    took = time.perf_counter() - started
    status = "done" if code == 0 and out.is_file() else f"FAILED (rc {code}, log {log})"
    return f"{out.parent.parent.name}/{out.parent.name}/{out.name}: {status} in {took:.0f} s"


def _load(out: Path, side: str, method: str, seeds) -> list[dict]:
    runs = []
    for seed in seeds:
        path = out / "runs" / side / method / f"seed-{seed}.json"
        if path.is_file():
            runs.append(json.loads(path.read_text(encoding="utf-8")))
    return runs


def _report(out: Path, methods, seeds) -> str:
    from bench.parity.report import compare, counts, markdown, overall, scores

    results, cost = {}, []
    for method in methods:
        runs = {side: _load(out, side, method, seeds) for side in SIDES}
        if min(len(r) for r in runs.values()) < 2:
            continue
        ids = {side: [r["ids"] for r in rs] for side, rs in runs.items()}
        if any(i != ids["mmsa"][0] for side in SIDES for i in ids[side]):
            raise SystemExit(f"{method}: the two sides' test rows differ in order or content")
        caps = {r["max_epochs"] for side in SIDES for r in runs[side]}
        if len(caps) != 1:
            raise SystemExit(f"{method}: runs with different epoch caps {sorted(caps)}")
        results[method] = compare(scores("mosi", runs["mmsa"]), scores("mosi", runs["msabench"]))
        cost.append(
            f"| {NAMES[method]} | {overall(results[method])} ({counts(results[method])}) | "
            f"{caps.pop()} | "
            + " | ".join(
                f"{len(runs[s])} | {np.mean([r['epochs'] for r in runs[s]]):.1f} | "
                f"{np.mean([r['seconds'] for r in runs[s]]):.0f}"
                for s in SIDES
            )
            + " |"
        )
    header = (
        f"Test split of the parity pickle; seeds {', '.join(map(str, seeds))}; MMSA's early_stop "
        "(8; ALMT 32, TFR-Net 6) as the patience on the validation loss and the same epoch cap on both sides; one torch thread per run.\n\n"
    )
    summary = (
        "| method | verdict (metrics) | epoch cap | MMSA seeds | MMSA epochs | MMSA wall s/run | "
        "msabench seeds | msabench epochs | msabench wall s/run |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(cost)
    )
    text = header + summary + "\n\n" + markdown(results, NAMES) + "\n"
    effects = {}
    for method in methods:
        own, mmsa_treated = _load(out, OWN, method, seeds), _load(out, "msabench", method, seeds)
        if min(len(own), len(mmsa_treated)) >= 2:
            effects[method] = compare(scores("mosi", mmsa_treated), scores("mosi", own))
    if effects:
        text += (
            "\nWhat MMSA's treatment of the features costs: msabench with its own treatment "
            "(standardised features, real steps; `msabench-own`) against msabench with MMSA's "
            "(the msabench column above), same seeds and budget. Columns: MMSA's treatment, "
            "msabench's, difference msabench's - MMSA's.\n\n"
            + markdown(effects, NAMES).replace("| MMSA | msabench |", "| MMSA's | own |")
            + "\n"
        )
    for variant in _variant_sides(out):
        rows = {}
        for method in methods:
            mmsa, other = _load(out, "mmsa", method, seeds), _load(out, variant, method, seeds)
            if min(len(mmsa), len(other)) >= 2:
                rows[method] = compare(scores("mosi", mmsa), scores("mosi", other))
        if rows:
            text += (
                f"\nAn earlier msabench form, `{variant}` (its runs under runs/{variant}/; "
                "bench/README.md says what it is), against MMSA, same seeds and budget.\n\n"
                + markdown(rows, NAMES).replace("| msabench |", f"| {variant} |")
                + "\n"
            )
    return text


def _variant_sides(out: Path) -> list[str]:
    """Run folders under `out`/runs other than the compared sides and `msabench-own`: earlier
    forms of msabench kept for an ablation (e.g. `msabench-rolling`), each compared with MMSA."""
    runs = out / "runs"
    if not runs.is_dir():
        return []
    return sorted(d.name for d in runs.iterdir() if d.is_dir() and d.name not in {*SIDES, OWN})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-store", type=Path, default=Path("features/mosi_tokens"))
    parser.add_argument("--work", type=Path, default=Path(".parity-work"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/parity"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--mmsa-python", default="/work/mmsa-venv/bin/python")
    parser.add_argument("--mmsa-master-python", default="/work/mmsa-master-venv/bin/python")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=[*SIDES, OWN])
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        todo = []
        for method in args.methods:
            steps = AV_STEPS.get(method, DEFAULT_AV_STEPS)
            data = {
                side: _parity_store(args.source_store, args.work, steps, standardize=side == OWN)
                for side in args.sides
            }
            for seed in args.seeds:
                for side in args.sides:
                    pickle_path, store = data[side]
                    out = args.out / "runs" / side / method / f"seed-{seed}.json"
                    if not out.is_file():
                        command = _command(side, method, seed, out, args, pickle_path, store)
                        log = args.work / "logs" / side / method / f"seed-{seed}.log"
                        todo.append((command, out, log))
        print(f"{len(todo)} runs to do, {args.jobs} at a time", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            for line in pool.map(lambda job: _run(*job), todo):
                print(line, flush=True)
    report = _report(args.out, args.methods, args.seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
