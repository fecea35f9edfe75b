"""Tuning studies and resumed training are keyed to all the code their stage runs.

In a temporary copy of harness/ and methods/: editing a module that can change the numbers (a
shared encoder in methods/common, the training loop) gives a new study name, so the tune stage
runs a fresh study instead of resuming one whose budget trials of the old code spent, and a
train run no longer keeps seeds an interrupted run of the old code finished; editing a module
that cannot change the numbers (MLflow tracking, table rendering, configuration parsing) keeps
both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from test_pipeline import _params

from harness import code_identity, paths
from harness.code_identity import code_digest, stage_files
from harness.records import TuningRecord, load_records
from harness.stages import fetch as fetch_stage
from harness.stages import train as train_stage
from harness.stages import tune as tune_stage

REPO = Path(__file__).resolve().parents[1]
NUMERIC = ["methods/common/encoders.py", "harness/training/loop.py", "harness/metrics.py"]
NEUTRAL = [
    "harness/tracking.py",
    "harness/reports/tables.py",
    "harness/config/params.py",
    "harness/provenance.py",
]


@pytest.fixture()
def code(tmp_path, monkeypatch) -> Path:
    """A copy of the project's code that the stages take as theirs."""
    root = tmp_path / "code"
    for package in ("harness", "methods"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    monkeypatch.setattr(code_identity, "ROOT", root)
    code_identity.forget_digests()
    yield root
    code_identity.forget_digests()


def _edit(root: Path, relative: str) -> None:
    """A change to the file's bytes (a comment), then forget the digests computed so far."""
    with open(root / relative, "a", encoding="utf-8") as file:
        file.write("\n# edited by tests/test_code_identity.py\n")
    code_identity.forget_digests()


def test_the_walk_follows_function_level_imports_and_skips_type_checking() -> None:
    tune = {str(p) for p in stage_files("tune", ("tfn",), REPO)}
    assert "harness/tuning/storage.py" in tune  # imported at module level by the study
    assert "methods/common/encoders.py" in tune and "methods/base.py" in tune
    assert not {"harness/tracking.py", "harness/config/params.py"} & tune  # neutral
    assert "harness/training/seed_runs.py" not in tune  # the train stage's, not tune's
    compare = {str(p) for p in stage_files("compare", (), REPO)}
    assert "harness/reports/tables.py" in compare  # rendering is what compare writes
    assert not any(p.startswith(("methods/", "harness/training")) for p in compare)


@pytest.mark.parametrize("relative", NUMERIC)
def test_editing_code_that_runs_changes_the_digest(code, relative) -> None:
    before = {s: code_digest(s, ("tfn",)) for s in ("tune", "train")}
    _edit(code, relative)
    after = {s: code_digest(s, ("tfn",)) for s in ("tune", "train")}
    assert before["tune"] != after["tune"] and before["train"] != after["train"]


@pytest.mark.parametrize("relative", NEUTRAL)
def test_editing_code_that_cannot_change_the_numbers_keeps_the_digest(code, relative) -> None:
    before = {s: code_digest(s, ("tfn",)) for s in ("tune", "train")}
    _edit(code, relative)
    assert {s: code_digest(s, ("tfn",)) for s in ("tune", "train")} == before


def test_another_methods_module_does_not_change_this_methods_digest(code) -> None:
    before = code_digest("tune", ("lf_dnn",))
    _edit(code, "methods/common/qformer.py")  # FINE's, not LF-DNN's
    assert code_digest("tune", ("lf_dnn",)) == before
    assert code_digest("tune", ("fine",)) != code_digest("tune", ("fine",), REPO)


def _studies(journal: Path) -> dict[str, int]:
    storage = JournalStorage(JournalFileBackend(str(journal)))
    names = [s.study_name for s in storage.get_all_studies()]
    return {
        name: len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
        for name in names
    }


def test_a_code_edit_starts_a_fresh_study_and_a_neutral_edit_resumes(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, benchmark__methods=["lf_dnn"], probe__methods=[])
    fetch_stage.run(params, "synth")
    best = paths.best_params_file("synth", "lf_dnn")
    journal = paths.study_storage("synth", "lf_dnn")

    tune_stage.run(params, "synth", "lf_dnn")
    first = TuningRecord.load(best).study_name
    assert _studies(journal) == {first: 2}

    _edit(code, "harness/tracking.py")  # cannot change the numbers: the study is resumed
    tune_stage.run(params, "synth", "lf_dnn")
    assert TuningRecord.load(best).study_name == first and _studies(journal) == {first: 2}

    _edit(code, "methods/common/encoders.py")  # can: a new study with its own full budget
    tune_stage.run(params, "synth", "lf_dnn")
    second = TuningRecord.load(best).study_name
    assert second != first and _studies(journal) == {first: 2, second: 2}


def test_a_code_edit_retrains_the_seeds_an_interrupted_run_kept(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, benchmark__methods=["lf_dnn"], probe__methods=[], train__workers=1)
    fetch_stage.run(params, "synth")
    tune_stage.run(params, "synth", "lf_dnn")
    trained: list[int] = []
    real_run_seed = train_stage.run_seed

    def counting(task, callbacks=()):
        trained.append(task.seed)
        return real_run_seed(task, callbacks)

    def interrupted(task, callbacks=()):
        if task.seed == 2:
            raise KeyboardInterrupt  # killed after seed 1 finished
        return counting(task, callbacks)

    monkeypatch.setattr(train_stage, "run_seed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_stage.run(params, "synth", "lf_dnn")
    assert trained == [1]

    monkeypatch.setattr(train_stage, "run_seed", interrupted)
    _edit(code, "harness/reports/tables.py")  # cannot change the numbers: seed 1 is kept
    with pytest.raises(KeyboardInterrupt):
        train_stage.run(params, "synth", "lf_dnn")
    assert trained == [1]

    _edit(code, "harness/training/seed_runs.py")  # can: seed 1 is trained again
    monkeypatch.setattr(train_stage, "run_seed", counting)
    train_stage.run(params, "synth", "lf_dnn")
    assert trained == [1, 1, 2]
    assert [r.seed for r in load_records(paths.all_runs())] == [1, 2]
