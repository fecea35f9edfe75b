"""A comparison table's files: `write_comparison` writes one dataset's table as Markdown (with
the provenance paragraph of its runs, provenance.py), LaTeX and CSV; `read_comparison_csv` reads
the CSV back into the long frame; `summary_metrics` is the DVC metrics summary. The views
themselves are rendered by tables.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.io_utils import write_text_atomic
from harness.records import RunResult
from harness.reports.cost import with_cost_columns
from harness.reports.provenance import provenance_note
from harness.reports.tables import render_latex, render_markdown

__all__ = [
    "frame_to_csv",
    "read_comparison_csv",
    "summary_metrics",
    "to_json_value",
    "write_comparison",
]

_LIST_COLUMNS = ("seeds", "values", "flagged_seeds", "flag_rules", "flag_reasons")


def to_json_value(value: Any) -> Any:
    """`value` with NaN floats replaced by None (JSON null), recursively through lists/dicts."""
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def frame_to_csv(frame: pd.DataFrame) -> str:
    """CSV text of a comparison frame; the list columns are written as JSON strings (floats in
    their shortest round-trip form, so the file reads back exactly)."""
    out = frame.copy()
    for column in _LIST_COLUMNS:
        out[column] = [json.dumps(to_json_value(list(v)), allow_nan=False) for v in out[column]]
    return out.to_csv(index=False)


def read_comparison_csv(path: str | Path) -> pd.DataFrame:
    """Read a comparison CSV written by `write_comparison` back into the long frame."""
    frame = pd.read_csv(path)
    frame["seeds"] = [json.loads(text) for text in frame["seeds"]]
    frame["values"] = [
        [math.nan if v is None else float(v) for v in json.loads(text)] for text in frame["values"]
    ]
    for column in ("flagged_seeds", "flag_rules", "flag_reasons"):  # absent before flags
        texts = frame[column] if column in frame.columns else ["[]"] * len(frame)
        frame[column] = [json.loads(text) for text in texts]
    for column in ("mean_unflagged", "std_unflagged"):
        if column not in frame.columns:
            frame[column] = frame[column.removesuffix("_unflagged")]
    defaults = {"is_baseline": False, "beats_baseline": False, "baseline": ""}  # before baselines
    for column, default in defaults.items():
        frame[column] = frame[column] if column in frame.columns else default
    frame["baseline"] = [  # "" reads back as NaN
        "" if isinstance(name, float) and math.isnan(name) else str(name)
        for name in frame["baseline"]
    ]
    return frame


def summary_metrics(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """{method: {metric: mean}} of one dataset's frame (NaN as null), for `dvc metrics`."""
    return {
        method: {row["metric"]: to_json_value(float(row["mean"])) for _, row in rows.iterrows()}
        for method, rows in frame.groupby("method", sort=False)
    }


def write_comparison(
    frame: pd.DataFrame,
    records: list[RunResult],
    out_dir: Path,
    cost: pd.DataFrame | None = None,
    note: str = "",
) -> None:
    """Write ONE dataset's comparison `frame` (computed from `records` by
    `harness.statistics.comparison.compare_dataset`) as out_dir/<dataset>.md (with the
    provenance of its runs), .tex and .csv, each atomically; with `cost` (the records'
    `harness.statistics.cost.cost_frame`) the cost table under the metric table and the
    `cost_*` columns in the CSV; `note` (Markdown), a paragraph under the .md's heading (a
    cross-validation group says what its runs are)."""
    dataset = str(frame["dataset"].iloc[0])
    out_dir = Path(out_dir)
    body = render_markdown(frame, cost)
    if note:
        heading = f"## {dataset}\n\n"
        body = body.replace(heading, f"{heading}{note}\n\n", 1)
    markdown = f"{body}\n{provenance_note(records)}\n"
    write_text_atomic(out_dir / f"{dataset}.md", markdown)
    write_text_atomic(out_dir / f"{dataset}.tex", render_latex(frame, cost))
    table = with_cost_columns(frame, cost) if cost is not None else frame
    write_text_atomic(out_dir / f"{dataset}.csv", frame_to_csv(table))
