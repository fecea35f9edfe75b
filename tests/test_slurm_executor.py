"""The cluster executor (harness/execution/): the heavy stages as submitit jobs.

Against a real single-node SLURM cluster started for the tests (tests/slurm_cluster.py:
slurmctld, slurmd and munged on 127.0.0.1) and a real PostgreSQL server (tests/postgres_server.py):

- a grid of 2 methods x 3 seeds, tuned and trained through SLURM jobs, writes what the local
  executor writes: the same best hyperparameters and, seed by seed, the same records,
  predictions and weights, bit for bit (only the measured times and memory differ);
- tuning as 2 worker jobs joining one PostgreSQL study keeps the study's budget: every trial
  number once, none lost, both workers' MLflow parents;
- a training job killed mid-way (SIGKILL) is resubmitted, keeps the seed it finished, and
  leaves one MLflow run per seed, none twice.

submitit's own local executor (where there is no SLURM) is checked the same way. Each skips,
saying why, where its servers cannot start.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from postgres_server import postgres_server
from project_params import set_nested
from slurm_cluster import slurm_cluster
from test_pipeline import TINY_SYNTH

from harness import paths
from harness.config import parse_params
from harness.config.sections import ExecutorConfig
from harness.errors import ConfigError
from harness.execution import queue, submission
from harness.execution.dispatch import run_tune
from harness.execution.submission import JobFailedError, JobSpec
from harness.records import RunResult
from harness.stages import fetch as fetch_stage
from harness.stages import train as train_stage
from harness.stages import tune as tune_stage
from harness.training.checkpoints import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
METHODS = ("lf_dnn", "tfn")
SEEDS = [1, 2, 3]
MEASURED = ("cost", "wall_time_s")  # what a run measures rather than computes


def _raw(project: Path, executor: dict | None = None, **changes) -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"] = {"synth": raw["datasets"]["synth"]}
    raw["datasets"]["synth"]["synthetic"] = {**TINY_SYNTH, "n_train": 64}
    raw["benchmark"]["methods"] = list(METHODS)
    raw["probe"] = {"datasets": [], "methods": []}
    raw["paper"]["datasets"] = {}
    raw["seeds"] = SEEDS
    raw["tune"].update(n_trials=3, max_epochs=3, patience=3)
    raw["train"].update(max_epochs=4, patience=4, workers=1)
    raw["num_threads"] = 1
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    if executor is not None:
        raw["executor"] = {"kind": "slurm", "poll_s": 0.5, "max_retries": 2, **executor}
    return set_nested(raw, changes)


def _project(root: Path, raw: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _run_stage(root, fetch_stage, "synth")
    return root


def _run_stage(root: Path, stage, *args: str) -> None:
    """`stage.run` in this process, in the project at `root`, with its params.yaml."""
    with contextlib.chdir(root):
        stage.run(parse_params(yaml.safe_load(Path("params.yaml").read_text())), *args)


def _msabench(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    environment = {**os.environ, **env, "MLFLOW_DISABLE_TELEMETRY": "true",
                   "PYTHONPATH": str(REPO)}  # fmt: skip
    command = [sys.executable, "-m", "harness", "--params", "params.yaml", *args]
    return subprocess.Popen(command, cwd=project, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _ok(project: Path, env: dict[str, str], *args: str) -> str:
    process = _msabench(project, env, *args)
    output = process.communicate(timeout=900)[0]
    assert process.returncode == 0, output
    return output


def _grid(project: Path, env: dict[str, str]) -> None:
    for method in METHODS:
        _ok(project, env, "tune", "synth", method)
        _ok(project, env, "train", "synth", method)
    _ok(project, env, "robustness", "synth")


def _assert_same_robustness(local: Path, other: Path) -> None:
    """The missing-modality records and their area tables, byte for byte."""
    folder = paths.robustness_dir("synth")
    for name in ("records.json", "areas.csv", "lost_areas.csv"):
        assert (local / folder / name).read_bytes() == (other / folder / name).read_bytes(), name


def _assert_same_runs(local: Path, other: Path, method: str) -> None:
    """Seed by seed: the same record (but what it measured), predictions and weights."""
    relative = paths.runs_dir("synth", method)
    for seed in SEEDS:
        ours = RunResult.load(local / paths.run_record("synth", method, seed)).to_dict()
        theirs = RunResult.load(other / paths.run_record("synth", method, seed)).to_dict()
        for key in MEASURED:
            ours.pop(key), theirs.pop(key)
        assert ours == theirs, (method, seed)
        name = paths.run_predictions("synth", method, seed).name
        assert (local / relative / name).read_bytes() == (other / relative / name).read_bytes()
        name = paths.run_checkpoint("synth", method, seed).name
        a = load_checkpoint(local / relative / name).state
        b = load_checkpoint(other / relative / name).state
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (method, seed)


def _train_runs(tracking_uri: str) -> list:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("msabench/synth")
    return client.search_runs(
        [experiment.experiment_id], filter_string="tags.`msabench.stage` = 'train'"
    )


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory) -> Path:
    """The grid run by the local executor: the reference every other executor must equal."""
    root = tmp_path_factory.mktemp("local")
    project = _project(root, _raw(root))
    _grid(project, {})
    return project


@pytest.fixture(scope="module")
def cluster():
    with slurm_cluster(cpus=2) as env:
        yield env


# -- settings and the queue check (no cluster) -------------------------------------------------


def test_several_tuning_jobs_without_postgresql_is_one_line(tmp_path) -> None:
    params = parse_params(_raw(tmp_path, executor={"tune_jobs": 2}))
    with pytest.raises(ConfigError, match=r"executor\.tune_jobs: 2 worker jobs share one study "
                       r"through PostgreSQL; set executor\.study_storage"):  # fmt: skip
        run_tune(params, "synth", "lf_dnn", None, 0)


def test_executor_settings_are_strict(tmp_path) -> None:
    raw = _raw(tmp_path, executor={"slurm": {"partiton": "gpu"}})
    with pytest.raises(ConfigError, match=r"executor\.slurm\.partiton.*partition"):
        parse_params(raw)
    with pytest.raises(ConfigError, match=r"executor\.kind"):
        parse_params(_raw(tmp_path, executor={"kind": "pbs"}))


def test_no_stage_depends_on_the_executor() -> None:
    """Switching executors must rerun nothing: no stage lists `executor` among its params, so a
    cluster run's outputs are recorded as a local run's and a second `dvc repro` is a no-op."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        listed = [p if isinstance(p, str) else next(iter(p)) for p in body.get("params", [])]
        assert not [p for p in listed if p.split(".")[0] == "executor"], name


