"""The parity tool's pure parts (bench/parity): the equivalence verdict, the bootstrap CI of a
difference of means, the scores both sides are read with, and the MMSA runner's epoch cap."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

PARITY = Path(__file__).resolve().parents[1] / "bench" / "parity"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"parity_{name}", PARITY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


report = _module("report")


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (-0.01, 0.02, "equivalent"),
        (-0.039, 0.039, "equivalent"),
        (-0.04, 0.01, "inconclusive"),  # touching the margin is not inside it
        (-0.01, 0.06, "inconclusive"),
        (0.04, 0.09, "different"),
        (-0.2, -0.05, "different"),
    ],
)
def test_verdict_against_the_margin(low, high, expected):
    assert report.verdict(low, high, 0.04) == expected


def test_difference_ci_by_hand():
    # constant sides: every resample has the same means, so the CI is the point difference
    diff, low, high = report.difference_ci(np.array([1.0, 1.0]), np.array([1.5, 1.5]), seed=0)
    assert (diff, low, high) == (0.5, 0.5, 0.5)
    # two values per side: resampled means take 3 values each ({a, (a+b)/2, b}); the 95% CI of
    # the difference lies within [min b - max a, max b - min a] and holds the point difference
    a, b = np.array([0.0, 1.0]), np.array([2.0, 4.0])
    diff, low, high = report.difference_ci(a, b, seed=1)
    assert diff == 2.5 and 1.0 <= low < diff < high <= 4.0
    with pytest.raises(ValueError, match="needs >= 2 scores per side"):
        report.difference_ci(np.array([1.0]), b, seed=0)


def test_scores_use_the_harness_metrics_in_table_units():
    truths = [2.0, -1.0, 0.5, -2.5]
    runs = [
        {"predictions": [1.5, -0.5, 1.0, -2.0], "labels": truths},  # every sign right
        {"predictions": [-1.0, -0.5, 1.0, -2.0], "labels": truths},  # one sign wrong
    ]
    values = report.scores("mosi", runs)
    assert values["mae"] == pytest.approx([0.5, 1.125])  # (0.5 * 4) / 4, (3 + 3 * 0.5) / 4
    assert values["acc2_non0"] == pytest.approx([100.0, 75.0])  # percent, as the tables show
    assert values["corr"][0] == pytest.approx(np.corrcoef(runs[0]["predictions"], truths)[0, 1])


def test_compare_and_overall_verdicts():
    base = {m: np.array([1.0, 1.01, 0.99, 1.0, 1.0]) for m in report.METRICS}
    same = report.compare(base, {m: v + 0.001 for m, v in base.items()})
    assert report.overall(same) == "equivalent"
    shifted = report.compare(base, {m: v + 10.0 for m, v in base.items()})
    assert report.overall(shifted) == "different"
    assert "| LF-DNN | MAE" in report.markdown({"lf_dnn": same}, {"lf_dnn": "LF-DNN"})
    assert report.counts(same) == "5 equivalent" and report.counts(shifted) == "5 different"


def test_mmsa_runner_caps_epochs_through_early_stop():
    runner = _module("mmsa_run")
    config = {"early_stop": 8}
    loader = runner._CountedPasses([1, 2, 3], config, cap=2)
    assert list(loader) == [1, 2, 3] and config["early_stop"] == 8 and len(loader) == 3
    list(loader)
    assert config["early_stop"] == 0 and loader.passes == 2


def test_report_compares_each_earlier_form_with_mmsa(tmp_path, monkeypatch):
    """A run folder beside the two sides (an earlier msabench form kept for an ablation) gets
    its own table against MMSA; the two sides' table is unchanged by it."""
    import json

    monkeypatch.syspath_prepend(str(PARITY.parents[1]))  # `bench.parity.report`, as `-m` finds it
    main = _module("__main__")
    rng = np.random.default_rng(0)
    labels = rng.uniform(-3, 3, 40).round(1).tolist()
    for side, noise in (("mmsa", 0.5), ("msabench", 0.5), ("msabench-rolling", 2.0)):
        for seed in (1, 2, 3):
            run = {
                "side": side, "model": "mmim", "seed": seed, "epochs": 1, "max_epochs": 1,
                "seconds": 1.0, "ids": list(range(40)), "labels": labels,
                "predictions": (np.asarray(labels) + rng.normal(0, noise, 40)).tolist(),
            }  # fmt: skip
            path = tmp_path / "runs" / side / "mmim" / f"seed-{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(run), encoding="utf-8")
    text = main._report(tmp_path, ["mmim"], [1, 2, 3])
    assert main._variant_sides(tmp_path) == ["msabench-rolling"]
    assert "An earlier msabench form, `msabench-rolling`" in text
    assert "| MMSA | msabench-rolling |" in text
    rows = [line for line in text.splitlines() if line.startswith("| MMIM | MAE |")]
    assert len(rows) == 2 and rows[0] != rows[1]  # the two sides, then the earlier form
