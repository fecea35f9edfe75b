"""results/papers/README.md: every registered paper table, whether it was written, and for the
others what to run to fill it (`render_index`, written by the `paper` stage)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from tabulate import tabulate

from harness.papers.tables import PaperTable

__all__ = ["MEASURED_RUN_TIMES", "render_index"]


# How long filling a dataset takes here: the measured wall time of the default budget's
# `dvc repro` with that dataset, with the date and where it is recorded. A dataset not listed
# reads "not measured": no time is written that was not measured.
MEASURED_RUN_TIMES: dict[str, str] = {
    "synth": "the whole default `dvc repro` (20 methods, 5 seeds, tuning included) took "
    "19 min 53 s on 2026-12-07 on the 2-core development machine (docs/benchmarks.md)",
    "mosi_bclstm": "adding it to a finished default run took 12 min 5 s on 2026-12-03 on the "
    "2-core development machine (fetch from a local copy, 11 methods tuned and trained over 5 "
    "seeds, robustness, compare, rank, paper)",
}


def render_index(
    tables: Sequence[PaperTable],
    selected: Collection[str],
    written: Collection[str],
    dataset_map: Mapping[str, str | None],
    run_datasets: Collection[str],
) -> str:
    """results/papers/README.md: every registered table in `tables`, whether it was written
    (`written`: names) and, for the others, why not and what to run to fill it. `selected`:
    params `paper.tables`; `dataset_map`: params `paper.datasets`; `run_datasets`: the project
    datasets that have runs."""
    rows = [
        [
            f"[{t.name}]({t.name}.md)" if t.name in written else t.name,
            t.title,
            "yes" if t.name in written else "no",
            "; ".join(_index_dataset(b.dataset, dataset_map, run_datasets) for b in t.blocks),
            "—" if t.name in written else _to_fill(t, selected, dataset_map, run_datasets),
        ]
        for t in tables
    ]
    grid = tabulate(
        rows,
        headers=["table", "title", "written", "datasets (paper -> project)", "to fill it"],
        tablefmt="pipe",
        disable_numparse=True,
    )
    return (
        "# Paper tables\n\n"
        "Published tables regenerated in their own layouts beside this project's runs "
        "(`msabench paper --all`, the DVC stage `paper`; `msabench paper --list` names them). "
        "A table is written (`<table>.md`, `.tex`, `.csv`) only when at least one of its "
        "datasets has runs in `results/runs/<dataset>/` at the params' seeds; every registered "
        f"table is listed here, {len(written)} of {len(tables)} written.\n\n{grid}\n"
    )


def _index_dataset(
    paper: str, dataset_map: Mapping[str, str | None], run_datasets: Collection[str]
) -> str:
    project = dataset_map.get(paper)
    if project is None:
        return f"{paper} -> not mapped"
    return f"{paper} -> `{project}` ({'runs' if project in run_datasets else 'no runs'})"


def _to_fill(
    table: PaperTable,
    selected: Collection[str],
    dataset_map: Mapping[str, str | None],
    run_datasets: Collection[str],
) -> str:
    """What to do so that `table` is written: the datasets to run, with how long that takes."""
    steps = [] if table.name in selected else [f"add `{table.name}` to `paper.tables`"]
    mapped = [dataset_map.get(b.dataset) for b in table.blocks]
    to_run = sorted({d for d in mapped if d is not None and d not in run_datasets})
    if to_run:
        names = ", ".join(f"`{d}`" for d in to_run)
        times = "; ".join(f"`{d}`: {MEASURED_RUN_TIMES.get(d, 'not measured')}" for d in to_run)
        steps.append(
            f"add {names} to `benchmark.datasets` in params.yaml and run `dvc repro` "
            f"(run time here: {times})"
        )
    elif not any(d in run_datasets for d in mapped if d is not None):
        unmapped = " or ".join(b.dataset for b in table.blocks)
        steps.append(
            f"map {unmapped} to a project dataset in `paper.datasets` (params.yaml; declare it "
            "under `datasets`) and add that dataset to `benchmark.datasets`"
        )
    return "; then ".join(steps) if steps else "—"
