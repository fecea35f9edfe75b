"""Published paper tables rendered: Markdown, booktabs LaTeX and CSV views of the frame that
`harness.papers.reproduce.reproduce_table` computes, and `write_paper_table`, which writes all
three.

The Markdown and LaTeX views put a "reported" and a "reproduced" cell side by side per column,
and under the table the legend, citation, Acc-2 variant, column -> metric mapping, dataset
mapping, seed count, CI method and the table's note. No timestamps, fixed float formats:
identical input gives byte-identical files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from harness.io_utils import write_text_atomic
from harness.papers.reproduce import _WITH_NUMBERS, STATUSES
from harness.papers.tables import PaperBlock, PaperColumn, PaperTable
from harness.reports.tables import latex_escape

__all__ = ["render_csv", "render_latex", "render_markdown", "write_paper_table"]


@dataclass(frozen=True)
class _Style:
    """The markup one output format uses."""

    plus_minus: str
    bold: Callable[[str], str]
    italic: Callable[[str], str]
    code: Callable[[str], str]
    escape: Callable[[str], str]
    inside: str
    outside: str
    arrow: str
    times: str


_MARKDOWN = _Style(
    " ± ",
    lambda t: f"**{t}**",
    lambda t: f"*{t}*",
    lambda t: f"`{t}`",
    str,
    " ✓",
    " ✗",
    " -> ",
    "×",
)


def _latex_text(text: str) -> str:
    """`latex_escape`, with "quoted" text given TeX quotes."""
    return re.sub(r'"([^"]*)"', r"``\1''", latex_escape(text))


_LATEX = _Style(
    r" $\pm$ ",
    lambda t: rf"\textbf{{{t}}}",
    lambda t: rf"\textit{{{t}}}",
    lambda t: rf"\texttt{{{latex_escape(t)}}}",
    _latex_text,
    r" $\surd$",
    r" $\times$",
    r" $\rightarrow$ ",
    r"$\times$",
)


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if math.isfinite(value) else "NaN"


def _reported_cell(cell: Mapping[str, Any], column: PaperColumn, bold: bool, style: _Style) -> str:
    if math.isnan(cell["reported"]):
        return "n/a"
    text = _number(cell["reported"], column.decimals)
    return style.bold(text) if bold else text


def _reproduced_cell(cell: Mapping[str, Any], column: PaperColumn, style: _Style) -> str:
    """ "mean ± std (+diff) marker", or the status text for a cell without numbers."""
    if cell["status"] not in _WITH_NUMBERS:
        return style.italic(cell["status"])
    digits = column.decimals
    text = _number(cell["mean"], digits)
    if math.isfinite(cell["std"]):
        text += f"{style.plus_minus}{_number(cell['std'], digits)}"
    if math.isfinite(cell["difference"]):
        text += f" ({cell['difference']:+.{digits}f})"
    if cell["inside_ci"] is not None:
        text += style.inside if cell["inside_ci"] else style.outside
    if cell["status"] == "too few seeds":
        text += f" [{cell['n_seeds']} seed]"
    return text


def _cells(frame: pd.DataFrame, table: PaperTable) -> dict[tuple[str, str, str], dict]:
    """{(row label, paper dataset, column label): frame row}; ValueError if not `table`'s."""
    if frame.empty or set(frame["table"]) != {table.name}:
        raise ValueError(f"the frame is not a reproduce_table frame of table {table.name!r}")
    return {
        (rec["label"], rec["paper_dataset"], rec["column"]): rec for rec in frame.to_dict("records")
    }


def _body(frame: pd.DataFrame, table: PaperTable, style: _Style) -> list[list[str]]:
    """One list of cells per paper row: label, then reported/reproduced per block column."""
    cells = _cells(frame, table)
    body = []
    for row in table.rows:
        label = style.escape(row.label)
        line = [style.bold(label) if row.bold else label]
        for block in table.blocks:
            for column in block.columns:
                cell = cells[(row.label, block.dataset, column.label)]
                line.append(_reported_cell(cell, column, row.bold, style))
                line.append(_reproduced_cell(cell, column, style))
        body.append(line)
    return body


def render_markdown(frame: pd.DataFrame, table: PaperTable) -> str:
    """Markdown: a heading, the table in the paper's layout (two cells per column: reported,
    reproduced) and the legend/provenance lines under it."""
    headers = ["Method"]
    for block in table.blocks:
        for column in block.columns:
            name = f"{block.dataset} {column.label}"
            headers += [f"{name} reported", f"{name} reproduced"]
    body = _body(frame, table, _MARKDOWN)
    grid = tabulate(
        body,
        headers=headers,
        tablefmt="pipe",
        disable_numparse=True,
        colalign=("left",) + ("right",) * (len(headers) - 1),
    )
    notes = "\n".join(f"- {line}" for line in _footer(frame, table, _MARKDOWN))
    return f"## {table.title}\n\n{grid}\n\n{notes}\n"


