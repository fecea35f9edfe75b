"""Published paper tables rendered: Markdown, booktabs LaTeX and CSV views of the frame that
`harness.papers.reproduce.reproduce_table` computes, and `write_paper_table`, which writes all
three.

The Markdown and LaTeX views put a "reported" and a "reproduced" cell side by side per column,
and under the table the legend, citation (the publication, and the registry YAML file inside
this project that holds the numbers), Acc-2 variant, column -> metric mapping, dataset mapping,
seed count, CI method and the table's note. No timestamps, fixed float formats: identical input
gives byte-identical files.

The LaTeX view is written for a plain `\\documentclass{article}` with booktabs and nothing else
(`harness.reports.latex`): \\footnotesize, its columns split into stacked tabulars that fit the
345 pt text width (at a paper dataset's boundary where possible), each repeating the method
column. To fit, its reproduced cell is "mean ± std ✓/✗" without the difference (the Markdown and
CSV views keep it) and a cell without numbers shows a short status ("not impl.") that the
legend spells out.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from harness.io_utils import write_text_atomic
from harness.metrics import metric_label
from harness.papers.reproduce import _WITH_NUMBERS, STATUSES
from harness.papers.tables import PaperBlock, PaperColumn, PaperTable
from harness.reports.latex import (
    NEEDS,
    caption_height,
    latex_escape,
    paragraph_height,
    split_columns,
    split_floats,
    table_float,
    tabular_height,
    text_width,
)

__all__ = [
    "render_csv",
    "render_latex",
    "render_markdown",
    "write_paper_table",
]


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
    reported: str = "reported"  # the sub-header of the reported values
    difference: bool = True  # whether a reproduced cell shows (mean - reported)
    status: Callable[[str], str] = str  # the text a cell without numbers shows for its status


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

# LaTeX's cells without numbers show these (the legend spells each out)
_SHORT_STATUS = {
    "method not implemented": "not impl.",
    "dataset not mapped": "unmapped",
    "dataset not run": "no runs",
    "method not run": "not run",
    "metric not recorded": "no metric",
}


def _short_status(status: str) -> str:
    return _SHORT_STATUS.get(status, status)


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
    reported="paper",
    difference=False,
    status=_short_status,
)
# the text of the LaTeX cells without markup, whose widths decide the LaTeX layout
_PLAIN = _Style(
    " ± ",
    str,
    str,
    str,
    str,
    " ✓",
    " ✗",
    " -> ",
    "×",
    reported="paper",
    difference=False,
    status=_short_status,
)
_LATEX_SIZE = "footnotesize"  # the font size command of the LaTeX tables
_LATEX_TABCOLSEP = 3.0  # pt; LaTeX's default is 6 pt


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
        return style.italic(style.status(cell["status"]))
    digits = column.decimals
    text = _number(cell["mean"], digits)
    if math.isfinite(cell["std"]):
        text += f"{style.plus_minus}{_number(cell['std'], digits)}"
    if style.difference and math.isfinite(cell["difference"]):
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


def render_markdown(frame: pd.DataFrame, table: PaperTable, text_model: str = "") -> str:
    """Markdown: a heading, the table in the paper's layout (two cells per column: reported,
    reproduced) and the legend/provenance lines under it (`text_model`: the runs' text-model
    sentence, `harness.reports.provenance.text_model_note`, a line of its own when not empty)."""
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
    notes = "\n".join(f"- {line}" for line in _footer(frame, table, _MARKDOWN, text_model))
    return f"## {table.title}\n\n{grid}\n\n{notes}\n"


def render_latex(frame: pd.DataFrame, table: PaperTable, text_model: str = "") -> str:
    r"""A booktabs `table` float: the paper's columns split into stacked tabulars that fit the
    345 pt text width (`harness.reports.latex.split_columns`, cutting at a paper dataset's
    boundary where it can), each with a \multicolumn header per paper dataset and per column
    (with \cmidrule), "paper"/"reproduced" sub-columns and the method column; the footer lines
    under the tabulars (`text_model` as in `render_markdown`)."""
    body = _body(frame, table, _LATEX)
    columns = [(block, column) for block in table.blocks for column in block.columns]
    starts, first = [], 0
    for block in table.blocks:
        starts.append(first)
        first += len(block.columns)
    plain = _body(frame, table, _PLAIN)
    bold = [row.bold for row in table.rows]
    widths = [_pair_width(plain, bold, k, column.label) for k, (_, column) in enumerate(columns)]
    groups = split_columns(widths, _label_width(plain, bold), boundaries=starts)
    tabulars = [
        _latex_tabular(body, [columns[k] for k in group], [1 + 2 * k for k in group])
        for group in groups
    ]
    notes = "\n".join(
        [
            r"\begin{minipage}{\linewidth}\raggedright",
            *(rf"{line}\par" for line in _footer(frame, table, _LATEX, text_model)),
            r"\end{minipage}",
        ]
    )
    label = f"tab:paper-{table.name}"
    floats = split_floats(
        [tabular_height(3 + len(table.rows), _LATEX_SIZE, cmidrule_lines=2)] * len(tabulars),
        first=caption_height(table.title, _LATEX_SIZE),
        last=sum(
            paragraph_height(line, _LATEX_SIZE)
            for line in _footer(frame, table, _PLAIN, text_model)
        ),
        continued=caption_height(f"{table.title}, continued (Table 10).", _LATEX_SIZE),
    )
    parts = [
        table_float(
            latex_escape(table.title)
            if i == 0
            else rf"{latex_escape(table.title)}, continued (Table~\ref{{{label}}}).",
            label if i == 0 else None,
            [tabulars[k] for k in indices] + ([notes] if i == len(floats) - 1 else []),
            _LATEX_SIZE,
            _LATEX_TABCOLSEP,
        )
        for i, indices in enumerate(floats)
    ]
    source = table.registry_file or "harness/papers/*.yaml"
    header = [NEEDS, f"% Generated by msabench from per-seed run records and {source}."]
    return "\n".join(header + parts) + "\n"


def _latex_tabular(
    body: list[list[str]], columns: list[tuple[PaperBlock, PaperColumn]], cells: list[int]
) -> str:
    """One tabular of the LaTeX view: the method column and `columns` (each two cells of the
    body rows, starting at the indices `cells`), headed by their datasets and labels."""
    dataset_row, dataset_rules, column_row, column_rules = [""], [], [""], []
    position = 2
    for dataset, run in itertools.groupby(columns, key=lambda pair: pair[0].dataset):
        width = 2 * len(list(run))
        dataset_row.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(dataset)}}}")
        dataset_rules.append(rf"\cmidrule(lr){{{position}-{position + width - 1}}}")
        position += width
    for k, (_, column) in enumerate(columns):
        column_row.append(rf"\multicolumn{{2}}{{c}}{{{latex_escape(column.label)}}}")
        column_rules.append(rf"\cmidrule(lr){{{2 + 2 * k}-{3 + 2 * k}}}")
    rows = [[line[0], *(cell for i in cells for cell in line[i : i + 2])] for line in body]
    lines = [
        r"\begin{tabular}{l" + "r" * (2 * len(columns)) + "}",
        r"\toprule",
        " & ".join(dataset_row) + r" \\",
        " ".join(dataset_rules),
        " & ".join(column_row) + r" \\",
        " ".join(column_rules),
        " & ".join(["Method"] + [_LATEX.reported, "reproduced"] * len(columns)) + r" \\",
        r"\midrule",
        *(" & ".join(row) + r" \\" for row in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(lines)


def _pair_width(plain: list[list[str]], bold: list[bool], k: int, label: str) -> float:
    """Estimated width in pt of paper column `k` in the LaTeX view: its reported and reproduced
    cells (plain text, `bold` per row), their sub-headers and its label, with the space between
    columns."""
    reported = max(
        [text_width(_PLAIN.reported, _LATEX_SIZE)]
        + [text_width(line[1 + 2 * k], _LATEX_SIZE, b) for line, b in zip(plain, bold, strict=True)]
    )
    reproduced = max(
        [text_width("reproduced", _LATEX_SIZE)]
        + [text_width(line[2 + 2 * k], _LATEX_SIZE) for line in plain]
    )
    pair = reported + reproduced + 2 * _LATEX_TABCOLSEP
    return max(pair, text_width(label, _LATEX_SIZE)) + 2 * _LATEX_TABCOLSEP


def _label_width(plain: list[list[str]], bold: list[bool]) -> float:
    """Estimated width in pt of the method column, with the space beside it."""
    labels = [text_width(line[0], _LATEX_SIZE, b) for line, b in zip(plain, bold, strict=True)]
    return max([text_width("Method", _LATEX_SIZE), *labels]) + 2 * _LATEX_TABCOLSEP


def render_csv(frame: pd.DataFrame) -> str:
    """Every field of the frame as CSV (NaN and None as empty fields, floats in full)."""
    return frame.to_csv(index=False, lineterminator="\n")


def _footer(
    frame: pd.DataFrame, table: PaperTable, style: _Style, text_model: str = ""
) -> list[str]:
    """Legend and provenance lines, in the output format's markup; the text-model sentence
    (`text_model`, empty for runs without token ids) is a line of its own."""
    first = frame.iloc[0]
    level = style.escape(f"{first['confidence']:.0%}")
    statuses = [s for s in STATUSES if s != "ok" and s in set(frame["status"])]
    explained = "; ".join(_status_text(s, style) for s in statuses)
    datasets = "; ".join(_mapping_text(frame, block, style) for block in table.blocks)
    reproduced = (
        f"Reproduced = mean{style.plus_minus}std (sample std, ddof=1) over seeds of this "
        f"project's test-split runs, in the paper's units, then (mean - reported); "
        if style.difference
        else f"{style.reported.capitalize()} = the published value; reproduced = "
        f"mean{style.plus_minus}std (sample std, ddof=1) over seeds of this project's "
        "test-split runs, in the paper's units (the difference, mean - published, is in the "
        ".md and .csv files); "
    )
    return (
        [
            reproduced + f"{style.inside.strip()} = the reported value lies inside the reproduced "
            f"{level} CI, {style.outside.strip()} = outside."
            + (f" Status: {explained}." if explained else ""),
            f"Source: {style.escape(_sentence(table.citation.text()))} "
            f"{_numbers_text(table, style)}",
        ]
        + ([f"Acc-2 variant: {_variant_text(table, style)}"] if _sentiment_binary(table) else [])
        + [
            "Columns (the paper's label = this project's metric): "
            + "; ".join(_block_columns(block, style) for block in table.blocks)
            + ".",
            f"Datasets: {datasets}.",
            f"Seeds: {_seed_text(frame)}.",
            f"CI: {level} percentile bootstrap CI of the mean over seeds "
            f"({style.code('harness.statistics.resampling.bootstrap_ci')}, "
            f"{first['n_resamples']} resamples, "
            f"seed {first['ci_seed']}); cells with fewer than 2 seeds have none.",
            f"Note: {style.escape(table.note)}",
        ]
        + ([style.escape(text_model.strip())] if text_model.strip() else [])
    )


def _sentence(text: str) -> str:
    """`text` ending with a full stop."""
    return text if text.endswith(".") else f"{text}."


def _status_text(status: str, style: _Style) -> str:
    """The legend's entry for `status`: the text its cells show = what it means."""
    shown = style.status(status)
    named = "" if shown == status else f"{status}: "
    return f"{style.italic(shown)} = {named}{STATUSES[status]}"


