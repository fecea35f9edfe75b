"""The registry of published paper tables, read from the data files `harness/papers/*.yaml`.

Each YAML file holds ``tables:``, a list of tables; each table is the paper's own layout:

- ``name`` (the CLI name and the output file stem, ``[a-z0-9-]``), ``title``, ``citation`` (the
  publication the numbers come from, a mapping parsed strictly into `PaperCitation`: ``authors``,
  ``year``, ``title``, ``venue``, ``table`` (which of its tables, null where not known) and
  ``url``), ``acc2_variant`` and ``note``. The rendered tables cite the publication and the
  YAML file inside this project that holds the numbers (`PaperTable.registry_file`, set when the
  file is read);
- ``blocks``: one per paper dataset in the paper's order, ``{dataset: MOSI, columns: [...]}``;
  a column is ``{label: "Acc-2", metric: acc2_non0, scale: 100, decimals: 2}``: ``metric`` is
  a project metric (`harness.metrics.METRICS`), ``scale`` turns the project's value (a fraction)
  into the paper's unit (100 for percent and for MMSA's x100 MAE/Corr, 1 otherwise), ``decimals``
  (default 2) is how many decimals the rendered table shows;
- ``rows`` in the paper's order: ``{label: TFN, method: tfn, reported: {MOSI: [80.8, ...]}}``,
  ``method: null`` for a method this project does not implement, ``reported: null`` (or a block's
  dataset left out, or a single value null) where no number is public; ``bold: true`` marks the
  row the paper prints in bold (its own method).

Decisions:

- ``acc2_variant`` is one of has0 | non0 | both | unspecified. "both" is for tables that give
  has-0 and non-0 columns side by side (MMSA); "unspecified" (FINE) is compared with the
  project's non-0 metrics, the usual reading of a bare "Acc-2", and the table's note says so.
- MMSA's result table is registered as three tables (mmsa-mosi, mmsa-mosei, mmsa-ch-sims), not
  one with three blocks: every dataset has its own row set (MTFN only on CH-SIMS,
  ALMT and TFR-Net on none) and columns, and one table would be 22 metric columns (44 cells) wide.
- FINE's tables are named by their datasets (fine-mosi-mosei, fine-ch-sims, fine-ur-funny): the
  reference calls them "Tables 1-4" without saying which is which.
- Every table of every file goes into ONE `Registry[PaperTable]` ("paper table"), built on first
  use, so an unknown name gets the registry's "did you mean" message. Method names are checked
  against the method registry (`methods.METHODS`, imported lazily: it imports torch).
- Bad files raise ConfigError with one line: the file, the key path (``tables[0].rows[3].reported
  .MOSI``) and what was expected.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError, UnknownNameError
from harness.metrics import metric_info
from harness.registry import Registry
from harness.schema import checked, parse_section

__all__ = [
    "ACC2_VARIANTS",
    "PAPERS_DIR",
    "PaperBlock",
    "PaperCitation",
    "PaperColumn",
    "PaperRow",
    "PaperTable",
    "load_paper_tables",
    "paper_table",
    "paper_table_names",
    "paper_tables",
]

PAPERS_DIR = Path(__file__).parent  # the YAML files beside this module
_PROJECT_ROOT = PAPERS_DIR.parents[1]
ACC2_VARIANTS: tuple[str, ...] = ("has0", "non0", "both", "unspecified")
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class PaperColumn:
    """One metric column of a paper block; `scale` converts the project's value to the paper's."""

    label: str
    metric: str
    scale: float = 1.0
    decimals: int = 2


@dataclass(frozen=True)
class PaperBlock:
    """The columns a paper shows for one of its datasets (e.g. "MOSI")."""

    dataset: str
    columns: tuple[PaperColumn, ...]


@dataclass(frozen=True)
class PaperRow:
    """One row of a paper table. `reported` maps a block's dataset to one value per column (paper
    units, None where empty); a dataset without public numbers is absent. `method` is the project
    method it corresponds to, None if not implemented."""

    label: str
    method: str | None
    reported: Mapping[str, tuple[float | None, ...]]
    bold: bool = False

    def reported_for(self, block: PaperBlock) -> tuple[float | None, ...]:
        """The reported values for `block`, one per column (None where not public)."""
        return tuple(self.reported.get(block.dataset, (None,) * len(block.columns)))


def _year(value: int | None) -> str | None:
    return None if value is None or 1900 <= value <= 2100 else "a year such as 2026, or null"


@dataclass(frozen=True)
class PaperCitation:
    """The publication a table's reported numbers come from, as a reference list gives it.
    `table` says which of its tables (None where the source does not say); `year` None where
    not known (a repository without releases)."""

    authors: str
    title: str
    venue: str  # proceedings, journal, preprint server or repository
    year: int | None = checked(None, check=_year)
    table: str | None = None
    url: str | None = None

    def text(self) -> str:
        """One plain-text reference: authors (year). Title. Venue, table. URL."""
        year = "n.d." if self.year is None else str(self.year)
        where = f"{self.venue}, {self.table}" if self.table else self.venue
        return f"{self.authors} ({year}). {self.title.rstrip('.')}. {where}." + (
            f" {self.url}" if self.url else ""
        )


@dataclass(frozen=True)
class PaperTable:
    """A published table in the paper's layout: blocks (datasets) x columns, rows in order.
    `registry_file` is the YAML file that registers it (relative to the project when inside)."""

    name: str
    title: str
    citation: PaperCitation
    acc2_variant: str
    note: str
    blocks: tuple[PaperBlock, ...]
    rows: tuple[PaperRow, ...]
    registry_file: str = ""

    def has_reported(self) -> bool:
        """Whether any reported number of the table is public (not a layout-only table)."""
        return any(v is not None for row in self.rows for vs in row.reported.values() for v in vs)


# ------------------------------------------------------------------------------------ registry


@functools.cache
def _registry() -> Registry[PaperTable]:
    registry: Registry[PaperTable] = Registry("paper table")
    for table in load_paper_tables(PAPERS_DIR):
        registry.register(table.name)(table)
    return registry


def paper_tables() -> Registry[PaperTable]:
    """Every registered paper table by name."""
    return _registry()


def paper_table(name: str) -> PaperTable:
    """The registered table `name`; UnknownNameError (with "did you mean") otherwise."""
    return _registry().get(name)


def paper_table_names() -> list[str]:
    """Names of all registered paper tables, sorted."""
    return _registry().names()


# -------------------------------------------------------------------------------------- loading


def load_paper_tables(
    directory: str | Path, method_names: Collection[str] | None = None
) -> list[PaperTable]:
    """Every table of every ``*.yaml`` file in `directory` (files in name order, tables in file
    order), validated. `method_names` are the valid method names (default: the method registry).
    ConfigError (one line: file, key, expectation) on any problem, including a table name that
    two tables share and a directory without YAML files."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{directory}: no paper-table files (*.yaml) found")
    check_method = _method_checker(method_names)
    tables: list[PaperTable] = []
    origin: dict[str, Path] = {}
    for path in files:
        for index, table in enumerate(_load_file(path, check_method)):
            if table.name in origin:
                raise ConfigError(
                    f"{path}: tables[{index}].name: duplicate paper table name {table.name!r} "
                    f"(already defined in {origin[table.name]}); expected a unique name"
                )
            origin[table.name] = path
            tables.append(table)
    return tables


