"""The cost table under a comparison table: per method, what it cost to train and run (a
`harness.statistics.cost.cost_frame`), as Markdown, as a booktabs LaTeX float, and as columns
of the comparison CSV. Nothing here computes a statistic.

Decisions:

- A small table of its own, below the metric table, so that one stays readable: trained
  parameters ("1.23M"), seconds per epoch and in total, milliseconds per test sample, peak host
  memory and, when any run had one, peak GPU memory (MiB), then the device; each the mean over
  the method's seeds. Three significant digits: these numbers vary between runs. In LaTeX it is
  set as the metric tables are (small, 4 pt between columns), or smaller where that would be
  wider than the page (`cost_table_width`).
- The note under it states the inference batch size and test-set size, what each number covers
  and that it is measured, not reproduced; in LaTeX the device moves there too (the column would
  not fit the page).
"""

from __future__ import annotations

import math

import pandas as pd

from harness.reports.latex import TEXT_WIDTH_PT, latex_escape, table_float, text_width

__all__ = [
    "cost_latex",
    "cost_markdown",
    "cost_table_width",
    "format_count",
    "format_measure",
    "has_costs",
    "with_cost_columns",
]

# (font size, column space in pt): the metric tables' first; smaller only where that is too wide
_LAYOUTS = (("small", 4.0), ("footnotesize", 4.0), ("footnotesize", 2.0))


def has_costs(cost: pd.DataFrame | None) -> bool:
    """True if `cost` (a `cost_frame`, or None) has a method with a measured run: only then is
    a cost table written."""
    return cost is not None and bool(len(cost)) and bool((cost["n_runs"] > 0).any())


def format_count(value: float) -> str:
    """A parameter count with 3 significant digits and a unit: "812", "35.4k", "1.23M", "n/a"."""
    if math.isnan(value):
        return "n/a"
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{_significant(value / scale)}{unit}"
    return f"{value:.0f}"


def format_measure(value: float) -> str:
    """A measured time or size with 3 significant digits, thousands separated: "0.0123",
    "0.100", "4.56", "78.9", "1,234", "n/a"."""
    if value is None or math.isnan(value):
        return "n/a"
    return _significant(value)


