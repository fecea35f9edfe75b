"""LaTeX pieces shared by the comparison tables (`harness.reports.tables`) and the paper tables
(`harness.papers.render`): escaping, the comment every generated .tex starts with, and the split
of a table's columns into stacked tabulars ("blocks") that fit the page.

Every .tex the harness writes compiles in a minimal document

    \\documentclass{article}
    \\usepackage{booktabs}
    \\begin{document}
    \\input{results/tables/synth.tex}
    \\end{document}

(no other package) and fits that document's page: `TEXT_WIDTH_PT` = 345 pt wide,
`TEXT_HEIGHT_PT` = 550 pt high (letter paper; A4 is higher). A table wider than that is split as
a paper splits it: its columns go into several tabulars stacked in one float, each repeating
the row labels (`split_columns`); when the stack is higher than the page, it continues in a
second float whose caption says so (`split_floats`). Both splits are decided here from sizes
estimated from the characters (`text_width`: Computer Modern's advance widths, rounded up;
`tabular_height`, `paragraph_height`), with no TeX run; tests/test_latex.py compiles every table
with pdflatex and checks its log for overfull boxes and floats too large for the page.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = [
    "NEEDS",
    "TEXT_HEIGHT_PT",
    "TEXT_WIDTH_PT",
    "caption_height",
    "latex_escape",
    "paragraph_height",
    "split_columns",
    "split_floats",
    "table_float",
    "tabular_height",
    "text_width",
]

TEXT_WIDTH_PT = 345.0  # \textwidth of \documentclass{article} (10 pt), letter or A4 paper
TEXT_HEIGHT_PT = 550.0  # its \textheight on letter paper (the default; A4's is higher)
NEEDS = (
    "% Needs \\usepackage{booktabs} (nothing else); fits the 345 pt text width of a plain "
    "\\documentclass{article}."
)

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    # the non-ASCII characters the harness writes, which pdflatex's default UTF-8 input lacks
    "±": r"$\pm$", "−": "$-$", "×": r"$\times$", "→": r"$\rightarrow$", "↑": r"$\uparrow$",
    "↓": r"$\downarrow$", "≥": r"$\geq$", "≤": r"$\leq$", "ε": r"$\varepsilon$", "²": "$^2$",
    "✓": r"$\surd$", "✗": r"$\times$", "△": r"$\triangle$", "†": r"\dag{}", "‡": r"\ddag{}",
    "§": r"\S{}",
}  # fmt: skip


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped (underscores included) and the non-ASCII
    symbols the harness uses (±, ×, ✓, arrows, ...) written as LaTeX commands, so that any
    string compiles in text mode. En/em dashes and accented letters pass through (LaTeX reads
    UTF-8 and has them)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


# Advance widths in em of Computer Modern Roman (cmr10's TFM, rounded up to 0.01 em); a
# character not listed counts as `_OTHER`. Superscript markers count as `_MARKER`.
_WIDTHS: dict[str, float] = {
    **dict.fromkeys("0123456789", 0.50),
    **dict.fromkeys(".,:;!'`|", 0.28),
    **dict.fromkeys("()-", 0.39),
    **dict.fromkeys("[]", 0.28),
    " ": 0.34, "/": 0.50, "_": 0.50, "+": 0.78, "=": 0.78, "<": 0.78, ">": 0.78, "%": 0.84,
    "±": 0.78, "−": 0.78, "×": 0.78, "✓": 0.84, "✗": 0.78, "↑": 0.50, "↓": 0.50, "–": 0.50,
    "—": 1.00, "ε": 0.41, "→": 1.00,
    "a": 0.50, "b": 0.56, "c": 0.45, "d": 0.56, "e": 0.45, "f": 0.31, "g": 0.50, "h": 0.56,
    "i": 0.28, "j": 0.31, "k": 0.53, "l": 0.28, "m": 0.84, "n": 0.56, "o": 0.50, "p": 0.56,
    "q": 0.53, "r": 0.40, "s": 0.40, "t": 0.39, "u": 0.56, "v": 0.53, "w": 0.73, "x": 0.53,
    "y": 0.53, "z": 0.45,
    "A": 0.75, "B": 0.71, "C": 0.73, "D": 0.77, "E": 0.69, "F": 0.66, "G": 0.79, "H": 0.75,
    "I": 0.37, "J": 0.52, "K": 0.78, "L": 0.63, "M": 0.92, "N": 0.75, "O": 0.78, "P": 0.69,
    "Q": 0.78, "R": 0.74, "S": 0.56, "T": 0.73, "U": 0.75, "V": 0.75, "W": 1.03, "X": 0.75,
    "Y": 0.75, "Z": 0.62,
}  # fmt: skip
_MARKER = 0.50  # a superscript marker: * § † ‡ △
_MARKERS = "*§†‡△"
_OTHER = 1.00
_BOLD = 1.15  # cmbx is up to 15% wider than cmr
# em of the font at each size command, in pt, scaled by how much wider the smaller design sizes
# are (cmr9's digits are 0.514 em, cmr8's 0.531 em, cmr10's 0.5 em)
SIZES: dict[str, float] = {"normalsize": 10.0, "small": 9.0 * 1.028, "footnotesize": 8.0 * 1.063}


def text_width(text: str, size: str = "normalsize", bold: bool = False) -> float:
    """Estimated width in pt of the plain (unescaped) `text` set in Computer Modern at `size`
    (a key of `SIZES`), bold if `bold`: the sum of the characters' advance widths, rounded up, so
    the estimate is at least the real width for the characters the harness writes."""
    ems = sum(_MARKER if c in _MARKERS else _WIDTHS.get(c, _OTHER) for c in text)
    return ems * SIZES[size] * (_BOLD if bold else 1.0)


def split_columns(
    widths: Sequence[float],
    fixed: float,
    budget: float = TEXT_WIDTH_PT,
    boundaries: Sequence[int] = (),
) -> list[range]:
    """The columns 0..n-1 of a table, of `widths` (pt, inter-column space included), split into
    the fewest contiguous groups that each fit `budget` beside the `fixed` width every group
    repeats (the row-label column); among splits with that many groups, the one with the fewest
    cuts off `boundaries` (column indices where a cut is natural, e.g. where a paper's dataset
    starts), then the most even widths. A column too wide on its own gets a group of its own.

    >>> split_columns([100, 100, 100, 100], fixed=50, budget=300)
    [range(0, 2), range(2, 4)]
    """
    n = len(widths)
    if n == 0:
        return []
    count = _fewest_groups(widths, fixed, budget)
    if count is None:
        return [range(i, i + 1) for i in range(n)]
    best: tuple[tuple[int, float], list[range]] | None = None
    if math.comb(n - 1, count - 1) > 100_000:  # too many to try: the greedy split
        return _greedy(widths, fixed, budget)
    natural = set(boundaries)
    for cuts in itertools.combinations(range(1, n), count - 1):
        groups = [range(a, b) for a, b in zip((0, *cuts), (*cuts, n), strict=True)]
        totals = [fixed + sum(widths[i] for i in group) for group in groups]
        if max(totals) > budget:
            continue
        key = (sum(cut not in natural for cut in cuts), max(totals))
        if best is None or key < best[0]:
            best = (key, groups)
    assert best is not None  # the greedy split has `count` groups and fits
    return best[1]


def _greedy(widths: Sequence[float], fixed: float, budget: float) -> list[range]:
    """Contiguous groups filled left to right while they fit (the fewest possible groups)."""
    groups, start, total = [], 0, fixed
    for i, width in enumerate(widths):
        if i > start and total + width > budget:
            groups.append(range(start, i))
            start, total = i, fixed
        total += width
    groups.append(range(start, len(widths)))
    return groups


def _fewest_groups(widths: Sequence[float], fixed: float, budget: float) -> int | None:
    """How many groups the greedy split needs, None if a single column does not fit."""
    if fixed + max(widths) > budget:
        return None
    return len(_greedy(widths, fixed, budget))


# ------------------------------------------------------------------------------------ heights

BASELINES: dict[str, float] = {"normalsize": 12.0, "small": 11.0, "footnotesize": 9.5}
_RULES_PT = 12.0  # booktabs' top, middle and bottom rules with their separations, per tabular
_CMIDRULE_PT = 5.0  # a line of \cmidrule
_BLOCK_SKIP_PT = 9.0  # \par\medskip between stacked tabulars (6 pt plus 2 stretch, rounded up)
_CAPTION_SKIP_PT = 10.0  # \abovecaptionskip
_FILL = 0.9  # the share of a line a broken paragraph fills, at least (ragged or justified)


def tabular_height(rows: int, size: str, cmidrule_lines: int = 0) -> float:
    r"""Estimated height in pt of a booktabs tabular of `rows` rows (header rows included) at
    `size`, with `cmidrule_lines` lines of \cmidrule."""
    return rows * BASELINES[size] + _RULES_PT + cmidrule_lines * _CMIDRULE_PT


def paragraph_height(text: str, size: str, width: float = TEXT_WIDTH_PT) -> float:
    """Estimated height in pt of the plain `text` set as a paragraph `width` wide at `size`."""
    lines = max(1, math.ceil(text_width(text, size) / (width * _FILL)))
    return lines * BASELINES[size]


def caption_height(text: str, size: str) -> float:
    r"""Estimated height in pt of a \caption holding the plain `text` at `size`."""
    return _CAPTION_SKIP_PT + paragraph_height(text, size)


def split_floats(
    blocks: Sequence[float],
    first: float,
    last: float,
    continued: float,
    budget: float = TEXT_HEIGHT_PT,
) -> list[list[int]]:
    """The stacked tabulars of heights `blocks` (pt) packed in order into floats no higher than
    `budget`: the first float also holds `first` (its caption), each later one `continued` (its
    "continued" caption), the last one `last` (the notes under the table; a float of its own,
    with no tabular, when they do not fit beside the last tabulars). A tabular higher than the
    budget gets a float of its own.

    >>> split_floats([200, 200, 200], first=100, last=50, continued=20)
    [[0, 1], [2]]
    """
    floats: list[list[int]] = [[]]
    used = first
    for index, height in enumerate(blocks):
        extra = height + (_BLOCK_SKIP_PT if floats[-1] else 0.0)
        if floats[-1] and used + extra > budget:
            floats.append([])
            used, extra = continued, height
        floats[-1].append(index)
        used += extra
    if floats[-1] and last > 0 and used + _BLOCK_SKIP_PT + last > budget:
        floats.append([])
    return floats


def table_float(
    caption: str, label: str | None, parts: Sequence[str], size: str, tabcolsep: float
) -> str:
    r"""One `table` float ([tp]): centred, at `size` with `tabcolsep` pt between columns, the
    `caption` (LaTeX) and `label` on top, then `parts` (tabulars, notes) stacked."""
    lines = [
        r"\begin{table}[tp]",
        r"\centering",
        rf"\{size}",
        rf"\setlength{{\tabcolsep}}{{{tabcolsep:g}pt}}",
        rf"\caption{{{caption}}}",
        *([rf"\label{{{label}}}"] if label else []),
        "\n\\par\\medskip\n".join(parts),
        r"\end{table}",
    ]
    return "\n".join(lines)
