"""Faults: a tuning or training process killed with SIGKILL mid-way resumes without losing or
duplicating trials, seeds or MLflow runs; a half-written output is never read; a full disk or an
unwritable results folder is one clear line; a NaN fails only its trial; the same stage run twice
gives the same metrics and tables."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from project_params import set_nested
from test_pipeline import TINY_SYNTH as PIPELINE_TINY_SYNTH

from harness import cli, paths
from harness.config import parse_params
from harness.records import RunResult, load_records
from harness.stages import compare as compare_stage
from harness.stages import fetch as fetch_stage
from harness.stages import train as train_stage
from harness.stages import tune as tune_stage
from harness.tuning.storage import FAILURE_ATTR, RETRY_ATTR

REPO = Path(__file__).resolve().parents[1]
TINY_SYNTH = {**PIPELINE_TINY_SYNTH, "n_train": 64}  # a little more data per trial


def _raw(project: Path, **changes) -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"] = {"synth": raw["datasets"]["synth"]}
    raw["datasets"]["synth"]["synthetic"] = dict(TINY_SYNTH)
    raw["benchmark"]["methods"] = ["lf_dnn"]
    raw["probe"] = {"datasets": [], "methods": []}
    raw["paper"]["datasets"] = {}
    raw["seeds"] = [1, 2, 3]
    raw["tune"].update(n_trials=4, max_epochs=3, patience=3)
    raw["train"].update(max_epochs=3, patience=3, workers=1)
    raw["num_threads"] = 1
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    return set_nested(raw, changes)


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    fetch_stage.run(parse_params(_raw(tmp_path)), "synth")
    return tmp_path


def _msabench(project: Path, raw: dict, *args: str) -> subprocess.Popen:
    """`msabench --params <file> ARGS` in a child process (the one the test kills)."""
    params_file = project / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "harness", "-q", "--params", str(params_file), *args]
    return subprocess.Popen(command, cwd=project, env=env, stderr=subprocess.PIPE, text=True)


def _kill_when(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL `process` at a point where `ready()` is true; fail if it ends or times out first.

    `ready()` is polled while the process runs and confirmed with it stopped (SIGSTOP): a
    process still running could move past the point between the check and the kill (finish
    the trial seen running and start the next, whose MLflow run does not exist yet). If the
    confirmation fails, or cannot read what the stopped process holds locked, it goes on."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"the process ended before the kill point: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the kill point was not reached in time")
        if ready():
            process.send_signal(signal.SIGSTOP)
            if _holds_while_stopped(ready):
                break
            process.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # a stopped process dies at once
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _holds_while_stopped(ready) -> bool:
    try:
        return bool(ready())
    except Exception:  # e.g. SQLite locked by the stopped writer: not this time
        return False


def _study(project: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(paths.study_storage("synth", "lf_dnn")))
    )
    [summary] = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _runs(project: Path, stage: str) -> list:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("msabench/synth")
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`msabench.stage` = '{stage}'"
    )


@pytest.mark.slow
def test_tuning_killed_mid_trial_resumes_without_lost_or_duplicated_trials(project) -> None:
    raw = _raw(project, tune__max_epochs=40, tune__patience=40)  # trials long enough to kill
    storage = paths.study_storage("synth", "lf_dnn")

    def second_trial_running() -> bool:
        if not storage.is_file():
            return False
        try:
            trials = _study(project).get_trials(deepcopy=False)
        except (ValueError, KeyError):  # the journal is being created
            return False
        states = [t.state for t in trials]
        if not (optuna.trial.TrialState.COMPLETE in states and states[-1].name == "RUNNING"):
            return False
        # ... and its MLflow run has started
        return any(
            r.data.tags.get("msabench.trial") == str(trials[-1].number)
            for r in _runs(project, "tune")
        )

    _kill_when(_msabench(project, raw, "tune", "synth", "lf_dnn"), second_trial_running)
    killed = _study(project).get_trials(deepcopy=False)
    killed_number = killed[-1].number
    assert killed[-1].state.name == "RUNNING" and not paths.best_params_file(
        "synth", "lf_dnn"
    ).exists()  # fmt: skip

    tune_stage.run(parse_params(raw), "synth", "lf_dnn")  # resume
    trials = _study(project).get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 4  # the budget, exactly
    assert states[killed_number] == "FAIL" and states.count("FAIL") == 1  # the killed trial
    retries = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == killed_number]
    assert len(retries) == 1 and retries[0].params == trials[killed_number].params
    assert [t.number for t in trials] == list(range(len(trials)))  # none lost, none twice
    trial_runs = [r for r in _runs(project, "tune") if "msabench.trial" in r.data.tags]
    numbers = sorted(int(r.data.tags["msabench.trial"]) for r in trial_runs)
    assert numbers == list(range(len(trials)))  # one MLflow run per trial, no duplicates
    stale = [r for r in trial_runs if int(r.data.tags["msabench.trial"]) == killed_number]
    assert (
        stale[0].info.status == "FAILED" and stale[0].data.tags["msabench.trial_state"] == "STALE"
    )
    assert paths.best_params_file("synth", "lf_dnn").is_file()


@pytest.mark.slow
def test_training_killed_mid_way_keeps_finished_seeds(project) -> None:
    raw = _raw(project, train__max_epochs=40, train__patience=40)
    params = parse_params(raw)
    tune_stage.run(params, "synth", "lf_dnn")
    resume = paths.train_resume("synth", "lf_dnn")

    def first_seed_kept() -> bool:
        return any(resume.glob("*/seed-1"))

    _kill_when(_msabench(project, raw, "train", "synth", "lf_dnn"), first_seed_kept)
    [kept] = list(resume.glob("*/seed-1"))
    kept_record = RunResult.load(kept / paths.run_record("synth", "lf_dnn", 1).name)
    first_run = {
        r.info.run_id for r in _runs(project, "train") if r.data.tags["msabench.seed"] == "1"
    }
    # what the killed run left in results/runs is never read as a result
    assert load_records(paths.all_runs()) == []

    train_stage.run(params, "synth", "lf_dnn")  # resume: seed 1 kept, seeds 2 and 3 trained
    records = load_records(paths.all_runs())
    assert [r.seed for r in records] == [1, 2, 3]
    assert records[0] == kept_record  # seed 1 was not trained again
    runs = _runs(project, "train")
    assert sorted(r.data.tags["msabench.seed"] for r in runs) == ["1", "2", "3"]  # no duplicate
    assert {r.info.run_id for r in runs if r.data.tags["msabench.seed"] == "1"} == first_run
    assert all(r.info.status == "FINISHED" for r in runs)
    assert not resume.exists()  # cleared once the run completed
    assert not [
        p for p in paths.runs_dir("synth", "lf_dnn").parent.iterdir() if p.name.startswith(".")
    ]


def test_nan_in_one_trial_fails_that_trial_and_the_study_goes_on(project, monkeypatch) -> None:
    from harness.errors import NonFiniteLossError
    from harness.training import loop as training

    real_fit, calls = training.fit, []

    def diverges_on_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise NonFiniteLossError("non-finite loss at epoch 1 (synth/lf_dnn, seed 42)")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", diverges_on_second_trial)
    tune_stage.run(parse_params(_raw(project, tune__n_trials=3)), "synth", "lf_dnn")
    trials = _study(project).get_trials(deepcopy=False)
    assert [t.state.name for t in trials].count("FAIL") == 1
    assert "non-finite" in trials[1].user_attrs[FAILURE_ATTR]
    assert len(trials) == 3  # the failed trial counts to the budget: no endless retries
    assert paths.best_params_file("synth", "lf_dnn").is_file()


def test_full_disk_is_one_line_and_leaves_nothing_half_written(
    project, monkeypatch, capsys
) -> None:
    params_file = project / "params.yaml"
    params_file.write_text(yaml.safe_dump(_raw(project), sort_keys=False))
    assert cli.main(["-q", "--params", str(params_file), "tune", "synth", "lf_dnn"]) == 0
    capsys.readouterr()  # optuna's own log lines
    real_replace = os.replace

    def disk_full(source, target):
        if "runs" in str(target):
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", disk_full)
    status = cli.main(["-q", "--params", str(params_file), "train", "synth", "lf_dnn"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert "No space left on device" in error and "ENOSPC" in error and "runs" in error
    assert not paths.runs_dir("synth", "lf_dnn").exists()
    assert load_records(paths.all_runs()) == []  # the leftovers are temporary, never read


def test_results_folder_that_cannot_be_written_is_one_line(project, capsys) -> None:
    params_file = project / "params.yaml"
    params_file.write_text(yaml.safe_dump(_raw(project), sort_keys=False))
    (project / "results").mkdir(exist_ok=True)
    (project / "results" / "tuning").write_text("a file where a folder belongs")
    status = cli.main(["-q", "--params", str(params_file), "tune", "synth", "lf_dnn"])
    lines = capsys.readouterr().err.strip().splitlines()
    [error] = [line for line in lines if line.startswith("msabench:")]  # MLflow logs aside
    assert status == 2
    assert error.startswith("msabench: error: cannot write results/tuning")
    assert "ENOTDIR" in error or "EEXIST" in error


def _without_cost(markdown: str, csv: bytes) -> tuple[str, bytes]:
    """A comparison table's Markdown and CSV without what the runs cost (their seconds and
    memory differ from run to run, as `wall_time_s` does): the cost block, the `cost_*`
    columns."""
    start = markdown.index("Cost (mean over seeds):")
    markdown = markdown[:start] + markdown[markdown.index("95% confidence intervals", start) :]
    frame = pd.read_csv(io.BytesIO(csv))
    kept = frame[[c for c in frame.columns if not c.startswith("cost_")]]
    return markdown, kept.to_csv(index=False).encode()


def test_same_stage_twice_gives_identical_metrics_and_tables(project) -> None:
    from harness.stages import train as train_stage
    from harness.stages import tune as tune_stage

    params = parse_params(_raw(project, tune__n_trials=2))
    tune_stage.run(params, "synth", "lf_dnn")
    train_stage.run(params, "synth", "lf_dnn")
    compare_stage.run(params)
    first_records = [r.metrics for r in load_records(paths.all_runs())]
    first = _without_cost(
        (paths.tables_dir() / "synth.md").read_text(),
        (paths.tables_dir() / "synth.csv").read_bytes(),
    )
    train_stage.run(params, "synth", "lf_dnn")  # the same stage again, same seeds, on CPU
    compare_stage.run(params)
    assert [r.metrics for r in load_records(paths.all_runs())] == first_records
    again = _without_cost(
        (paths.tables_dir() / "synth.md").read_text(),
        (paths.tables_dir() / "synth.csv").read_bytes(),
    )
    assert again == first  # byte-identical but for the measured cost