def _method_checker(method_names: Collection[str] | None) -> Callable[[str], str | None]:
    """A function: method name -> None if registered, else the registry's "unknown" message."""
    if method_names is None:
        from methods import METHOD_MODULES  # the catalog: no method is imported

        method_names = METHOD_MODULES.names()
    known: Registry[str] = Registry("method")
    for name in method_names:
        known.register(name)(name)
    return lambda name: None if name in known else known.unknown_message(name)


class _Where:
    """The file and key path of a value, for one-line errors."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key

    def __truediv__(self, part: str | int) -> _Where:
        suffix = f"[{part}]" if isinstance(part, int) else f".{part}"
        return _Where(self.path, f"{self.key}{suffix}" if self.key else str(part))

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.key}: {message}")


def _load_file(path: Path, check_method: Callable[[str], str | None]) -> list[PaperTable]:
    root = _Where(path, "")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict) or set(raw) != {"tables"}:
        raise ConfigError(f"{path}: expected a mapping with the single key 'tables'")
    tables = raw["tables"]
    where = root / "tables"
    if not isinstance(tables, list) or not tables:
        raise where.fail("expected a non-empty list of tables")
    return [_parse_table(entry, where / i, check_method) for i, entry in enumerate(tables)]


_TABLE_KEYS = ("name", "title", "citation", "acc2_variant", "note", "blocks", "rows")


def _parse_table(raw: Any, where: _Where, check_method: Callable[[str], str | None]) -> PaperTable:
    _check_keys(raw, where, required=_TABLE_KEYS)
    name = _text(raw["name"], where / "name")
    if not _NAME_PATTERN.match(name):
        raise (where / "name").fail(f"expected lowercase letters, digits and '-', got {name!r}")
    variant = raw["acc2_variant"]
    if variant not in ACC2_VARIANTS:
        raise (where / "acc2_variant").fail(
            f"expected one of {', '.join(ACC2_VARIANTS)}, got {variant!r}"
        )
    blocks = _parse_blocks(raw["blocks"], where / "blocks")
    rows_raw = raw["rows"]
    if not isinstance(rows_raw, list) or not rows_raw:
        raise (where / "rows").fail("expected a non-empty list of rows")
    rows = tuple(
        _parse_row(entry, where / "rows" / i, blocks, check_method)
        for i, entry in enumerate(rows_raw)
    )
    _check_unique([row.label for row in rows], where / "rows", "row label")
    return PaperTable(
        name=name,
        title=_text(raw["title"], where / "title"),
        citation=parse_section(
            PaperCitation, raw["citation"], (where / "citation").key, str(where.path)
        ),
        acc2_variant=variant,
        note=_text(raw["note"], where / "note"),
        blocks=blocks,
        rows=rows,
        registry_file=_project_path(where.path),
    )


def _project_path(path: Path) -> str:
    """`path` relative to the project root when inside it ("harness/papers/fine.yaml")."""
    try:
        return path.resolve().relative_to(_PROJECT_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _parse_blocks(raw: Any, where: _Where) -> tuple[PaperBlock, ...]:
    if not isinstance(raw, list) or not raw:
        raise where.fail("expected a non-empty list of blocks (one per paper dataset)")
    blocks = []
    for i, entry in enumerate(raw):
        _check_keys(entry, where / i, required=("dataset", "columns"))
        columns_raw = entry["columns"]
        if not isinstance(columns_raw, list) or not columns_raw:
            raise (where / i / "columns").fail("expected a non-empty list of columns")
        columns = tuple(
            _parse_column(column, where / i / "columns" / j) for j, column in enumerate(columns_raw)
        )
        _check_unique([c.label for c in columns], where / i / "columns", "column label")
        blocks.append(PaperBlock(_text(entry["dataset"], where / i / "dataset"), columns))
    _check_unique([b.dataset for b in blocks], where, "block dataset")
    return tuple(blocks)


def _parse_column(raw: Any, where: _Where) -> PaperColumn:
    _check_keys(raw, where, required=("label", "metric", "scale"), optional=("decimals",))
    metric = _text(raw["metric"], where / "metric")
    try:
        metric_info(metric)
    except UnknownNameError as exc:
        raise (where / "metric").fail(str(exc)) from None
    scale = _number(raw["scale"], where / "scale")
    if scale <= 0:
        raise (where / "scale").fail(f"expected a positive number, got {raw['scale']!r}")
    decimals = raw.get("decimals", 2)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise (where / "decimals").fail(f"expected an integer from 0 to 6, got {decimals!r}")
    return PaperColumn(_text(raw["label"], where / "label"), metric, scale, decimals)


def _parse_row(
    raw: Any,
    where: _Where,
    blocks: tuple[PaperBlock, ...],
    check_method: Callable[[str], str | None],
) -> PaperRow:
    _check_keys(raw, where, required=("label", "method", "reported"), optional=("bold",))
    method = raw["method"]
    if method is not None:
        problem = check_method(_text(method, where / "method"))
        if problem is not None:
            raise (where / "method").fail(f"{problem}; or null for a method not implemented")
    bold = raw.get("bold", False)
    if not isinstance(bold, bool):
        raise (where / "bold").fail(f"expected true or false, got {bold!r}")
    reported = _parse_reported(raw["reported"], where / "reported", blocks)
    return PaperRow(_text(raw["label"], where / "label"), method, reported, bold)


def _parse_reported(
    raw: Any, where: _Where, blocks: tuple[PaperBlock, ...]
) -> dict[str, tuple[float | None, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise where.fail("expected null or a mapping {dataset: [one value per column]}")
    widths = {block.dataset: len(block.columns) for block in blocks}
    reported: dict[str, tuple[float | None, ...]] = {}
    for dataset, values in raw.items():
        if dataset not in widths:
            raise (where / str(dataset)).fail(
                f"unknown block dataset {dataset!r}; expected one of {', '.join(widths)}"
            )
        if values is None:
            continue
        if not isinstance(values, list) or len(values) != widths[dataset]:
            got = f"{len(values)} values" if isinstance(values, list) else repr(values)
            raise (where / str(dataset)).fail(
                f"expected a list of {widths[dataset]} values (one per column of block "
                f"{dataset!r}, null where empty), got {got}"
            )
        reported[dataset] = tuple(
            None if v is None else _number(v, where / str(dataset) / k)
            for k, v in enumerate(values)
        )
    return reported


# -------------------------------------------------------------------------------- value checks


def _check_keys(
    raw: Any, where: _Where, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    if not isinstance(raw, dict):
        raise where.fail(f"expected a mapping with keys {', '.join(required + optional)}")
    for key in required:
        if key not in raw:
            raise (where / key).fail("missing required key")
    for key in raw:
        if key not in required + optional:
            raise (where / str(key)).fail(
                f"unknown key; expected keys: {', '.join(required + optional)}"
            )


def _text(value: Any, where: _Where) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.fail(f"expected a non-empty string, got {value!r}")
    return value.strip()


def _number(value: Any, where: _Where) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise where.fail(f"expected a finite number, got {value!r}")
    return float(value)


def _check_unique(values: list[str], where: _Where, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise where.fail(f"duplicate {what} {value!r}; expected each once")
        seen.add(value)
