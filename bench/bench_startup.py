"""Start-up time of every DVC stage: a fresh interpreter that does what `msabench <stage>` does
before the stage's work begins (import the CLI and the stage's code, read and check
params.yaml, and for the stages that build a method, import it and run its checks), then exits.
Each figure is the median wall time of `--runs` fresh processes (after one warm-up), so every
one of the default run's 28 stages pays it once.

Works on this layout and on the one before issue 17 (harness/pipeline.py, report_stages.py and
evaluation_stages.py, imported all together by the CLI), so both can be measured side by side:

    python bench/bench_startup.py                              # this checkout
    python bench/bench_startup.py --repo ../old --python ../old/.venv/bin/python

Also prints which heavy packages each stage imported (torch, mlflow, optuna, pandas,
matplotlib, the methods).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("fetch", "tune", "train", "probe", "robustness", "compare", "rank", "paper", "list")

# what each stage imports before its work, in the layout before issue 17: the CLI imported the
# three stage modules at once, and some stage functions imported more at their start
OLD_LAZY = {
    "fetch": ["harness.data.sources"],
    "probe": ["harness.probes"],
    "robustness": ["harness.figures", "harness.robustness_report", "harness.comparison"],
    "compare": ["harness.reporting", "harness.comparison_figures", "harness.figures",
                "harness.tuning_history"],
    "rank": ["harness.reporting", "harness.cd_diagram", "harness.figures", "harness.rank_tests"],
    "paper": ["harness.paper_tables", "harness.paper_render", "harness.paper_report"],
}  # fmt: skip

HEAVY = ("torch", "mlflow", "optuna", "pandas", "matplotlib", "scipy", "sklearn")


def _old_script(stage: str) -> str:
    if stage == "list":
        return "from harness.cli import main\nmain(['list'])\n"
    lazy = "; ".join(f"import {m}" for m in OLD_LAZY.get(stage, []))
    return (
        "from harness import evaluation_stages, pipeline, report_stages\n"
        "from harness.config import load_params\n"
        "params = load_params('params.yaml')\n" + (lazy + "\n" if lazy else "")
    )


def _new_script(stage: str) -> str:
    if stage == "list":
        return "from harness.cli import main\nmain(['list'])\n"
    method = {"tune": "tfn", "train": "tfn", "probe": "fine"}.get(stage)
    lines = [
        "import importlib",
        "import harness.cli",
        "from harness.config import load_params",
        "params = load_params('params.yaml')",
    ]
    if method or stage == "robustness":
        names = f"[{method!r}]" if method else "params.benchmark.methods"
        lines += [
            "from harness.config.methods import check_methods",
            f"check_methods(params, {names})",
        ]
    lines.append(f"importlib.import_module('harness.stages.{stage}')")
    return "\n".join(lines) + "\n"


def _report_heavy() -> str:
    return (
        "import json, sys\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "heavy += ['methods'] if any(m.startswith('methods.') for m in sys.modules) else []\n"
        "print('HEAVY=' + json.dumps(heavy), file=sys.stderr)\n"
    )


def measure(python: str, repo: Path, script: str, runs: int) -> tuple[float, list[str]]:
    """(median wall seconds over `runs` fresh processes, heavy packages imported)."""
    times, heavy = [], []
    for i in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(
            [python, "-c", script + _report_heavy()], cwd=repo, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"failed: {script!r}\n{done.stderr}")
        heavy = json.loads(done.stderr.strip().splitlines()[-1].removeprefix("HEAVY="))
        if i:  # the first run warms the file cache
            times.append(elapsed)
    return statistics.median(times), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stages", nargs="*", default=list(STAGES))
    args = parser.parse_args()
    old = (args.repo / "harness" / "pipeline.py").is_file()
    layout = "before issue 17" if old else "sub-packages (issue 17)"
    print(f"repo {args.repo} ({layout}); median of {args.runs} fresh processes\n")
    print("| stage | start-up s | heavy imports |\n|---|---|---|")
    total = 0.0
    for stage in args.stages:
        script = _old_script(stage) if old else _new_script(stage)
        seconds, heavy = measure(args.python, args.repo, script, args.runs)
        count = {"tune": 11, "train": 11}.get(stage, 1) if stage != "list" else 0
        total += seconds * count
        print(f"| {stage} | {seconds:.2f} | {', '.join(heavy) or '-'} |")
    print(f"\nstart-up paid by the default run's 28 stages (11 tune, 11 train): {total:.0f} s")


if __name__ == "__main__":
    main()
