"""The rank and paper stages on hand-made comparison tables and run records: a CD diagram
across three datasets, a clear report with one dataset, and paper tables with reported beside
reproduced values."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness import paths
from harness.config import parse_params
from harness.config.sections import CompareConfig
from harness.errors import DataError
from harness.metrics import METRICS
from harness.records import RunResult
from harness.reports.comparison_files import frame_to_csv
from harness.stages import paper as paper_stage
from harness.stages import rank as rank_stage
from harness.statistics.comparison import compare_values

REPO = Path(__file__).resolve().parents[1]
FAST = CompareConfig(ci_resamples=500, aso=False)
LEVELS = {"lf_dnn": 0.70, "tfn": 0.75, "mult": 0.80}  # mult best everywhere, lf_dnn worst


def _params(project: Path, benchmark: list[str], **paper):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for name in benchmark:
        raw["datasets"].setdefault(name, dict(raw["datasets"]["synth"]))
    raw["benchmark"] = {"datasets": benchmark, "methods": list(LEVELS)}
    raw["probe"] = {"datasets": [], "methods": []}
    raw["seeds"] = [1, 2, 3]
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    raw["paper"].update(paper)
    return parse_params(raw)


def _metrics(level: float, seed: int) -> dict[str, float]:
    values = {m: level + 0.005 * seed for m in METRICS["mosi"]}
    values["mae"] = 1.5 - level
    return values


def _write_tables(datasets: list[str]) -> None:
    for offset, dataset in enumerate(datasets):
        values = {
            method: {seed: _metrics(level + 0.01 * offset, seed) for seed in (1, 2, 3)}
            for method, level in LEVELS.items()
        }
        frame = compare_values(dataset, values, METRICS["mosi"], FAST)
        path = paths.tables_dir() / f"{dataset}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(frame_to_csv(frame))


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_rank_across_three_datasets_draws_cd_diagrams(project: Path) -> None:
    datasets = ["synth", "synth_b", "synth_c"]
    _write_tables(datasets)
    summary = rank_stage.run(_params(project, datasets))
    acc = summary["acc2_non0"]
    assert acc["n_datasets"] == 3
    assert acc["mean_ranks"] == {"mult": 1.0, "tfn": 2.0, "lf_dnn": 3.0}  # by hand
    assert summary["mae"]["mean_ranks"]["mult"] == 1.0  # lower MAE ranks first
    # Friedman chi2 = 12N/(k(k+1)) * sum(R^2) - 3N(k+1) = 12*3/12 * (1+4+9) - 36 = 6
    assert acc["friedman_statistic"] == pytest.approx(6.0)
    assert acc["friedman_p"] == pytest.approx(np.exp(-3.0))  # chi2 with 2 dof: exp(-x/2)
    for metric in summary:
        assert (paths.ranks_dir() / f"cd-{metric}.png").is_file()
        assert (paths.ranks_dir() / f"cd-{metric}.pdf").is_file()
    assert json.loads((paths.RESULTS / "ranks.json").read_text()) == summary
    assert "Friedman chi² = 6.000" in (paths.ranks_dir() / "ranks.md").read_text()


def test_rank_with_one_dataset_explains_instead_of_crashing(project: Path) -> None:
    _write_tables(["synth"])
    summary = rank_stage.run(_params(project, ["synth"]))
    assert summary["acc2_non0"]["mean_ranks"] is None
    assert summary["acc2_non0"]["ranks_per_dataset"]["synth"]["mult"] == 1.0
    report = (paths.ranks_dir() / "ranks.md").read_text()
    assert "No Friedman test and no CD diagram" in report and "at least 2" in report
    assert not list(paths.ranks_dir().glob("cd-*.png"))


def _record(dataset: str, method: str, seed: int, metrics: dict) -> RunResult:
    return RunResult(
        method=method, dataset=dataset, seed=seed, split="test", metrics=metrics,
        valid_metrics={}, hparams={}, config_hash="0" * 64, data_hash="1" * 64,
        git_commit="x", package_versions={}, wall_time_s=1.0, best_epoch=1, epochs_run=1,
        device="cpu",
    )  # fmt: skip


def test_papers_stage_puts_reported_beside_reproduced(project: Path) -> None:
    for method, level in LEVELS.items():
        for seed in (1, 2, 3):
            _record("synth", method, seed, _metrics(level, seed)).save(
                paths.run_record("synth", method, seed)
            )
    params = _params(
        project, ["synth"], tables=["mmsa-mosi", "fine-mosi-mosei"],
        datasets={"MOSI": "synth", "MOSEI": None},
    )  # fmt: skip
    written = paper_stage.run(params)
    assert [p.name for p in written] == ["mmsa-mosi.md", "fine-mosi-mosei.md", "README.md"]
    assert sorted(p.name for p in paths.papers_dir().iterdir()) == sorted(
        [f"{name}.{suffix}" for name in ("mmsa-mosi", "fine-mosi-mosei")
         for suffix in ("md", "tex", "csv")] + ["README.md"]
    )  # fmt: skip
    index = (paths.papers_dir() / "README.md").read_text()
    assert "| [mmsa-mosi](mmsa-mosi.md) " in index and "2 of 11 written" in index
    text = (paths.papers_dir() / "mmsa-mosi.md").read_text()
    # TFN's reported Has0 Acc-2 is 77.99; reproduced 0.75 + 0.005 * seed -> 76.00 ± 0.50
    assert "77.99" in text and "76.00 ± 0.50" in text and "(-1.99)" in text
    assert "method not run" in text  # TETFN, CENET are implemented but not in this run
    fine = (paths.papers_dir() / "fine-mosi-mosei.md").read_text()
    assert "dataset not mapped" in fine  # MOSEI
    assert r"\toprule" in (paths.papers_dir() / "fine-mosi-mosei.tex").read_text()


MINILM = {
    "name": "all-MiniLM-L6-v2", "revision": "1110a243", "sha256": "53aa51172d14" + "0" * 52,
}  # fmt: skip


def test_paper_tables_name_the_text_model_of_their_runs(project: Path) -> None:
    """Runs that read token ids put the text model's name, revision and checksum, and how each
    method used it, on a line of its own under the paper table (.md and .tex)."""
    for method, level in LEVELS.items():
        encoder = "fine-tuned" if method == "mult" else "features"
        for seed in (1, 2, 3):
            record = _record("synth", method, seed, _metrics(level, seed))
            replace(record, text_model={**MINILM, "encoder": encoder}).save(
                paths.run_record("synth", method, seed)
            )
    params = _params(project, ["synth"], tables=["mmsa-mosi"], datasets={"MOSI": "synth"})
    paper_stage.run(params)
    text = (paths.papers_dir() / "mmsa-mosi.md").read_text()
    line = (
        "- Text model: all-MiniLM-L6-v2@1110a243 (weights sha256 53aa51172d14); its frozen "
        "token states read as features by lf_dnn, tfn; fine-tuned by mult."
    )
    assert line in text.splitlines()
    tex = (paths.papers_dir() / "mmsa-mosi.tex").read_text()
    assert (
        r"Text model: all-MiniLM-L6-v2@1110a243 (weights sha256 53aa51172d14); its frozen "
        r"token states read as features by lf\_dnn, tfn; fine-tuned by mult.\par"
    ) in tex


def test_paper_tables_without_token_runs_have_no_text_model_line(project: Path) -> None:
    for method, level in LEVELS.items():
        for seed in (1, 2, 3):
            _record("synth", method, seed, _metrics(level, seed)).save(
                paths.run_record("synth", method, seed)
            )
    paper_stage.run(_params(project, ["synth"], tables=["mmsa-mosi"], datasets={"MOSI": "synth"}))
    assert "Text model" not in (paths.papers_dir() / "mmsa-mosi.md").read_text()


def test_papers_stage_writes_only_tables_with_runs_and_an_index(project: Path) -> None:
    for seed in (1, 2, 3):
        _record("synth", "tfn", seed, _metrics(0.75, seed)).save(
            paths.run_record("synth", "tfn", seed)
        )
    params = _params(project, ["synth"])  # the default mapping: MOSI -> mosi_bclstm, not run
    written = paper_stage.run(params)
    assert [p.name for p in written] == ["README.md"]
    assert [p.name for p in paths.papers_dir().iterdir()] == ["README.md"]
    index = (paths.papers_dir() / "README.md").read_text()
    assert "0 of 11 written" in index
    mmsa = next(line for line in index.splitlines() if line.startswith("| mmsa-mosi "))
    assert "MOSI -> `mosi_bclstm` (no runs)" in mmsa
    assert "add `mosi_bclstm` to `benchmark.datasets` in params.yaml" in mmsa
    assert "`mosi_bclstm`: adding it to a finished default run took 12 min 5 s" in mmsa
    sims = next(line for line in index.splitlines() if line.startswith("| fine-ch-sims "))
    assert "CH-SIMS -> not mapped" in sims and "map CH-SIMS to a project dataset" in sims
    with pytest.raises(DataError, match="add mosi_bclstm to benchmark.datasets") as caught:
        paper_stage.run_one(params, "mmsa-mosi")
    assert "\n" not in str(caught.value) and "'mmsa-mosi'" in str(caught.value)
    with pytest.raises(DataError, match="none of its datasets \\(CH-SIMS\\) is mapped"):
        paper_stage.run_one(params, "fine-ch-sims")


def test_paper_one_table_updates_the_index(project: Path) -> None:
    for seed in (1, 2, 3):
        _record("synth", "tfn", seed, _metrics(0.75, seed)).save(
            paths.run_record("synth", "tfn", seed)
        )
    params = _params(project, ["synth"], datasets={"MOSI": "synth", "MOSEI": None})
    path = paper_stage.run_one(params, "mmsa-mosi")
    assert path.name == "mmsa-mosi.md" and path.is_file()
    index = (paths.papers_dir() / "README.md").read_text()
    assert "| [mmsa-mosi](mmsa-mosi.md) " in index and "1 of 11 written" in index


def test_a_cross_validation_group_fills_its_paper_table_with_the_fold_and_seed_mean(
    project: Path,
) -> None:
    """MUStARD's five folds are datasets of one group; the paper table's reproduced cell is the
    mean over every fold and seed of the mapped group (here two folds x three seeds)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for fold in ("cv_f1", "cv_f2"):
        raw["datasets"][fold] = {**raw["datasets"]["synth"], "kind": "binary", "group": "cv"}
    raw["benchmark"] = {"datasets": ["cv_f1", "cv_f2"], "methods": ["ridge"]}
    raw["probe"] = {"datasets": [], "methods": []}
    raw["seeds"] = [1, 2, 3]
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    raw["paper"].update(tables=["mustard-text"], datasets={"MUStARD": "cv"})
    params = parse_params(raw)
    assert params.groups["cv"] == ("cv_f1", "cv_f2")
    scores = []
    for f, fold in enumerate(("cv_f1", "cv_f2")):
        for seed in (1, 2, 3):
            value = 0.6 + 0.02 * f + 0.01 * seed
            scores.append(value)
            metrics = {"accuracy": value, "f1_weighted": value, "precision": value,
                       "recall": value, "auc": value}  # fmt: skip
            _record(fold, "ridge", seed, metrics).save(paths.run_record(fold, "ridge", seed))
    paper_stage.run(params)
    text = (paths.papers_dir() / "mustard-text.md").read_text()
    mean = 100 * sum(scores) / len(scores)
    assert f"{mean:.1f} ±" in text and "65.1" in text
    # a fold missing a seed leaves the method out of the group, rather than averaging fewer
    paths.run_record("cv_f2", "ridge", 3).unlink()
    with pytest.raises(DataError, match="every fold at every seed.*add cv_f1, cv_f2 to"):
        paper_stage.run_one(params, "mustard-text")
