"""A text-only binary dataset (the shape of MUStARD, UR-FUNNY's task) through every stage: the
simple baselines tune on validation F1, train over seeds, the missing-modality protocol says it
does not apply, and the comparison tables report the binary metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from harness import paths
from harness.config import parse_params
from harness.records import load_records
from harness.stages import compare as compare_stage
from harness.stages import fetch as fetch_stage
from harness.stages import robustness as robustness_stage
from harness.stages import train as train_stage
from harness.stages import tune as tune_stage

REPO = Path(__file__).resolve().parents[1]


def _write_text_only_npz(directory: Path) -> None:
    """train/valid/test .npz: text (N, 6, 5) whose first feature's mean decides the class."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    for split, n in (("train", 60), ("valid", 30), ("test", 30)):
        lengths = rng.integers(2, 7, n)
        text = rng.normal(size=(n, 6, 5)).astype(np.float32)
        labels = (rng.random(n) < 0.5).astype(np.float32)
        text[:, :, 0] += (labels * 2 - 1)[:, None] * 1.5
        text[np.arange(6)[None, :] >= lengths[:, None]] = 0.0
        ids = np.array([f"{split}_{i}" for i in range(n)])
        np.savez(directory / f"{split}.npz", text=text, text_lengths=lengths, labels=labels,
                 ids=ids)  # fmt: skip


def _params(project: Path, datasets: dict, methods: list[str], trial_epochs: int, epochs: int):
    """params.yaml with `datasets` (name -> npz folder, group or None) of kind binary as the
    benchmark, `methods`, 2 seeds and short tuning and training."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, (folder, group) in datasets.items():
        declared = {"source": "file", "format": "npz", "kind": "binary", "path": str(folder)}
        raw["datasets"][name] = {**declared, "group": group} if group else declared
    raw["benchmark"] = {"datasets": list(datasets), "methods": methods}
    raw["probe"] = {"datasets": [], "methods": []}
    raw["seeds"] = [1, 2]
    raw["tune"].update(n_trials=trial_epochs, max_epochs=trial_epochs, patience=trial_epochs)
    raw["train"].update(max_epochs=epochs, patience=2, workers=1)
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    return parse_params(raw)


def test_a_text_only_binary_dataset_runs_every_stage(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write_text_only_npz(tmp_path / "raw")
    datasets = {"sarcasm": (tmp_path / "raw", None)}
    params = _params(tmp_path, datasets, ["ridge", "text_only"], trial_epochs=2, epochs=3)
    assert params.select_metric_for("sarcasm") == "f1_weighted"
    fetch_stage.run(params, "sarcasm")
    for method in ("ridge", "text_only"):
        tune_stage.run(params, "sarcasm", method)
        train_stage.run(params, "sarcasm", method)
    best = json.loads(paths.best_params_file("sarcasm", "text_only").read_text())
    assert best["select_metric"] == "f1_weighted"
    records = load_records(paths.all_runs())
    assert {(r.method, r.seed) for r in records} == {
        ("ridge", 1),
        ("ridge", 2),
        ("text_only", 1),
        ("text_only", 2),
    }
    for record in records:
        assert set(record.metrics) == {"accuracy", "f1_weighted", "precision", "recall", "auc"}
    ridge = [r for r in records if r.method == "ridge"]
    assert ridge[0].metrics == ridge[1].metrics  # closed form: every seed the same model
    assert ridge[0].metrics["accuracy"] > 0.7  # the class is linear in the pooled text
    assert robustness_stage.run(params, "sarcasm") == {}
    assert (
        "text only, so it is not evaluated"
        in (paths.robustness_dir("sarcasm") / "robustness.md").read_text()
    )
    compare_stage.run(params)
    header = next(
        line
        for line in (paths.tables_dir() / "sarcasm.md").read_text().splitlines()
        if line.startswith("| method")
    )
    assert "F1 (weighted)" in header and "AUC" in header and "MAE" not in header


def test_a_cross_validation_group_gets_a_table_over_its_folds(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for fold in ("cv_1", "cv_2"):
        _write_text_only_npz(tmp_path / fold)
    datasets = {fold: (tmp_path / fold, "cv") for fold in ("cv_1", "cv_2")}
    params = _params(tmp_path, datasets, ["ridge", "late_transformer"], trial_epochs=1, epochs=2)
    for fold in ("cv_1", "cv_2"):
        fetch_stage.run(params, fold)
        for method in ("ridge", "late_transformer"):
            tune_stage.run(params, fold, method)
            train_stage.run(params, fold, method)
    summary = compare_stage.run(params)
    records = load_records(paths.all_runs())
    ridge = [r.metrics["f1_weighted"] for r in records if r.method == "ridge"]
    assert len(ridge) == 4  # 2 folds x 2 seeds
    assert summary["cv"]["ridge"]["f1_weighted"] == sum(ridge) / 4
    text = (paths.tables_dir() / "cv.md").read_text()
    assert "Cross-validation group `cv`: 2 folds (cv_1, cv_2)" in text
    assert "over the 4 (fold, seed) runs" in text
    assert (paths.tables_dir() / "cv.csv").is_file() and (paths.tables_dir() / "cv.tex").is_file()
