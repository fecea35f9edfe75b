"""Stage `paper` (`msabench paper --all`; `msabench paper NAME` for one table): published
tables regenerated in their own layouts, the reported value beside the reproduced mean ± std over
seeds, the difference and whether the reported value lies inside the reproduced 95% CI
(harness/papers/); written to results/papers/<table>.md/.tex/.csv for each table at least one of
whose datasets has runs (results/runs/<dataset>/ at the params' seeds), and always
results/papers/README.md, the index of every registered table: written or not, and for the
others which datasets to run (and how long that takes here, where measured)."""

from __future__ import annotations

from pathlib import Path

from harness import paths
from harness.config import Params
from harness.errors import DataError
from harness.io_utils import atomic_directory, write_text_atomic
from harness.papers.index import render_index
from harness.papers.render import write_paper_table
from harness.papers.reproduce import reproduce_table
from harness.papers.tables import PaperTable, paper_table, paper_tables
from harness.records import RunResult, load_records
from harness.reports.provenance import text_model_note
from harness.statistics.cross_validation import pool_folds
from harness.tracking import Tracker, log_artifact, standard_tags


def run(params: Params) -> list[Path]:
    """Every table of params `paper.tables` that has runs (`_run_datasets`) into
    results/papers/, one MLflow run each, and the index README.md (replacing the folder: a
    table dropped from the list, or left without runs, disappears). Returns the written
    Markdown paths, the index last."""
    tables = [paper_table(name) for name in params.paper.tables]  # unknown names fail first
    runs, tracker = _paper_runs(params), Tracker(params.tracking_uri)
    written = [table for table in tables if _run_datasets(params, table, runs)]
    with atomic_directory(paths.papers_dir()) as tmp:
        for table in written:
            _write_paper(params, table, runs, tmp, tracker)
        _write_index(params, runs, {t.name for t in written}, tmp)
    return [paths.papers_dir() / f"{t.name}.md" for t in written] + [_index_path()]


def run_one(params: Params, name: str) -> Path:
    """Regenerate the registered paper table `name` into results/papers/<name>.md/.tex/.csv
    (beside the others) and update the index README.md. Returns the Markdown path.

    A table none of whose datasets has runs is refused, as the `--all` stage leaves it out:
    DataError, one line naming the project datasets to add to `benchmark.datasets` (or the
    paper datasets to map in `paper.datasets`), so that every file in results/papers/ compares
    published numbers with runs."""
    table = paper_table(name)
    runs = _paper_runs(params)
    if not _run_datasets(params, table, runs):
        raise DataError(f"paper table {name!r}: {_missing_runs(params, table)}")
    _write_paper(params, table, runs, paths.papers_dir(), Tracker(params.tracking_uri))
    present = {t for t in paper_tables().names() if (paths.papers_dir() / f"{t}.md").is_file()}
    _write_index(params, runs, present, paths.papers_dir())
    return paths.papers_dir() / f"{name}.md"


def _index_path() -> Path:
    return paths.papers_dir() / "README.md"


def _run_datasets(params: Params, table: PaperTable, runs: dict) -> list[str]:
    """The project datasets mapped to `table`'s paper datasets that have runs."""
    mapped = [params.paper.datasets.get(block.dataset) for block in table.blocks]
    return [d for d in mapped if d is not None and d in runs]


def _missing_runs(params: Params, table: PaperTable) -> str:
    """Why `table` has no runs, and what to run: one phrase."""
    mapping = {b.dataset: params.paper.datasets.get(b.dataset) for b in table.blocks}
    mapped = sorted(
        {fold for d in mapping.values() if d is not None for fold in params.groups.get(d, (d,))}
    )
    if mapped:
        return (
            f"none of its datasets has runs in results/runs/ at the params' seeds (a "
            "cross-validation group: every fold at every seed); add "
            f"{', '.join(mapped)} to benchmark.datasets in params.yaml and run dvc repro"
        )
    return (
        f"none of its datasets ({', '.join(mapping)}) is mapped to a project dataset; map one "
        "in paper.datasets (params.yaml) and add that dataset to benchmark.datasets"
    )


def _write_index(params: Params, runs: dict, written: set[str], out_dir: Path) -> None:
    """out_dir/README.md: every registered table, written or not (`render_index`)."""
    registry = paper_tables()
    text = render_index(
        [registry.get(name) for name in registry.names()],
        params.paper.tables,
        written,
        dict(params.paper.datasets),
        set(runs),
    )
    write_text_atomic(out_dir / "README.md", text)


def _mapped_datasets(params: Params) -> set[str]:
    """The project datasets `paper.datasets` maps to, a cross-validation group standing for
    its folds."""
    mapped = set()
    for name in params.paper.datasets.values():
        if name is not None:
            mapped.update(params.groups.get(name, (name,)))
    return mapped


def _paper_records(params: Params) -> list[RunResult]:
    """Every run record of a mapped dataset (all registered methods) at the params' seeds."""
    mapped = _mapped_datasets(params)
    return [
        record
        for record in load_records(paths.all_runs())
        if record.dataset in mapped and record.seed in params.seeds
    ]


def _paper_runs(params: Params) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """{dataset: {method: {seed: test metrics}}} of `_paper_records`; a mapped cross-validation
    group is one more entry, {group: {method: {(fold, seed) unit: metrics}}}: its folds pooled,
    so a published cross-validated number is set beside the mean over folds and seeds."""
    runs: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for record in _paper_records(params):
        runs.setdefault(record.dataset, {}).setdefault(record.method, {})[record.seed] = (
            record.metrics
        )
    for name in params.paper.datasets.values():
        folds = params.groups.get(name or "")
        if folds:
            pooled = pool_folds(name, runs, folds, params.seeds).values
            if pooled:
                runs[name] = pooled
    return runs


def _write_paper(params: Params, table, runs: dict, out_dir: Path, tracker: Tracker) -> None:
    frame = reproduce_table(table, runs, dict(params.paper.datasets), seed=params.compare.seed)
    datasets = set(_run_datasets(params, table, runs))
    datasets.update(fold for d in list(datasets) for fold in params.groups.get(d, ()))
    records = [r for r in _paper_records(params) if r.dataset in datasets]
    written = write_paper_table(table, frame, out_dir, text_model_note(records))
    tags = standard_tags("paper", ",".join(sorted(runs)) or "none", paper_table=table.name)
    with tracker.run("papers", f"paper/{table.name}", f"paper-{table.name}", tags):
        for path in written:
            log_artifact(path, "paper")