def test_queue_check_reads_squeue(monkeypatch) -> None:
    answers = {
        "12": subprocess.CompletedProcess([], 0, "RUNNING\n", ""),
        "13": subprocess.CompletedProcess([], 0, "", ""),
        "14": subprocess.CompletedProcess(
            [], 1, "", "slurm_load_jobs error: Invalid job id specified"
        ),
        "15": subprocess.CompletedProcess([], 1, "", "slurm_load_jobs error: Unable to contact"),
    }
    monkeypatch.setattr(queue.subprocess, "run", lambda command, **_: answers[command[3]])
    assert not queue.left_queue("12")  # running
    assert queue.left_queue("13")  # no longer listed
    assert queue.left_queue("14")  # forgotten by slurmctld
    assert not queue.left_queue("15")  # squeue failing is no reason to resubmit


# -- resubmission, on submitit's local executor ------------------------------------------------


def test_job_that_leaves_no_result_is_resubmitted_then_reported(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(submission, "RESULT_GRACE_S", 0.2)
    config = ExecutorConfig(kind="slurm", cluster="local", max_retries=1, poll_s=0.2)
    spec = JobSpec("vanishing", os._exit, (9,))  # ends the job's process: no result written
    with pytest.raises(JobFailedError, match=r"vanishing: job \d+ ended without a result .* "
                       r"after 1 resubmission\(s\); its log: .*_log\.err"):  # fmt: skip
        submission.run_jobs(config, tmp_path, [spec])
    assert len(list(tmp_path.glob("*_log.err"))) == 2  # the job and its one resubmission


def test_job_whose_function_raises_is_not_resubmitted(tmp_path) -> None:
    config = ExecutorConfig(kind="slurm", cluster="local", max_retries=2, poll_s=0.2)
    ok = JobSpec("fine", abs, (-3,))
    failing = JobSpec("broken", int, ("seven",))  # raises ValueError inside the job
    assert submission.run_jobs(config, tmp_path / "ok", [ok]) == [3]
    with pytest.raises(JobFailedError, match=r"failed: ValueError: invalid literal for int"):
        submission.run_jobs(config, tmp_path / "failing", [failing])
    assert len(list((tmp_path / "failing").glob("*_log.err"))) == 1  # not run again


# -- submitit's local executor (no SLURM) ------------------------------------------------------


@pytest.mark.slow
def test_submitit_local_executor_writes_what_a_local_run_writes(local_grid, tmp_path) -> None:
    project = _project(tmp_path / "submitit-local", _raw(tmp_path / "submitit-local",
                       executor={"cluster": "local"}))  # fmt: skip
    _grid(project, {})
    for method in METHODS:
        best = paths.best_params_file("synth", method)
        assert (project / best).read_bytes() == (local_grid / best).read_bytes()
        _assert_same_runs(local_grid, project, method)
    _assert_same_robustness(local_grid, project)
    assert sorted((project / "results" / ".jobs" / "train" / "synth").iterdir())


# -- the real SLURM cluster --------------------------------------------------------------------


@pytest.mark.slow
def test_slurm_grid_writes_what_the_local_executor_writes(local_grid, cluster, tmp_path) -> None:
    project = _project(tmp_path / "slurm", _raw(tmp_path / "slurm", executor={
        "cluster": "slurm", "slurm": {"cpus_per_job": 1, "time_min": 10}}))  # fmt: skip
    _grid(project, cluster)
    for method in METHODS:
        best = paths.best_params_file("synth", method)
        assert (project / best).read_bytes() == (local_grid / best).read_bytes()
        _assert_same_runs(local_grid, project, method)
        logs = sorted((project / paths.jobs_dir("train", "synth", method)).glob("*_log.err"))
        assert len(logs) == 1 and f"{method}/synth seed 3: test" in logs[0].read_text()
    _assert_same_robustness(local_grid, project)
    assert len(list((project / paths.jobs_dir("robustness", "synth")).glob("*_log.err"))) == 1
    runs = _train_runs(f"sqlite:///{project / 'mlflow.db'}")
    assert sorted((r.data.tags["msabench.method"], r.data.tags["msabench.seed"]) for r in runs) \
        == sorted((m, str(s)) for m in METHODS for s in SEEDS)  # fmt: skip
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.slow
def test_two_tuning_jobs_share_one_postgresql_study(cluster, tmp_path) -> None:
    import optuna

    with postgres_server() as server:
        project = tmp_path / "tune-jobs"
        raw = _raw(project, executor={
            "cluster": "slurm", "tune_jobs": 2, "study_storage": f"{server}/optuna",
            "slurm": {"cpus_per_job": 1, "time_min": 10}}, tune__n_trials=6)  # fmt: skip
        raw["mlflow"]["tracking_uri"] = f"{server}/mlflow"  # two writers: a server, not SQLite
        _project(project, raw)
        output = _ok(project, cluster, "tune", "synth", "lf_dnn")
        assert "tune-synth-lf_dnn-worker0: submitted job" in output
        assert "tune-synth-lf_dnn-worker1: submitted job" in output
        [summary] = optuna.get_all_study_summaries(f"{server}/optuna")
        trials = optuna.load_study(study_name=summary.study_name,
                                   storage=f"{server}/optuna").get_trials()  # fmt: skip
        assert sorted(t.number for t in trials) == list(range(6))  # the budget, none twice
        assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}  # none lost
        client = MlflowClient(raw["mlflow"]["tracking_uri"])
        experiment = client.get_experiment_by_name("msabench/synth")
        tuning = client.search_runs([experiment.experiment_id],
                                    filter_string="tags.`msabench.stage` = 'tune'")  # fmt: skip
        parents = [r for r in tuning if "msabench.trial" not in r.data.tags]
        assert sorted(r.data.tags["msabench.worker"] for r in parents) == ["0", "1"]
        assert sorted(int(r.data.tags["msabench.trial"]) for r in tuning
                      if "msabench.trial" in r.data.tags) == list(range(6))  # fmt: skip
        best = (project / paths.best_params_file("synth", "lf_dnn")).read_text()
        assert f'"study_name": "{summary.study_name}"' in best


