"""The default-budget params.yaml and the full-size profiles/full.yaml: both valid, both run every
registered method, every fixed hyperparameter builds a model, and they declare the same datasets
(so switching profile changes budgets and sizes, never what a dataset is)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from harness.config import load_params
from harness.data.loading import take_batch
from harness.data.types import Batch
from harness.training import build_model
from methods import METHODS

REPO = Path(__file__).resolve().parents[1]
PROFILES = {"default": REPO / "params.yaml", "full": REPO / "profiles" / "full.yaml"}


@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request):
    return request.param, load_params(PROFILES[request.param])


def test_every_registered_method_is_in_the_benchmark_with_a_section(profile) -> None:
    _, params = profile
    assert sorted(params.benchmark_methods) == sorted(METHODS.names())
    assert set(params.methods) == set(METHODS.names())
    assert len(params.seeds) == 5


def test_every_fixed_hparam_builds_a_model_that_runs(profile, tiny_data) -> None:
    _, params = profile
    spec, splits = tiny_data
    batch: Batch = take_batch(splits["train"], torch.arange(8))
    for name in params.benchmark_methods:
        cls = METHODS.get(name)
        hparams = cls.resolve_hparams(
            spec.kind, params.method(name).hparams, where=f"methods.{name}.hparams"
        )
        model = build_model(cls, hparams, spec, seed=0)
        model.eval()
        with torch.no_grad():
            assert torch.isfinite(model(batch)["prediction"]).all(), name


def test_profiles_declare_the_same_datasets_and_keys() -> None:
    default, full = (yaml.safe_load(path.read_text()) for path in PROFILES.values())
    assert set(default) == set(full)
    assert set(default["datasets"]) == set(full["datasets"])
    assert default["datasets"]["mosi_bclstm"] == full["datasets"]["mosi_bclstm"]
    for key in ("seeds", "mlflow", "compare", "device"):
        assert default[key] == full[key], key
    default_synth = dict(default["datasets"]["synth"]["synthetic"])
    full_synth = dict(full["datasets"]["synth"]["synthetic"])
    for size in ("n_train", "n_valid", "n_test", "max_lengths"):
        default_synth.pop(size), full_synth.pop(size)
    assert default_synth == full_synth  # same generative model, other sizes


def test_the_full_profile_fixes_no_hyperparameter_and_tunes_for_real() -> None:
    default, full = load_params(PROFILES["default"]), load_params(PROFILES["full"])
    assert all(not full.method(m).hparams for m in full.benchmark_methods)
    assert full.tune.n_trials > default.tune.n_trials
    assert full.train.max_epochs > default.train.max_epochs
