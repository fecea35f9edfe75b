"""What a run costs: measured by `run_seed` for every seed (parameters counted as the model has
them, memory, seconds, device), averaged per method by `cost_frame`, shown as the cost table
under the comparison table (Markdown, LaTeX, CSV columns) and as accuracy against training time.
Costs are not deterministic, so nothing here compares their values across runs."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from harness.config.sections import CompareConfig
from harness.metrics import METRICS
from harness.records import RunCost, RunResult
from harness.reports.comparison_figures import accuracy_cost_figure
from harness.reports.comparison_files import read_comparison_csv, write_comparison
from harness.reports.cost import (
    cost_latex,
    cost_markdown,
    cost_table_width,
    format_count,
    format_measure,
    has_costs,
)
from harness.reports.latex import TEXT_WIDTH_PT
from harness.reports.tables import render_markdown
from harness.statistics.comparison import compare_dataset
from harness.statistics.cost import accuracy_cost_points, cost_frame
from harness.training.cost import describe_device, parameter_counts, peak_host_memory_mb
from harness.training.loop import LoopConfig, build_model
from harness.training.seed_runs import SeedTask, run_seed
from methods import METHODS


def _cost(seconds: float, **changes) -> RunCost:
    values = {
        "parameters_total": 1_234_567, "parameters_trained": 1_000_000,
        "peak_host_memory_mb": 800.0, "peak_gpu_memory_mb": None,
        "train_seconds_total": seconds, "train_seconds_per_epoch": seconds / 10,
        "inference_ms_per_sample": 0.05, "inference_batch_size": 256, "inference_samples": 24,
        "device": "cpu: AMD EPYC 7B13 (1 thread)",
    }  # fmt: skip
    return RunCost(**{**values, **changes})


def _record(method: str, seed: int, mae: float, cost: RunCost | None) -> RunResult:
    metrics = {**dict.fromkeys(METRICS["sims"], 0.7), "mae": mae, "corr": 0.5 + 0.01 * seed}
    return RunResult(
        method=method, dataset="d", seed=seed, split="test", metrics=metrics, valid_metrics={},
        hparams={}, config_hash="c", data_hash="d", git_commit="g", package_versions={},
        wall_time_s=1.0, best_epoch=1, epochs_run=2, device="cpu", cost=cost,
    )  # fmt: skip


def _records() -> list[RunResult]:
    """ "fast" (3 seeds, 10/20/30 s), "slow" (3 seeds, 100/200/300 s, a GPU peak on one),
    "old" (written before costs were measured)."""
    return [
        *(_record("fast", s, 0.9 + 0.01 * s, _cost(10.0 * s)) for s in (1, 2, 3)),
        *(
            _record("slow", s, 0.5 + 0.01 * s,
                    _cost(100.0 * s, parameters_trained=50_000, parameters_total=50_000,
                          peak_gpu_memory_mb=2048.0 if s == 1 else None))
            for s in (1, 2, 3)
        ),
        *(_record("old", s, 0.7, None) for s in (1, 2, 3)),
    ]  # fmt: skip


# ------------------------------------------------------------------------------ measurement


def test_run_seed_measures_its_cost(tiny_store) -> None:
    cls = METHODS.get("lf_dnn")
    loop = LoopConfig(max_epochs=2, patience=2, progress=False, num_threads=1)
    hparams = cls.resolve_hparams("mosi", {"batch_size": 16})
    outcome = run_seed(SeedTask("lf_dnn", hparams, tiny_store, "tiny", loop, seed=7))
    cost = outcome.cost
    from harness.data.loading import load_dataset

    spec, splits = load_dataset(tiny_store)
    model = build_model(cls, hparams, spec, 7)
    assert cost.parameters_total == sum(p.numel() for p in model.parameters())
    assert cost.parameters_trained == cost.parameters_total  # lf_dnn freezes nothing
    assert cost.peak_gpu_memory_mb is None and cost.device.startswith("cpu: ")
    assert cost.device.endswith("(1 thread)")
    assert cost.peak_host_memory_mb > 10  # a Python process with torch: well over 10 MiB
    epochs = [h.seconds for h in outcome.history]
    assert cost.train_seconds_per_epoch == pytest.approx(sum(epochs) / len(epochs))
    assert cost.train_seconds_total >= sum(epochs)
    assert cost.inference_samples == len(splits["test"]) == 32
    assert cost.inference_batch_size == loop.eval_batch_size
    assert 0 < cost.inference_ms_per_sample * cost.inference_samples / 1000 < outcome.wall_time_s


def test_parameter_counts_split_frozen_from_trained() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    model[0].requires_grad_(False)
    model.register_buffer("not_a_parameter", torch.zeros(100))
    assert parameter_counts(model) == (3 * 4 + 4 + 4 + 1, 4 + 1)
    assert peak_host_memory_mb() > 0
    assert describe_device(torch.device("cpu"), {"cpu": "X"}).startswith("cpu: X (")
    assert describe_device(torch.device("cuda"), {"gpu": "NVIDIA H100"}) == "cuda: NVIDIA H100"


# ---------------------------------------------------------------------------- the cost frame


def test_cost_frame_by_hand() -> None:
    cost = cost_frame(_records()).set_index("method")
    assert list(cost.index) == ["fast", "old", "slow"]
    fast, slow, old = cost.loc["fast"], cost.loc["slow"], cost.loc["old"]
    assert fast["n_runs"] == 3 and fast["train_seconds_total"] == pytest.approx(20.0)
    assert fast["train_seconds_total_std"] == pytest.approx(10.0)  # ddof=1 of 10, 20, 30
    assert fast["train_seconds_per_epoch"] == pytest.approx(2.0)
    assert fast["parameters_trained"] == 1_000_000 and math.isnan(fast["peak_gpu_memory_mb"])
    assert slow["peak_gpu_memory_mb"] == 2048.0  # the one run that had a GPU peak
    assert (
        fast["device"] == "cpu: AMD EPYC 7B13 (1 thread)" and fast["inference_batch_size"] == "256"
    )
    assert old["n_runs"] == 0 and math.isnan(old["train_seconds_total"]) and old["device"] == ""
    assert not has_costs(cost_frame([r for r in _records() if r.method == "old"]))
    assert has_costs(cost.reset_index()) and not has_costs(None)


def test_number_formats_by_hand() -> None:
    assert [format_count(v) for v in (812, 35_400, 1_234_567, 2.5e9)] == [
        "812", "35.4k", "1.23M", "2.50B",
    ]  # fmt: skip
    assert [format_measure(v) for v in (0.0123, 0.1, 4.561, 78.94, 123.4, 12_345.6)] == [
        "0.0123", "0.100", "4.56", "78.9", "123", "12,346",
    ]  # fmt: skip
    assert format_count(math.nan) == format_measure(math.nan) == "n/a"


# ------------------------------------------------------------------------------ the tables


def test_the_cost_table_sits_under_the_metric_table() -> None:
    records = _records()
    frame = compare_dataset(records, "sims", CompareConfig(ci_resamples=200, aso=False))
    cost = cost_frame(records)
    text = render_markdown(frame, cost)
    legend = text.index("Mean ± std over")
    block = text.index("Cost (mean over seeds):")
    assert legend < block < text.index("95% confidence intervals")
    lines = text[block:].splitlines()
    header = lines[2]
    for title in ("Params (trained)", "Params (total)", "Train s/epoch", "Train s total",
                  "Infer ms/sample", "Peak host MB", "Peak GPU MB", "Device"):  # fmt: skip
        assert title in header
    fast = next(line for line in lines if line.startswith("| fast"))
    assert "1.00M" in fast and "1.23M" in fast and "20.0" in fast and "2.00" in fast
    assert "0.0500" in fast and "800" in fast and "cpu: AMD EPYC 7B13 (1 thread)" in fast
    assert "n/a" in next(line for line in lines if line.startswith("| old"))
    assert "in batches of 256" in text and "test split's 24 samples" in text
    assert "old: no cost recorded" in text
    assert "Cost (mean over seeds)" not in render_markdown(frame)  # no cost given: no block


def test_the_cost_table_without_gpu_or_frozen_parameters_drops_those_columns() -> None:
    records = [_record("a", s, 0.5, _cost(5.0, parameters_total=1_000_000)) for s in (1, 2)]
    text = cost_markdown(cost_frame(records))
    assert "Peak GPU MB" not in text and "Params (total)" not in text and "GPU MB" not in text
    assert "mean over 2 seeds" in text


def test_the_latex_cost_table_fits_the_page_and_names_the_devices() -> None:
    records = _records()
    for i, method in enumerate(
        ["lf_dnn", "tfn", "lmf", "misa", "mult", "mmim", "self_mm", "fine", "mmmie", "fsrf",
         "ir_svr", "late_transformer", "vision_only"]
    ):  # fmt: skip
        device = "cuda: NVIDIA H100 80GB HBM3" if i % 2 else "cpu: AMD EPYC 7B13 (16 threads)"
        cost = _cost(12_345.0 * (i + 1), peak_gpu_memory_mb=65_432.1, device=device,
                     parameters_total=123_456_789)  # fmt: skip
        records.append(_record(method, 1, 0.5, cost))
    cost = cost_frame(records)
    tex = cost_latex("d_1", cost)
    assert r"\label{tab:d_1-cost}" in tex and "Devices: fast: cpu" in tex
    assert "Host MB" in tex and "GPU MB" in tex
    assert cost_table_width(cost) <= TEXT_WIDTH_PT
    one_device = cost_latex("d", cost_frame([r for r in _records() if r.method == "fast"]))
    assert "Device: cpu: AMD EPYC 7B13 (1 thread)." in one_device


def test_write_comparison_puts_the_cost_in_every_file(tmp_path) -> None:
    records = _records()
    frame = compare_dataset(records, "sims", CompareConfig(ci_resamples=200, aso=False))
    write_comparison(frame, records, tmp_path, cost_frame(records))
    assert "Cost (mean over seeds):" in (tmp_path / "d.md").read_text()
    assert r"\label{tab:d-cost}" in (tmp_path / "d.tex").read_text()
    csv = read_comparison_csv(tmp_path / "d.csv")
    assert len(csv) == len(frame) and list(csv["method"]) == list(frame["method"])
    fast = csv[csv["method"] == "fast"].iloc[0]
    assert fast["cost_parameters_trained"] == 1_000_000
    assert fast["cost_train_seconds_total"] == pytest.approx(20.0)
    assert fast["cost_device"] == "cpu: AMD EPYC 7B13 (1 thread)"


# ------------------------------------------------------------------------------- the figure


def test_accuracy_against_cost_points_and_figure() -> None:
    records = _records()
    frame = compare_dataset(records, "sims", CompareConfig(ci_resamples=200, aso=False))
    points = accuracy_cost_points(frame, cost_frame(records), "mae")
    assert list(points["method"]) == ["fast", "slow"]  # "old" has no cost: not drawn
    fast = points.iloc[0]
    assert fast["train_seconds_total"] == pytest.approx(20.0)
    assert fast["mean"] == pytest.approx(np.mean([0.91, 0.92, 0.93]))
    assert fast["std"] == pytest.approx(0.01) and fast["metric"] == "mae"
    figure = accuracy_cost_figure(points, "mae", "d: MAE against training time")
    try:
        ax = figure.axes[0]
        assert ax.get_xscale() == "log"
        assert " ".join(ax.get_ylabel().split()) == "MAE (↓ lower is better)"
        assert {t.get_text() for t in ax.texts} == {"fast", "slow"}
        assert figure.get_figwidth() <= 7
    finally:
        plt.close(figure)
    with pytest.raises(Exception, match="no method with a measured cost"):
        accuracy_cost_figure(pd.DataFrame(columns=points.columns), "mae", "empty")