@pytest.mark.slow
def test_killed_training_job_is_resubmitted_without_lost_or_duplicated_seeds(
    cluster, tmp_path
) -> None:
    long = {"train__max_epochs": 150, "train__patience": 150}
    reference = _project(tmp_path / "reference", _raw(tmp_path / "reference", **long))
    project = _project(tmp_path / "killed", _raw(tmp_path / "killed", executor={
        "cluster": "slurm", "slurm": {"cpus_per_job": 1, "time_min": 10}}, **long))  # fmt: skip
    for root in (reference, project):  # the same tuned hyperparameters for both
        _run_stage(root, tune_stage, "synth", "lf_dnn")
    process = _msabench(project, cluster, "train", "synth", "lf_dnn")
    resume = project / paths.train_resume("synth", "lf_dnn")
    deadline = time.monotonic() + 300
    while not any(resume.glob("*/seed-1")):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "seed 1 did not finish in time"
        time.sleep(0.1)
    [kept] = list(resume.glob("*/seed-1"))
    kept_record = RunResult.load(kept / paths.run_record("synth", "lf_dnn", 1).name)
    environment = {**os.environ, **cluster}
    listed = subprocess.run(["squeue", "--noheader", "--format", "%i"], env=environment,
                            capture_output=True, text=True, check=True)  # fmt: skip
    [job_id] = listed.stdout.split()
    # The job's Python process dies at once (SIGKILL, as the OOM killer or a lost node would do
    # it). `scancel` is no test of this: SLURM sends SIGTERM first, which submitit ignores, and
    # SIGKILL only after KillWait, by when a fast machine has finished the remaining seeds (the
    # job then rightly counts as done and nothing is resubmitted). --signal=KILL is the same.
    folder = project / paths.jobs_dir("train", "synth", "lf_dnn")
    subprocess.run(["pkill", "-KILL", "-f", f"submitit.core._submit {folder}$"], check=True)
    output = process.communicate(timeout=900)[0]
    assert process.returncode == 0, output
    assert f"job {job_id} ended without a result" in output and "resubmitting (1 of 2)" in output

    train_runs = project / paths.runs_dir("synth", "lf_dnn")
    record = train_runs / paths.run_record("synth", "lf_dnn", 1).name
    assert RunResult.load(record) == kept_record  # not trained again
    _run_stage(reference, train_stage, "synth", "lf_dnn")
    _assert_same_runs(reference, project, "lf_dnn")
    runs = _train_runs(f"sqlite:///{project / 'mlflow.db'}")
    assert sorted(r.data.tags["msabench.seed"] for r in runs) == ["1", "2", "3"]  # none twice
    assert all(r.info.status == "FINISHED" for r in runs)
    assert not resume.exists()
    logs = sorted((project / paths.jobs_dir("train", "synth", "lf_dnn")).glob("*_log.err"))
    assert len(logs) == 2  # the killed job's log and its resubmission's
