"""The default-budget params.yaml and the profiles (profiles/*.yaml, applied with DVC's own
`--set-param`): each gives valid params, every registered method runs with its fixed
hyperparameters, a profile holds only what it changes, and `msabench profile` prints or runs the
`dvc exp run` command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from harness.cli import main
from harness.config import load_params
from harness.config.profiles import apply_profile, load_profile, profile_names, profile_params
from harness.data.loading import take_batch
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import build_model
from methods import METHOD_MODULES, load_method

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
PROFILES = REPO / "profiles"


def _params(name: str):
    if name == "default":
        return load_params(PARAMS)
    return profile_params(load_profile(name, PROFILES), PARAMS)


@pytest.fixture(scope="module", params=["default", *profile_names(PROFILES)])
def profile(request):
    return request.param, _params(request.param)


# profiles of text-only datasets: they run the methods that read text alone (a text-only dataset
# refuses the others)
# (on one modality late_transformer is text_only: its fusion is skipped, so MUStARD leaves it out)
TEXT_ONLY_PROFILES = {
    "mustard": ("ridge", "text_only"),
    "mosei-text": ("ridge", "text_only"),
}


def test_every_registered_method_is_in_the_benchmark_with_a_section(profile) -> None:
    name, params = profile
    if name in TEXT_ONLY_PROFILES:
        assert params.benchmark.methods == TEXT_ONLY_PROFILES[name]
    else:
        assert sorted(params.benchmark.methods) == METHOD_MODULES.names()
    assert set(params.methods) == set(METHOD_MODULES.names())
    assert len(params.seeds) == 5


def test_every_fixed_hparam_builds_a_model_that_runs(profile, tiny_data) -> None:
    _, params = profile
    spec, splits = tiny_data
    batch: Batch = take_batch(splits["train"], torch.arange(8))
    for name in params.benchmark.methods:
        cls = load_method(name)
        hparams = cls.resolve_hparams(
            spec.kind, params.method(name).hparams, where=f"methods.{name}.hparams"
        )
        model = build_model(cls, hparams, spec, seed=0)
        model.eval()
        with torch.no_grad():
            assert torch.isfinite(model(batch)["prediction"]).all(), name


def _key(override: str) -> str:
    return override.lstrip("~+").split("=", 1)[0]


def _lookup(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "<absent>"
        node = node[part]
    return node


@pytest.mark.parametrize("name", profile_names(PROFILES))
def test_a_profile_holds_only_what_it_changes(name) -> None:
    profile = load_profile(name, PROFILES)
    base, applied = yaml.safe_load(PARAMS.read_text()), apply_profile(profile, PARAMS)
    keys = [_key(o) for o in profile.set_params]
    assert len(keys) == len(set(keys)), "a key set twice"
    for key in keys:
        assert _lookup(base, key) != _lookup(applied, key), f"{name}: {key} changes nothing"


def test_the_full_profile_fixes_no_hyperparameter_and_tunes_for_real() -> None:
    default, full = _params("default"), _params("full")
    assert all(not full.method(m).hparams for m in full.benchmark.methods)
    assert any(default.method(m).hparams for m in default.benchmark.methods)
    assert full.tune.n_trials > default.tune.n_trials
    assert full.train.max_epochs > default.train.max_epochs
    assert full.benchmark.datasets == ("synth", "mosi_bclstm", "mosi_tokens")
    assert full.datasets["mosi_bclstm"] == default.datasets["mosi_bclstm"]  # same declaration
    assert full.seeds == default.seeds and full.compare == default.compare


def test_a_profile_with_an_unknown_key_is_refused(tmp_path) -> None:
    (tmp_path / "typo.yaml").write_text(
        "description: x\nset_params:\n  - tune.n_trails=5\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="profiles/typo.yaml: set_params: "):
        profile_params(load_profile("typo", tmp_path), PARAMS)
    (tmp_path / "bad.yaml").write_text(
        "description: x\nset_params:\n  - +tune.n_trails=5\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="tune.n_trails: unknown key; .*did you mean 'n_trials'"):
        profile_params(load_profile("bad", tmp_path), PARAMS)
    with pytest.raises(ConfigError, match="no such profile; profiles in .*: bad, typo"):
        load_profile("gpu", tmp_path)


def test_profile_command_prints_the_dvc_experiment(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    assert main(["profile", "full"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("dvc exp run -S 'benchmark.datasets=[synth,mosi_bclstm,mosi_tokens]'")
    assert "-S '~methods.tfn.hparams'" in line and "-S tune.n_trials=50" in line


def test_profile_run_calls_dvc_exp_run_with_each_override(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    calls = []
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda command, check: calls.append(command) or subprocess.CompletedProcess(command, 0),
    )
    assert main(["profile", "full", "--run", "--", "--temp"]) == 0
    (command,) = calls
    assert command[:3] == ["dvc", "exp", "run"] and command[-1] == "--temp"
    assert command.count("-S") == len(load_profile("full", PROFILES).set_params)


def test_the_mosi_tokens_profile_runs_both_real_mosi_datasets_at_a_cpu_budget() -> None:
    tokens = profile_params(load_profile("mosi-tokens"), PARAMS)
    assert tokens.benchmark.datasets == ("mosi_bclstm", "mosi_tokens")
    assert tokens.probe.datasets == ()
    assert (tokens.tune.n_trials, tokens.tune.max_epochs) == (4, 6)
    assert (tokens.train.max_epochs, tokens.train.patience) == (6, 2)


def test_the_mustard_profile_runs_the_five_folds_with_the_text_methods() -> None:
    mustard = profile_params(load_profile("mustard"), PARAMS)
    assert mustard.benchmark.datasets == tuple(f"mustard_fold{k}" for k in range(1, 6))
    assert mustard.groups["mustard"] == mustard.benchmark.datasets
    assert {mustard.dataset(d).kind for d in mustard.benchmark.datasets} == {"binary"}
    assert mustard.select_metric_for("mustard_fold1") == "f1_weighted"
    assert mustard.paper.datasets["MUStARD"] == "mustard"
    assert mustard.probe.datasets == () and mustard.probe.methods == ()
    # the frozen MiniLM states on a CPU (fine-tuning MiniLM is for a GPU)
    assert mustard.method("text_only").hparams["text_encoder"] == "features"
    assert (mustard.tune.n_trials, mustard.tune.max_epochs, mustard.train.max_epochs) == (4, 6, 8)


def test_the_mosei_text_profile_runs_the_transcripts_with_the_text_methods() -> None:
    mosei = profile_params(load_profile("mosei-text"), PARAMS)
    assert mosei.benchmark.datasets == ("mosei_text",)
    assert mosei.dataset("mosei_text").kind == "mosei"
    assert mosei.probe.datasets == () and mosei.probe.methods == ()
    # the frozen states on a CPU (fine-tuning MiniLM on 16k transcripts is for a GPU)
    assert mosei.method("text_only").hparams["text_encoder"] == "features"
    assert (mosei.tune.n_trials, mosei.tune.max_epochs, mosei.train.max_epochs) == (4, 4, 6)
