"""Paper tables reproduced and rendered: the statistics of `reproduce_table` by hand, the
statuses of cells that cannot be reproduced, and the Markdown, LaTeX and CSV views
(`harness.papers.reproduce`, `harness.papers.render`)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.papers.render import render_csv, render_latex, render_markdown, write_paper_table
from harness.papers.reproduce import FRAME_COLUMNS, STATUSES, reproduce_table
from harness.papers.tables import (
    PaperBlock,
    PaperCitation,
    PaperColumn,
    PaperRow,
    PaperTable,
    paper_table,
    paper_table_names,
)
from harness.statistics.resampling import bootstrap_ci

# ----------------------------------------------------------------------------- reproduction


def _table() -> PaperTable:
    """MOSI (Acc-2, MAE) and MOSEI (Acc-2) blocks; one row per status to check."""
    acc2 = PaperColumn("Acc-2", "acc2_non0", 100)
    mae = PaperColumn("MAE", "mae", 1, decimals=3)
    blocks = (PaperBlock("MOSI", (acc2, mae)), PaperBlock("MOSEI", (acc2,)))
    rows = (
        PaperRow("TFN", "tfn", {"MOSI": (80.8, 0.75), "MOSEI": (82.5,)}),
        PaperRow("LMF", "lmf", {"MOSI": (10.0, None)}),  # far outside
        PaperRow("MISA", "misa", {"MOSI": (83.4, 0.8)}),  # one seed
        PaperRow("GFN", None, {"MOSI": (84.3, 0.7)}),  # not implemented
        PaperRow("MulT", "mult", {"MOSI": (83.7, 0.8)}),  # no runs
        PaperRow("FINE", "fine", {}, bold=True),  # no public numbers
    )
    citation = PaperCitation("Someone", "A paper", "Conf", 2024, "Table 2")
    return PaperTable(
        "demo", "Demo", citation, "unspecified", "A note.", blocks, rows, "harness/papers/x.yaml"
    )


def _runs() -> dict:
    three = {
        s: {"acc2_non0": v, "mae": 0.75} for s, v in zip((1, 2, 3), (0.8, 0.82, 0.84), strict=True)
    }
    return {
        "mosi_x": {
            "tfn": three,
            "lmf": three,
            "misa": {1: {"acc2_non0": 0.83, "mae": 0.8}},
            "fine": {1: {"acc2_non0": 0.85, "mae": 0.7}, 2: {"acc2_non0": 0.87, "mae": 0.8}},
        }
    }


def _frame(dataset_map: dict | None = None) -> pd.DataFrame:
    mapping = {"MOSI": "mosi_x"} if dataset_map is None else dataset_map
    return reproduce_table(_table(), _runs(), mapping, seed=7, n_resamples=2000)


def _cell(frame: pd.DataFrame, label: str, dataset: str = "MOSI", column: str = "Acc-2"):
    hit = frame[
        (frame["label"] == label)
        & (frame["paper_dataset"] == dataset)
        & (frame["column"] == column)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def test_frame_has_every_cell_in_paper_order() -> None:
    frame = _frame()
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert len(frame) == 6 * 3  # rows x (2 MOSI + 1 MOSEI columns); nothing dropped
    assert list(pd.unique(frame["label"])) == ["TFN", "LMF", "MISA", "GFN", "MulT", "FINE"]
    assert set(frame["status"]) <= set(STATUSES)


def test_statistics_by_hand() -> None:
    tfn = _cell(_frame(), "TFN")
    assert tfn["status"] == "ok" and tfn["n_seeds"] == 3
    assert tfn["mean"] == pytest.approx(82.0) and tfn["std"] == pytest.approx(2.0)
    assert tfn["difference"] == pytest.approx(1.2)
    ci = bootstrap_ci(np.array([0.80, 0.82, 0.84]) * 100, seed=7, n_resamples=2000)
    assert (tfn["ci_low"], tfn["ci_high"]) == (ci.low, ci.high)
    # P(all three resampled values are the lowest) = 1/27 > 2.5%, so the CI is [80, 84]
    assert ci.low == pytest.approx(80.0) and ci.high == pytest.approx(84.0)
    assert tfn["inside_ci"] is True
    mae = _cell(_frame(), "TFN", column="MAE")
    assert (mae["mean"], mae["difference"], mae["inside_ci"]) == (
        0.75,
        0.0,
        True,
    )  # exact in binary


def test_reported_far_outside_the_ci() -> None:
    lmf = _cell(_frame(), "LMF")
    assert lmf["inside_ci"] is False and lmf["difference"] == pytest.approx(72.0)
    lmf_mae = _cell(_frame(), "LMF", column="MAE")
    assert lmf_mae["status"] == "reported n/a" and lmf_mae["inside_ci"] is None


def test_one_seed_gives_mean_without_ci() -> None:
    misa = _cell(_frame(), "MISA")
    assert misa["status"] == "too few seeds" and misa["n_seeds"] == 1
    assert misa["mean"] == pytest.approx(83.0) and misa["difference"] == pytest.approx(-0.4)
    assert math.isnan(misa["std"]) and math.isnan(misa["ci_low"]) and misa["inside_ci"] is None


def test_statuses_of_cells_that_cannot_be_reproduced() -> None:
    frame = _frame()
    assert _cell(frame, "GFN")["status"] == "method not implemented"
    assert _cell(frame, "MulT")["status"] == "method not run"
    assert _cell(frame, "TFN", "MOSEI")["status"] == "dataset not mapped"
    assert _cell(frame, "GFN")["reported"] == 84.3  # the published number stays
    fine = _cell(frame, "FINE")
    assert fine["status"] == "reported n/a" and math.isnan(fine["reported"])
    assert fine["mean"] == pytest.approx(86.0) and math.isnan(fine["difference"])
    not_run = _frame({"MOSI": "mosi_x", "MOSEI": "mosei_x"})
    assert _cell(not_run, "TFN", "MOSEI")["status"] == "dataset not run"
    sims = reproduce_table(_table(), {"s": {"tfn": {1: {"acc2": 0.8}}}}, {"MOSI": "s"}, seed=0)
    assert _cell(sims, "TFN")["status"] == "metric not recorded"


def test_same_inputs_give_identical_frames_and_bytes(tmp_path: Path) -> None:
    table = _table()
    first, second = _frame(), _frame()
    pd.testing.assert_frame_equal(first, second)
    paths_a = write_paper_table(table, first, tmp_path / "a")
    paths_b = write_paper_table(table, second, tmp_path / "b")
    assert [p.name for p in paths_a] == ["demo.md", "demo.tex", "demo.csv"]
    for a, b in zip(paths_a, paths_b, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_markdown_layout_and_legend() -> None:
    table, frame = _table(), _frame()
    text = render_markdown(frame, table)
    assert "|   MOSI Acc-2 reported |" in text and "MOSI Acc-2 reproduced" in text
    assert "82.00 ± 2.00 (+1.20) ✓" in text
    assert "82.00 ± 2.00 (+72.00) ✗" in text
    assert "83.00 (-0.40) [1 seed]" in text
    assert "*method not implemented*" in text and "*dataset not mapped*" in text
    assert "| **FINE** " in text and " n/a " in text
    assert "0.750 ± 0.000 (+0.000) ✓" in text  # MAE with 3 decimals
    assert "MOSI -> `mosi_x`; MOSEI -> not mapped" in text
    assert "Source: Someone (2024). A paper. Conf, Table 2." in text
    assert "Reported numbers: `harness/papers/x.yaml`, table `demo`." in text
    assert "A note." in text and "2000 resamples, seed 7" in text
    assert "Acc-2 = Acc-2 (non-0) ×100, MAE = MAE;" in text  # the project metric by its label
    assert "acc2_non0" not in text and "shared/reference" not in text


def test_latex_uses_booktabs_and_escapes() -> None:
    text = render_latex(_frame(), _table())
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){2-5}"):
        assert rule in text
    assert r"\multicolumn{4}{c}{MOSI}" in text and r"\multicolumn{2}{c}{Acc-2}" in text
    assert r"\texttt{mosi\_x}" in text and r"95\% CI" in text
    assert re.search(r"(?<!\\)_", text) is None  # no bare underscore
    assert r"\textbf{FINE}" in text
    assert text.startswith("% Needs \\usepackage{booktabs}")
    assert r"\footnotesize" in text and r"\resizebox" not in text
    # the reproduced cell without the difference; short statuses spelled out in the legend
    assert r"82.00 $\pm$ 2.00 $\surd$" in text and "(+1.20)" not in text
    assert r"\textit{not impl.}" in text
    assert r"\textit{not impl.} = method not implemented: this project" in text
    assert r"Method & paper & reproduced" in text


def test_csv_has_every_field() -> None:
    frame = _frame()
    text = render_csv(frame)
    assert text.splitlines()[0] == ",".join(FRAME_COLUMNS)
    assert len(text.splitlines()) == len(frame) + 1


def test_renderers_refuse_another_tables_frame() -> None:
    with pytest.raises(ValueError, match="not a reproduce_table frame"):
        render_markdown(_frame(), paper_table("fine-ch-sims"))


@pytest.mark.parametrize("name", sorted(paper_table_names()))
def test_every_registered_table_renders_without_runs(name: str) -> None:
    table = paper_table(name)
    frame = reproduce_table(table, {}, {}, seed=0)
    assert len(frame) == len(table.rows) * sum(len(b.columns) for b in table.blocks)
    assert set(frame["status"]) <= {"method not implemented", "dataset not mapped"}
    for text in (render_markdown(frame, table), render_latex(frame, table), render_csv(frame)):
        assert all(row.label.split("(")[0] in text for row in table.rows)