def _numbers_text(table: PaperTable, style: _Style) -> str:
    """Where the reported numbers live in this project: the registry file and table name."""
    registry = style.code(table.registry_file) if table.registry_file else "no registry file"
    where = f"{registry}, table {style.code(table.name)}"
    if table.has_reported():
        return f"Reported numbers: {where}."
    return f"Reported numbers: none public (layout only; {where})."


_VARIANTS = {
    "has0": "the paper's Acc-2/F1 are has-0 (positive: score >= 0)",
    "non0": "the paper's Acc-2/F1 are non-0 (truth-0 samples dropped; positive: score > 0)",
    "both": "the paper gives has-0 and non-0 Acc-2/F1 as separate columns, each compared with "
    "the project's metric of the same variant",
    "unspecified": "the paper does not say whether its Acc-2/F1 are has-0 or non-0",
}


def _sentiment_binary(table: PaperTable) -> bool:
    """Whether `table` has a column of a sentiment score's binary metrics (Acc-2, its F1), whose
    has-0 / non-0 variant matters; a classification table's (MUStARD's) do not."""
    return any(
        column.metric.startswith(("acc2", "f1")) and column.metric != "f1_weighted"
        for block in table.blocks
        for column in block.columns
    )


def _variant_text(table: PaperTable, style: _Style) -> str:
    metrics = {
        column.metric
        for block in table.blocks
        for column in block.columns
        if column.metric.startswith(("acc2", "f1")) and column.metric != "f1_weighted"
    }
    compared = (
        ", ".join(style.escape(metric_label(m)) for m in sorted(metrics)) or "no Acc-2/F1 column"
    )
    return f"{style.escape(_VARIANTS[table.acc2_variant])}; compared with {compared}."


def _block_columns(block: PaperBlock, style: _Style) -> str:
    parts = [
        f"{style.escape(c.label)} = {style.escape(metric_label(c.metric))}"
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


def write_paper_table(
    table: PaperTable, frame: pd.DataFrame, out_dir: str | Path, text_model: str = ""
) -> list[Path]:
    """Write out_dir/<table.name>.md, .tex and .csv atomically (`text_model` as in
    `render_markdown`); return the three paths."""
    out_dir = Path(out_dir)
    outputs = {
        out_dir / f"{table.name}.md": render_markdown(frame, table, text_model),
        out_dir / f"{table.name}.tex": render_latex(frame, table, text_model),
        out_dir / f"{table.name}.csv": render_csv(frame),
    }
    for path, text in outputs.items():
        write_text_atomic(path, text)
    return list(outputs)
