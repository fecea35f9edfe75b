"""Distributed tuning against a real PostgreSQL server started on 127.0.0.1 for the test: three
worker processes join one study (`msabench tune ... --storage postgresql://... --worker K`),
MLflow tracking in the same server; a fixed total trial budget, no trial lost or duplicated.
Skipped, with the reason, where the PostgreSQL server binaries are not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from postgres_server import postgres_server

from harness import paths
from harness.config import parse_params
from harness.stages import fetch as fetch_stage

REPO = Path(__file__).resolve().parents[1]
BUDGET = 6
WORKERS = 3


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields the server URL (no database)."""
    with postgres_server() as server:
        yield server


@pytest.mark.slow
def test_three_workers_share_one_study_without_lost_or_duplicated_trials(
    postgres: str, tmp_path: Path, monkeypatch
) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from harness.tracking import Tracker

    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"] = {"synth": raw["datasets"]["synth"]}
    raw["datasets"]["synth"]["synthetic"].update(
        n_train=64, n_valid=24, n_test=24, max_lengths={"text": 8, "audio": 12, "vision": 10}
    )
    raw["benchmark"]["methods"] = ["lf_dnn"]
    raw["probe"] = {"datasets": [], "methods": []}
    raw["paper"]["datasets"] = {}
    raw["tune"].update(n_trials=BUDGET, max_epochs=3, patience=3)
    raw["num_threads"] = 1
    raw["mlflow"]["tracking_uri"] = f"{postgres}/mlflow"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    fetch_stage.run(parse_params(raw), "synth")
    Tracker(raw["mlflow"]["tracking_uri"]).experiment_id("synth")  # the tracking server's tables

    storage_url = f"{postgres}/optuna"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "-q",
                "tune",
                "synth",
                "lf_dnn",
                "--storage",
                storage_url,
                "--worker",
                str(k),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for k in range(WORKERS)
    ]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output

    [summary] = optuna.get_all_study_summaries(storage_url)
    study = optuna.load_study(study_name=summary.study_name, storage=storage_url)
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert len(trials) == BUDGET, states  # the fixed total budget, not 3 x 6
    assert set(states) <= {"COMPLETE", "PRUNED"}, states  # none lost (failed or left running)
    assert sorted(t.number for t in trials) == list(range(BUDGET))  # none duplicated

    client = MlflowClient(raw["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name("msabench/synth")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    trial_runs = [r for r in runs if "msabench.trial" in r.data.tags]
    assert sorted(int(r.data.tags["msabench.trial"]) for r in trial_runs) == list(range(BUDGET))
    assert all(r.info.status in ("FINISHED", "KILLED") for r in trial_runs)  # KILLED = pruned
    parents = [r for r in runs if r.data.tags.get("msabench.stage") == "tune"
               and "msabench.trial" not in r.data.tags]  # fmt: skip
    assert sorted(r.data.tags["msabench.worker"] for r in parents) == ["0", "1", "2"]
    parent_ids = {r.info.run_id for r in parents}
    assert all(r.data.tags["mlflow.parentRunId"] in parent_ids for r in trial_runs)
    by_worker = {r.data.tags["msabench.worker"] for r in trial_runs}
    assert len(by_worker) >= 2, by_worker  # the work was shared
    best = paths.best_params_file("synth", "lf_dnn").read_text()
    assert f'"study_name": "{summary.study_name}"' in best
