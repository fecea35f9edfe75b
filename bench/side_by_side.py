"""Two datasets side by side from finished runs: per method, mean ± std over seeds of the
headline metrics on each dataset, how the method read the text, and what the runs cost (tuning
wall time from the Optuna study's trials, training wall time summed over seeds).

Reads `<results>/runs/<dataset>/<method>/seed-*.json` (run records) and
`<results>/studies/<dataset>/<method>.journal` (Optuna journal studies) of a project; a method
missing on one side gets empty cells. Rows are ordered by the second dataset's mean MAE.

Usage: python bench/side_by_side.py [--results results] [--datasets mosi_bclstm mosi_tokens]
Prints a Markdown table. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

COLUMNS = (("mae", 1.0, 3), ("corr", 1.0, 3), ("acc2_non0", 100.0, 2), ("acc7", 100.0, 2))


def _records(folder: Path) -> list:
    from harness.records import RunResult

    return [RunResult.load(path) for path in sorted(folder.glob("seed-*.json"))]


def _cell(records: list, metric: str, scale: float, digits: int) -> str:
    if len(records) < 2:
        return ""
    values = [r.metrics[metric] * scale for r in records]
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def tuning_seconds(journal: Path) -> float | None:
    """Wall time of a study's finished trials (sum of each trial's start-to-complete), or None
    when the study file is absent."""
    if not journal.exists():
        return None
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    total = 0.0
    for study in storage.get_all_studies():
        for trial in storage.get_all_trials(study._study_id):
            if trial.datetime_start and trial.datetime_complete:
                total += (trial.datetime_complete - trial.datetime_start).total_seconds()
    return total


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--datasets", nargs=2, default=["mosi_bclstm", "mosi_tokens"])
    args = parser.parse_args()
    first, second = args.datasets
    methods = sorted(
        {p.name for d in args.datasets for p in (args.results / "runs" / d).iterdir() if p.is_dir()}
    )
    records = {
        (d, m): _records(args.results / "runs" / d / m) for d in args.datasets for m in methods
    }

    def order(method: str) -> float:
        rows = records[(second, method)] or records[(first, method)]
        return statistics.mean(r.metrics["mae"] for r in rows) if rows else float("inf")

    header = ["method", f"text ({second})"]
    for dataset in args.datasets:
        header += [f"{dataset} {m}" for m, _, _ in COLUMNS]
        header += [f"{dataset} tune min", f"{dataset} train min"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for method in sorted(methods, key=order):
        tokens = records[(second, method)]
        line = [method, tokens[0].text_model.get("encoder", "") if tokens else ""]
        for dataset in args.datasets:
            rows = records[(dataset, method)]
            line += [_cell(rows, m, scale, digits) for m, scale, digits in COLUMNS]
            journal = args.results / "studies" / dataset / f"{method}.journal"
            line.append(_minutes(tuning_seconds(journal)))
            line.append(_minutes(sum(r.wall_time_s for r in rows)) if rows else "")
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