def render_latex(frame: pd.DataFrame, table: PaperTable) -> str:
    """A booktabs `table` float: a \\multicolumn header per paper dataset and per column (with
    \\cmidrule), "reported"/"reproduced" sub-columns, the footer lines under the tabular."""
    body = _body(frame, table, _LATEX)
    n_cells = sum(2 * len(block.columns) for block in table.blocks)
    dataset_row, dataset_rules, column_row, column_rules = [""], [], [""], []
    first = 2
    for block in table.blocks:
        width = 2 * len(block.columns)
        dataset_row.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(block.dataset)}}}")
        dataset_rules.append(rf"\cmidrule(lr){{{first}-{first + width - 1}}}")
        for k, column in enumerate(block.columns):
            column_row.append(rf"\multicolumn{{2}}{{c}}{{{latex_escape(column.label)}}}")
            column_rules.append(rf"\cmidrule(lr){{{first + 2 * k}-{first + 2 * k + 1}}}")
        first += width
    footer = "\n".join(rf"{line}\par" for line in _footer(frame, table, _LATEX))
    lines = [
        "% Generated by msabench from per-seed run records and harness/papers/*.yaml.",
        r"\begin{table}[t]",
        r"\centering",
        r"\scriptsize",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\label{{tab:paper-{table.name}}}",
        r"\begin{tabular}{l" + "r" * n_cells + "}",
        r"\toprule",
        " & ".join(dataset_row) + r" \\",
        " ".join(dataset_rules),
        " & ".join(column_row) + r" \\",
        " ".join(column_rules),
        " & ".join(["Method"] + ["reported", "reproduced"] * (n_cells // 2)) + r" \\",
        r"\midrule",
        *(" & ".join(line) + r" \\" for line in body),
        r"\bottomrule",
        r"\end{tabular}",
        r"\par\smallskip",
        r"\begin{minipage}{\linewidth}\raggedright",
        footer,
        r"\end{minipage}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def render_csv(frame: pd.DataFrame) -> str:
    """Every field of the frame as CSV (NaN and None as empty fields, floats in full)."""
    return frame.to_csv(index=False, lineterminator="\n")


def _footer(frame: pd.DataFrame, table: PaperTable, style: _Style) -> list[str]:
    """Legend and provenance lines, in the output format's markup."""
    first = frame.iloc[0]
    level = style.escape(f"{first['confidence']:.0%}")
    statuses = [s for s in STATUSES if s != "ok" and s in set(frame["status"])]
    explained = "; ".join(f"{style.italic(s)} = {STATUSES[s]}" for s in statuses)
    datasets = "; ".join(_mapping_text(frame, block, style) for block in table.blocks)
    return [
        f"Reproduced = mean{style.plus_minus}std (sample std, ddof=1) over seeds of this "
        f"project's test-split runs, in the paper's units, then (mean - reported); "
        f"{style.inside.strip()} = the reported value lies inside the reproduced {level} CI, "
        f"{style.outside.strip()} = outside." + (f" Status: {explained}." if explained else ""),
        f"Source: {style.escape(table.citation)}. Numbers copied from: "
        f"{style.escape(table.source)}.",
        f"Acc-2 variant: {_variant_text(table, style)}",
        "Columns: " + "; ".join(_block_columns(block, style) for block in table.blocks) + ".",
        f"Datasets: {datasets}.",
        f"Seeds: {_seed_text(frame)}.",
        f"CI: {level} percentile bootstrap CI of the mean over seeds "
        f"({style.code('harness.statistics.resampling.bootstrap_ci')}, "
        f"{first['n_resamples']} resamples, "
        f"seed {first['ci_seed']}); cells with fewer than 2 seeds have none.",
        f"Note: {style.escape(table.note)}",
    ]


_VARIANTS = {
    "has0": "the paper's Acc-2/F1 are has-0 (positive: score >= 0)",
    "non0": "the paper's Acc-2/F1 are non-0 (truth-0 samples dropped; positive: score > 0)",
    "both": "the paper gives has-0 and non-0 Acc-2/F1 as separate columns, each compared with "
    "the project's metric of the same variant",
    "unspecified": "the paper does not say whether its Acc-2/F1 are has-0 or non-0",
}


def _variant_text(table: PaperTable, style: _Style) -> str:
    metrics = {
        column.metric
        for block in table.blocks
        for column in block.columns
        if column.metric.startswith(("acc2", "f1"))
    }
    compared = ", ".join(style.code(m) for m in sorted(metrics)) or "no Acc-2/F1 column"
    return f"{style.escape(_VARIANTS[table.acc2_variant])}; compared with {compared}."


def _block_columns(block: PaperBlock, style: _Style) -> str:
    parts = [
        f"{style.escape(c.label)} = {style.code(c.metric)}"
        + (f" {style.times}{c.scale:g}" if c.scale != 1 else "")
        for c in block.columns
    ]
    return f"{style.escape(block.dataset)}: {', '.join(parts)}"


def _mapping_text(frame: pd.DataFrame, block: PaperBlock, style: _Style) -> str:
    projects = frame.loc[frame["paper_dataset"] == block.dataset, "project_dataset"]
    project = projects.iloc[0] if len(projects) else None
    target = style.code(project) if isinstance(project, str) else "not mapped"
    return f"{style.escape(block.dataset)}{style.arrow}{target}"


def _seed_text(frame: pd.DataFrame) -> str:
    counts = sorted(set(frame.loc[frame["status"].isin(_WITH_NUMBERS), "n_seeds"].astype(int)))
    if not counts:
        return "none (no reproduced cell)"
    if len(counts) == 1:
        return f"{counts[0]} per reproduced cell"
    return f"{counts[0]}-{counts[-1]} per reproduced cell"


# ------------------------------------------------------------------------------------ writing


def write_paper_table(table: PaperTable, frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write out_dir/<table.name>.md, .tex and .csv atomically; return the three paths."""
    out_dir = Path(out_dir)
    outputs = {
        out_dir / f"{table.name}.md": render_markdown(frame, table),
        out_dir / f"{table.name}.tex": render_latex(frame, table),
        out_dir / f"{table.name}.csv": render_csv(frame),
    }
    for path, text in outputs.items():
        write_text_atomic(path, text)
    return list(outputs)
