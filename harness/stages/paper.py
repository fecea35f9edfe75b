"""Stage `paper` (`msabench paper --all`; `msabench paper NAME` for one table): published
tables regenerated in their own layouts, the reported value beside the reproduced mean ± std over
seeds, the difference and whether the reported value lies inside the reproduced 95% CI
(harness/papers/); written to results/papers/<table>.md/.tex/.csv."""

from __future__ import annotations

from pathlib import Path

from harness import paths
from harness.config import Params
from harness.io_utils import atomic_directory
from harness.papers.render import write_paper_table
from harness.papers.reproduce import reproduce_table
from harness.papers.tables import paper_table
from harness.records import load_records
from harness.tracking import Tracker, log_artifact, standard_tags


def run(params: Params) -> list[Path]:
    """Every table of params `paper.tables` into results/papers/ (replacing the folder: a
    table dropped from the list disappears), one MLflow run each; returns the Markdown paths."""
    tables = [paper_table(name) for name in params.paper.tables]  # unknown names fail first
    runs, tracker = _paper_runs(params), Tracker(params.tracking_uri)
    with atomic_directory(paths.papers_dir()) as tmp:
        for table in tables:
            _write_paper(params, table, runs, tmp, tracker)
    return [paths.papers_dir() / f"{table.name}.md" for table in tables]


def run_one(params: Params, name: str) -> Path:
    """Regenerate the registered paper table `name` into results/papers/<name>.md/.tex/.csv
    (beside the others). Returns the Markdown path."""
    table = paper_table(name)
    _write_paper(
        params, table, _paper_runs(params), paths.papers_dir(), Tracker(params.tracking_uri)
    )
    return paths.papers_dir() / f"{name}.md"


def _paper_runs(params: Params) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """{dataset: {method: {seed: test metrics}}} of every run record of a mapped dataset (all
    registered methods, the params' seeds)."""
    mapped = {d for d in params.paper.datasets.values() if d is not None}
    runs: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for record in load_records(paths.all_runs()):
        if record.dataset in mapped and record.seed in params.seeds:
            runs.setdefault(record.dataset, {}).setdefault(record.method, {})[record.seed] = (
                record.metrics
            )
    return runs


def _write_paper(params: Params, table, runs: dict, out_dir: Path, tracker: Tracker) -> None:
    frame = reproduce_table(table, runs, dict(params.paper.datasets), seed=params.compare.seed)
    written = write_paper_table(table, frame, out_dir)
    tags = standard_tags("paper", ",".join(sorted(runs)) or "none", paper_table=table.name)
    with tracker.run("papers", f"paper/{table.name}", f"paper-{table.name}", tags):
        for path in written:
            log_artifact(path, "paper")
