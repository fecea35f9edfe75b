"""Tuning histories: the running best, and a real Optuna journal read back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from harness.errors import DataError
from harness.paths import best_params_file, study_storage
from harness.records import TuningRecord
from harness.tuning.history import (
    best_so_far,
    history_csv,
    load_study_history,
    tuning_histories,
)

NAN = math.nan


def test_best_so_far_minimize_skips_nan() -> None:
    result = best_so_far(np.array([3.0, NAN, 2.0, 5.0, 1.0]), higher_is_better=False)
    np.testing.assert_array_equal(result, [3.0, 3.0, 2.0, 2.0, 1.0])


def test_best_so_far_maximize_skips_nan() -> None:
    result = best_so_far([3.0, NAN, 2.0, 5.0, 1.0], higher_is_better=True)
    np.testing.assert_array_equal(result, [3.0, 3.0, 3.0, 5.0, 5.0])


def test_best_so_far_is_nan_before_the_first_value_and_keeps_the_input() -> None:
    values = np.array([NAN, NAN, 4.0, NAN])
    np.testing.assert_array_equal(best_so_far(values, False), [NAN, NAN, 4.0, 4.0])
    assert np.isnan(values[3])  # pure: the input is untouched
    assert best_so_far([], True).shape == (0,)
    with pytest.raises(ValueError, match="1-D"):
        best_so_far(np.zeros((2, 2)), True)


def _objective(trial: optuna.Trial) -> float:
    """Trial 0 -> 3.0; trial 1 reports 5.0 then 4.0 and is pruned; trial 2 fails; 3 -> 1.0."""
    trial.suggest_float("x", 0.0, 1.0)
    if trial.number == 1:
        trial.report(5.0, step=0)
        trial.report(4.0, step=1)
        raise optuna.TrialPruned()
    if trial.number == 2:
        raise RuntimeError("diverged")
    return {0: 3.0, 3: 1.0}[trial.number]


def _write_study(path: Path, name: str, direction: str = "minimize") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction=direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(_objective, n_trials=4, catch=(RuntimeError,))


def test_a_real_journal_is_read_back_with_states_values_and_running_best(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "toy.journal"
    _write_study(journal, "toy.min")
    _write_study(journal, "toy.max", direction="maximize")  # a journal holds several studies
    history = load_study_history(journal, "toy.min")
    assert list(history["trial"]) == [0, 1, 2, 3]
    assert list(history["state"]) == ["COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    np.testing.assert_array_equal(history["value"], [3.0, NAN, NAN, 1.0])
    np.testing.assert_array_equal(history["best"], [3.0, 3.0, 3.0, 1.0])
    np.testing.assert_array_equal(history["best_intermediate"], [NAN, 4.0, NAN, NAN])
    assert set(history["direction"]) == {"minimize"}
    maximized = load_study_history(journal, "toy.max")
    np.testing.assert_array_equal(maximized["best"], [3.0, 3.0, 3.0, 3.0])
    assert set(maximized["direction"]) == {"maximize"}
    assert maximized["best_intermediate"].iloc[1] == 5.0  # best in the study's direction


def test_a_missing_study_names_the_file_and_lists_the_studies(tmp_path: Path) -> None:
    journal = tmp_path / "toy.journal"
    _write_study(journal, "toy.b")
    _write_study(journal, "toy.a")
    with pytest.raises(DataError, match=r"toy\.journal: no study 'toy\.c'.*toy\.a, toy\.b$"):
        load_study_history(journal, "toy.c")


def test_a_missing_or_corrupt_journal_is_a_one_line_data_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.journal"
    with pytest.raises(DataError, match="absent.journal: no such Optuna journal"):
        load_study_history(missing, "any")
    assert not missing.exists()  # reported, not created
    corrupt = tmp_path / "corrupt.journal"
    corrupt.write_text("not json\n{}\n", encoding="utf-8")
    with pytest.raises(DataError, match="corrupt.journal: not a readable Optuna journal") as info:
        load_study_history(corrupt, "any")
    assert "\n" not in str(info.value)


def _write_best_params(root: Path, dataset: str, method: str, study_name: str) -> None:
    path = root / best_params_file(dataset, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = TuningRecord(
        dataset=dataset, method=method, study_name=study_name, select_metric="mae",
        best_value=0.5, params={}, n_complete=1, n_pruned=0, fixed_hparams={}, search_space={},
    )  # fmt: skip
    record.save(path)


def test_tuning_histories_follow_best_params_and_write_a_stable_csv(tmp_path: Path) -> None:
    for method in ("beta", "alpha"):
        journal = tmp_path / study_storage("toy", method)
        _write_study(journal, f"toy.{method}.old")
        _write_study(journal, f"toy.{method}.new")
        _write_best_params(tmp_path, "toy", method, f"toy.{method}.new")
    histories = tuning_histories("toy", ["beta", "alpha"], root=tmp_path)
    assert list(histories.columns[:5]) == ["method", "trial", "state", "value", "best"]
    assert list(histories["method"]) == ["beta"] * 4 + ["alpha"] * 4
    text = history_csv(histories)
    assert text.splitlines()[:4] == [
        "method,trial,state,value,best",
        "beta,0,COMPLETE,3,3",
        "beta,1,PRUNED,,3",
        "beta,2,FAIL,,3",
    ]
    assert text == history_csv(pd.concat([histories]))  # same frame, same text
    rounding = pd.DataFrame(
        {"method": ["m"], "trial": [0], "state": ["COMPLETE"], "value": [0.1 + 0.2], "best": [1e-7]}
    )
    assert history_csv(rounding).splitlines()[1] == "m,0,COMPLETE,0.3,1e-07"  # 12 digits


def test_tuning_histories_report_a_missing_best_params_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="best_params.json: not found; run the tune stage first"):
        tuning_histories("toy", ["absent"], root=tmp_path)
    _write_best_params(tmp_path, "toy", "nojournal", "toy.nojournal.x")
    with pytest.raises(DataError, match="nojournal.journal: no such Optuna journal"):
        tuning_histories("toy", ["nojournal"], root=tmp_path)