def _significant(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:#.3g}"  # "#": trailing zeros kept (0.100)


def _columns(cost: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(frame column, Markdown header, LaTeX header) of the cost table's numeric columns; the
    GPU peak only when a method has one, the total parameters only when they differ."""
    columns = [("parameters_trained", "Params (trained)", "Params")]
    if (cost["parameters_total"] != cost["parameters_trained"]).any():
        columns.append(("parameters_total", "Params (total)", "Total"))
    columns += [
        ("train_seconds_per_epoch", "Train s/epoch", "s/epoch"),
        ("train_seconds_total", "Train s total", "s total"),
        ("inference_ms_per_sample", "Infer ms/sample", "ms/sample"),
        ("peak_host_memory_mb", "Peak host MB", "Host MB"),
    ]
    if _any_gpu(cost):
        columns.append(("peak_gpu_memory_mb", "Peak GPU MB", "GPU MB"))
    return columns


def _cell(column: str, value: float) -> str:
    return format_count(value) if column.startswith("parameters") else format_measure(value)


def _note(cost: pd.DataFrame, escape=str) -> str:
    """The sentences under the cost table."""
    measured = cost[cost["n_runs"] > 0]
    if measured.empty:
        return escape("Cost: no run of this table has a recorded cost.")
    batches = "; ".join(dict.fromkeys(str(b) for b in measured["inference_batch_size"]))
    samples = "; ".join(dict.fromkeys(str(n) for n in measured["inference_samples"]))
    runs = sorted(set(measured["n_runs"].astype(int)))
    seeds = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}–{runs[-1]}"
    text = (
        f"Cost: mean over {seeds} seed{'s' if runs[-1] != 1 else ''} per method, measured in the "
        "train stage (not reproducible bit for bit: it varies with the machine and its load). "
        "Params: trained parameters (requires_grad). Train s: the fit, every epoch with its "
        f"validation pass. Inference: the test split's {samples} samples in batches of "
        f"{batches}, end to end (to the device, forward, back). Peak host MB: the high-water "
        "resident set (ru_maxrss, MiB) of the process that trained the seed, its baseline "
        "included" + ("; GPU MB: peak memory of torch's tensors (MiB)." if _any_gpu(cost) else ".")
    )
    missing = cost.loc[cost["n_runs"] == 0, "method"].tolist()
    if missing:
        text += (
            f" {', '.join(missing)}: no cost recorded (run records written before costs were "
            "measured; re-run its train stage)."
        )
    return escape(text)


def _any_gpu(cost: pd.DataFrame) -> bool:
    return bool(cost["peak_gpu_memory_mb"].notna().any())


def cost_markdown(cost: pd.DataFrame) -> str:
    """The "Cost" block (a heading line, the table, the note) of one dataset's `cost_frame`."""
    columns = _columns(cost)
    table = pd.DataFrame(
        {header: [_cell(column, v) for v in cost[column]] for column, header, _ in columns},
        index=pd.Index(cost["method"], name="method"),
    )
    table["Device"] = [device or "n/a" for device in cost["device"]]
    align = ("left",) + ("right",) * len(columns) + ("left",)
    markdown = table.to_markdown(colalign=align, disable_numparse=True)
    return f"Cost (mean over seeds):\n\n{markdown}\n\n{_note(cost)}\n"


def cost_latex(dataset: str, cost: pd.DataFrame) -> str:
    """One booktabs `table` float of one dataset's `cost_frame`; the devices in the caption."""
    columns = _columns(cost)
    lines = [
        r"\begin{tabular}{l" + "r" * len(columns) + "}",
        r"\toprule",
        " & ".join(["Method", *(header for _, _, header in columns)]) + r" \\",
        r"\midrule",
        *(
            " & ".join(
                [
                    latex_escape(str(row["method"])),
                    *(latex_escape(_cell(c, row[c])) for c, _, _ in columns),
                ]
            )
            + r" \\"
            for _, row in cost.iterrows()
        ),  # fmt: skip
        r"\bottomrule",
        r"\end{tabular}",
    ]
    caption = f"{latex_escape(dataset)}: {_note(cost, latex_escape)} {_devices(cost)}"
    label = "tab:" + "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset) + "-cost"
    size, tabcolsep = _layout(cost)
    return table_float(caption, label, ["\n".join(lines)], size, tabcolsep)


def _layout(cost: pd.DataFrame) -> tuple[str, float]:
    """The first of `_LAYOUTS` whose tabular fits the text width (the last one otherwise)."""
    for size, tabcolsep in _LAYOUTS:
        if cost_table_width(cost, size, tabcolsep) <= TEXT_WIDTH_PT:
            return size, tabcolsep
    return _LAYOUTS[-1]


def _devices(cost: pd.DataFrame) -> str:
    """The LaTeX sentence naming where each method ran (one device: said once)."""
    measured = cost[cost["n_runs"] > 0]
    devices = list(dict.fromkeys(measured["device"]))
    if len(devices) == 1:
        return f"Device: {latex_escape(devices[0])}."
    listed = "; ".join(
        f"{latex_escape(str(row['method']))}: {latex_escape(str(row['device']))}"
        for _, row in measured.iterrows()
    )
    return f"Devices: {listed}."


def cost_table_width(
    cost: pd.DataFrame, size: str | None = None, tabcolsep: float | None = None
) -> float:
    """Estimated width in pt of `cost_latex`'s tabular at `size` with `tabcolsep` pt between
    columns (default: the layout `cost_latex` picks)."""
    if size is None or tabcolsep is None:
        size, tabcolsep = _layout(cost)
    columns = _columns(cost)
    width = max(text_width(str(m), size) for m in ["Method", *cost["method"]])
    for column, _, header in columns:
        cells = [text_width(_cell(column, v), size) for v in cost[column]]
        width += max(text_width(header, size), *cells)
    return width + 2 * tabcolsep * (len(columns) + 1)


def with_cost_columns(frame: pd.DataFrame, cost: pd.DataFrame) -> pd.DataFrame:
    """The comparison `frame` with its method's cost as `cost_<name>` columns on every row
    (the CSV's view; NaN/"" for a method without a cost)."""
    renamed = cost.rename(columns={c: f"cost_{c}" for c in cost.columns if c != "method"})
    return frame.merge(renamed, on="method", how="left")
