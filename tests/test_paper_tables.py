"""Paper tables: the YAML registry, its validation, and every number against the published
results (reproduction and rendering: test_paper_report.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import ConfigError, UnknownNameError
from harness.papers.tables import (
    load_paper_tables,
    paper_table,
    paper_table_names,
)

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO.parent / "shared" / "reference" / "published-results.md"
REGISTERED = {
    "fine-mosi-mosei", "fine-ch-sims", "fine-ur-funny", "mmsa-mosi", "mmsa-mosei",
    "mmsa-ch-sims", "fsrf-mosei-ch-sims", "mmmie-mosi-mosei", "ir-svr-mosi-mosei",
    "ir-svr-ur-funny", "mustard-text",
}  # fmt: skip

# ------------------------------------------------------------------------- registered tables


def test_every_registered_table_loads() -> None:
    assert set(paper_table_names()) == REGISTERED
    for name in paper_table_names():
        table = paper_table(name)
        assert table.name == name and table.rows and table.blocks
        for row in table.rows:
            for block in table.blocks:
                assert len(row.reported_for(block)) == len(block.columns)


def test_unknown_table_name_suggests_a_close_one() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'fine-mosi-mosei'"):
        paper_table("fine-mosi-mosi")


def test_spot_check_against_published_results() -> None:
    fine = paper_table("fine-mosi-mosei")
    row = fine.rows[-1]
    assert (row.label, row.method, row.bold) == ("FINE", "fine", True)
    assert row.reported["MOSI"] == (86.95, 86.94, 48.50)
    assert [c.metric for c in fine.blocks[0].columns] == ["acc2_non0", "f1_non0", "acc7"]
    assert fine.acc2_variant == "unspecified"
    self_mm = next(r for r in paper_table("mmsa-mosi").rows if r.label == "Self-MM")
    mae = paper_table("mmsa-mosi").blocks[0].columns[6]
    assert (mae.label, mae.metric, mae.scale) == ("MAE", "mae", 100)
    assert self_mm.reported["MOSI"][6] == 70.80
    ur_funny = paper_table("fine-ur-funny")
    assert ur_funny.rows[-1].reported["UR-FUNNY"] == (74.95,)
    assert ur_funny.rows[0].method is None  # C-MFN is not implemented


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("fsrf-mosei-ch-sims", "fsrf"),
        ("mmmie-mosi-mosei", "mmmie"),
        ("ir-svr-mosi-mosei", "ir_svr"),
        ("ir-svr-ur-funny", "ir_svr"),
    ],
)
def test_tables_without_public_numbers_report_nothing(name: str, method: str) -> None:
    table = paper_table(name)
    assert all(row.reported == {} for row in table.rows)
    assert table.rows[-1].bold and table.rows[-1].method == method
    assert not table.has_reported() and table.citation.table is None


def test_every_table_cites_its_publication_and_registry_file() -> None:
    for name in paper_table_names():
        table = paper_table(name)
        citation = table.citation
        assert citation.authors and citation.title and citation.venue and citation.url, name
        assert table.registry_file.startswith("harness/papers/"), name
        assert table.registry_file.endswith(".yaml") and (REPO / table.registry_file).is_file()
    fine = paper_table("fine-mosi-mosei").citation
    assert (fine.authors, fine.year) == ("Liu, Y., & Wang, S.", 2026)
    assert "AAAI 2026" in fine.venue and "Tables 1-4" in (fine.table or "")
    assert fine.text().startswith("Liu, Y., & Wang, S. (2026). FINE: Factorized Multimodal")
    assert fine.text().endswith("https://doi.org/10.1609/aaai.v40i3.37176")
    mmsa = paper_table("mmsa-mosei").citation
    assert mmsa.year is None and "(n.d.)" in mmsa.text() and "MOSEI table" in (mmsa.table or "")
    assert paper_table("ir-svr-ur-funny").citation == paper_table("ir-svr-mosi-mosei").citation


def _published_tables() -> list[tuple[list[str], list[tuple[str, list[list[float]]]]]]:
    """Every Markdown table of published-results.md as (datasets, [(label, values per
    dataset)]), in file order; cells like '**80.8 / 80.7 / 34.9**'."""
    tables, current = [], None
    for line in [*PUBLISHED.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.startswith("|"):
            if current:
                tables.append(current)
            current = None
            continue
        cells = [c.strip().strip("*").strip() for c in line.strip("|").split("|")]
        if current is None:
            current = (cells[1:], [])
        elif not set(cells[0]) <= {"-"}:
            values = [[float(v) for v in cell.split(" / ")] for cell in cells[1:]]
            current[1].append((cells[0], values))
    return tables


# rows of MMSA's result-stat.md (thuiar/MMSA at a94e65d) that the reference notes leave out; the
# registry copies them from that file (harness/papers/mmsa.yaml says so)
BEYOND_THE_NOTES = {
    ("mmsa-mosi", "LF-DNN"),
    ("mmsa-mosei", "LF-DNN"),
    ("mmsa-mosei", "TETFN"),
    ("mmsa-ch-sims", "LF-DNN"),
    ("mmsa-ch-sims", "TETFN"),
    ("mmsa-ch-sims", "CENET"),
}


@pytest.mark.skipif(not PUBLISHED.exists(), reason="shared reference not present")
def test_every_number_equals_published_results() -> None:
    names = ["fine-mosi-mosei", "fine-ch-sims", "mmsa-mosi", "mmsa-mosei", "mmsa-ch-sims"]
    published = _published_tables()
    assert len(published) == len(names)
    for name, (datasets, rows) in zip(names, published, strict=True):
        table = paper_table(name)
        assert [b.dataset for b in table.blocks] == datasets, name
        noted = [r for r in table.rows if (name, r.label) not in BEYOND_THE_NOTES]
        assert [r.label for r in noted] == [label for label, _ in rows], name
        for row, (_, values) in zip(noted, rows, strict=True):
            for dataset, numbers in zip(datasets, values, strict=True):
                assert row.reported[dataset] == tuple(numbers), (name, row.label, dataset)


# ------------------------------------------------------------------------------- validation

VALID = {
    "name": "demo",
    "title": "Demo",
    "citation": {"authors": "Someone, A.", "year": 2024, "title": "A paper", "venue": "Conf"},
    "acc2_variant": "non0",
    "note": "none",
    "blocks": [
        {
            "dataset": "MOSI",
            "columns": [
                {"label": "Acc-2", "metric": "acc2_non0", "scale": 100},
                {"label": "F1", "metric": "f1_non0", "scale": 100},
                {"label": "Acc-7", "metric": "acc7", "scale": 100},
            ],
        }
    ],
    "rows": [{"label": "TFN", "method": "tfn", "reported": {"MOSI": [80.8, 80.7, 34.9]}}],
}


def _write(directory: Path, tables: list[dict], file: str = "demo.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file
    path.write_text(yaml.safe_dump({"tables": tables}), encoding="utf-8")
    return path


def _broken(edit) -> dict:
    table = yaml.safe_load(yaml.safe_dump(VALID))  # deep copy
    edit(table)
    return table


def _set(keys: tuple, value):
    def edit(table: dict) -> None:
        target = table
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


CASES = {
    "unknown metric": (
        _set(("blocks", 0, "columns", 0, "metric"), "acc_2"),
        "tables[0].blocks[0].columns[0].metric",
        "unknown metric 'acc_2'",
    ),
    "unknown method": (
        _set(("rows", 0, "method"), "tfm"),
        "tables[0].rows[0].method",
        "did you mean 'tfn'",
    ),
    "wrong number of values": (
        _set(("rows", 0, "reported", "MOSI"), [80.8, 80.7]),
        "tables[0].rows[0].reported.MOSI",
        "expected a list of 3 values",
    ),
    "unknown block dataset": (
        _set(("rows", 0, "reported"), {"MOSEI": [1.0, 2.0, 3.0]}),
        "tables[0].rows[0].reported.MOSEI",
        "unknown block dataset 'MOSEI'",
    ),
    "scale not positive": (
        _set(("blocks", 0, "columns", 1, "scale"), 0),
        "tables[0].blocks[0].columns[1].scale",
        "expected a positive number",
    ),
    "bad acc2 variant": (
        _set(("acc2_variant",), "has-0"),
        "tables[0].acc2_variant",
        "expected one of has0, non0, both, unspecified",
    ),
    "missing key": (
        lambda table: table.pop("citation"),
        "tables[0].citation",
        "missing required key",
    ),
    "citation not a mapping": (
        _set(("citation",), "Someone (2024)"),
        "tables[0].citation",
        "expected a mapping",
    ),
    "citation year not a year": (
        _set(("citation", "year"), 24),
        "tables[0].citation.year",
        "expected a year such as 2026, or null",
    ),
    "citation unknown key": (
        _set(("citation", "tabel"), "Table 2"),
        "tables[0].citation.tabel",
        "did you mean 'table'",
    ),
    "citation missing authors": (
        lambda table: table["citation"].pop("authors"),
        "tables[0].citation.authors",
        "missing (required key)",
    ),
    "unknown key": (
        _set(("rows", 0, "reproted"), None),
        "tables[0].rows[0].reproted",
        "unknown key",
    ),
    "value not a number": (
        _set(("rows", 0, "reported", "MOSI"), [80.8, "80.7", 34.9]),
        "tables[0].rows[0].reported.MOSI[1]",
        "expected a finite number",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_yaml_names_file_and_key(tmp_path: Path, case: str) -> None:
    edit, key, expected = CASES[case]
    path = _write(tmp_path, [_broken(edit)])
    with pytest.raises(ConfigError) as caught:
        load_paper_tables(tmp_path, method_names=("tfn", "lmf"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: ")
    assert expected in message


def test_unknown_method_is_checked_against_the_method_registry(tmp_path: Path) -> None:
    _write(tmp_path, [_broken(_set(("rows", 0, "method"), "self-mm"))])
    with pytest.raises(ConfigError, match="did you mean 'self_mm'"):
        load_paper_tables(tmp_path)


def test_duplicate_table_names_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path, [VALID], "a.yaml")
    second = _write(tmp_path, [VALID], "b.yaml")
    with pytest.raises(ConfigError) as caught:
        load_paper_tables(tmp_path, method_names=("tfn",))
    message = str(caught.value)
    assert message.startswith(f"{second}: tables[0].name: duplicate paper table name 'demo'")
    assert str(first) in message


def test_valid_file_loads_nulls_as_missing(tmp_path: Path) -> None:
    table = _broken(_set(("rows",), [{"label": "X", "method": None, "reported": None}]))
    _write(tmp_path, [VALID | {"name": "other"}, table])
    loaded = load_paper_tables(tmp_path, method_names=("tfn",))
    assert [t.name for t in loaded] == ["other", "demo"]
    assert loaded[1].rows[0].reported == {} and loaded[1].rows[0].method is None
    assert loaded[1].rows[0].reported_for(loaded[1].blocks[0]) == (None, None, None)
    citation = loaded[0].citation
    assert (citation.authors, citation.year, citation.table, citation.url) == (
        "Someone, A.", 2024, None, None,
    )  # fmt: skip
    assert citation.text() == "Someone, A. (2024). A paper. Conf."
    assert loaded[0].registry_file == (tmp_path / "demo.yaml").as_posix()
