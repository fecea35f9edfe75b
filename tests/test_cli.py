"""The CLI's user-facing behaviour: subcommands, `list`, and one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_list_prints_methods_and_datasets(project, capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lf_dnn" in out and "tfn" in out and "synth" in out and "source=synthetic" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tune", "synth", "tfm"], "unknown method 'tfm' (did you mean 'tfn'?)"),
        (["train", "mosi", "tfn"], "unknown dataset 'mosi'; datasets declared in params.yaml"),
        (["fetch", "nope"], "unknown dataset 'nope'"),
        (["train", "synth", "tfn"], "run `msabench tune synth tfn` first"),
        (["compare"], "no run record for synth/ridge/seed 1111"),
    ],
)
def test_bad_input_is_one_line_on_stderr(project, capsys, argv, expected) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1 and err.startswith("msabench: error: ")


def test_malformed_params_file(project, capsys) -> None:
    (project / "params.yaml").write_text("seeds: 3\n")
    assert main(["fetch", "synth"]) == 2
    assert "params.yaml: " in capsys.readouterr().err


def test_fetch_writes_a_store(project, capsys) -> None:
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(
        text.replace("n_train: 600", "n_train: 30")
        .replace("n_valid: 200", "n_valid: 10")
        .replace("n_test: 400", "n_test: 10")
    )
    assert main(["-q", "fetch", "synth"]) == 0
    assert (project / "features" / "synth" / "manifest.json").is_file()


def test_python_dash_m_harness_runs_the_cli(project) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness", "list"], capture_output=True, text=True, cwd=project
    )
    assert result.returncode == 0 and "tfn" in result.stdout
