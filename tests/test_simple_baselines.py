"""The simple baselines: the linear floor (ridge / logistic regression, closed form, penalty
chosen on validation), the late-fusion Transformer and the unimodal models built from it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import as_binary
from learning_check import assert_learns_and_logs_terms

from harness import paths
from harness.data.loading import take_batch
from harness.errors import ConfigError
from harness.metrics import compute_metrics
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods import METHODS
from methods.ridge import _logistic, _ridge


def _fitted_ridge(data, metric: str = "mae", **hparams):
    spec, splits = data
    cls = METHODS.get("ridge")
    model = build_model(cls, cls.resolve_hparams(spec.kind, hparams), spec, seed=0)
    config = LoopConfig(max_epochs=5, patience=5, select_metric=metric, progress=False)
    outcome = fit(model, splits["train"], splits["valid"], config, RunContext("t", "ridge", 0), 0)
    return model, outcome


def test_ridge_solution_equals_sklearn() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6))
    y = x @ rng.normal(size=6) + rng.normal(size=80) * 0.3 + 1.5
    x = x - x.mean(axis=0)
    weights, bias = _ridge(x, y, 3.0, 0)
    reference = linear_model.Ridge(alpha=3.0).fit(x, y)
    np.testing.assert_allclose(weights, reference.coef_, atol=1e-10)
    assert bias == pytest.approx(reference.intercept_, abs=1e-10)


def test_logistic_solution_equals_sklearn() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 5))
    y = (x @ rng.normal(size=5) + rng.normal(size=120) > 0).astype(float)
    weights, bias = _logistic(x, y, 2.0, 100)
    # sklearn: C * sum(log loss) + ||w||^2 / 2, i.e. the penalty 1 / C on ||w||^2 / 2
    reference = linear_model.LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(weights, reference.coef_[0], atol=1e-6)
    assert bias == pytest.approx(reference.intercept_[0], abs=1e-6)


def test_ridge_chooses_its_penalty_on_validation_and_predicts_as_fitted(tiny_data) -> None:
    model, outcome = _fitted_ridge(tiny_data)
    spec, splits = tiny_data
    assert outcome.epochs_run == 1 and outcome.best_epoch == 1
    chosen = outcome.history[0].train["penalty"]
    # every penalty of the grid refitted by hand: the chosen one has the best validation MAE
    x_train, y_train = model.pooled_split(splits["train"])
    x_valid, y_valid = model.pooled_split(splits["valid"])
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    scale[scale == 0] = 1.0
    maes = {}
    for penalty in model.penalties():
        w, b = _ridge((x_train - mean) / scale, y_train, float(penalty), 0)
        scores = np.clip((x_valid - mean) / scale @ w + b, -3, 3)
        maes[float(penalty)] = compute_metrics("mosi", scores, y_valid)["mae"]
    assert chosen == min(maes, key=maes.get)
    assert outcome.best_valid["mae"] == pytest.approx(maes[chosen], rel=1e-5)
    # nothing is trained by gradient and nothing is left to tune
    assert not any(p.requires_grad for p in model.parameters())
    assert METHODS.get("ridge").SEARCH_SPACE == {}


def test_ridge_is_deterministic_across_seeds(tiny_data) -> None:
    spec, splits = tiny_data
    cls = METHODS.get("ridge")
    batch = take_batch(splits["test"], torch.arange(20))
    predictions = []
    for seed in (1, 2):
        model = build_model(cls, cls.resolve_hparams(spec.kind), spec, seed=seed)
        config = LoopConfig(max_epochs=1, patience=1, progress=False)
        fit(model, splits["train"], splits["valid"], config, RunContext("t", "ridge", seed), seed)
        model.eval()
        predictions.append(model(batch)["prediction"])
    assert torch.equal(predictions[0], predictions[1])


def test_logistic_floor_on_the_binary_kind(short_synth_data) -> None:
    model, outcome = _fitted_ridge(as_binary(short_synth_data), "f1_weighted")
    assert model.hparams.output_head == "sigmoid"
    assert set(outcome.best_valid) == {"accuracy", "f1_weighted", "precision", "recall", "auc"}
    assert outcome.best_valid["auc"] > 0.7  # synth's labels depend on its latents


def test_ridge_mean_std_pooling_doubles_the_columns(tiny_data) -> None:
    model, _ = _fitted_ridge(tiny_data, pooling="mean_std")
    spec, _ = tiny_data
    assert model.linear.in_features == 2 * sum(spec.feature_dims.values())
    with pytest.raises(ConfigError, match=r"hparams\.pooling: expected one of mean, mean_std"):
        METHODS.get("ridge").resolve_hparams("mosi", {"pooling": "max"})


@pytest.mark.parametrize("name", ["text_only", "audio_only", "vision_only"])
def test_a_unimodal_model_reads_its_modality_only(name, tiny_data) -> None:
    spec, splits = tiny_data
    cls = METHODS.get(name)
    model = build_model(cls, cls.resolve_hparams(spec.kind), spec, seed=0).eval()
    kept = name.removesuffix("_only")
    batch = take_batch(splits["test"], torch.arange(8))
    changed = batch.with_features(
        {m: x if m == kept else torch.randn_like(x) * 5 for m, x in batch.features.items()}
    )
    with torch.no_grad():
        assert torch.equal(model(batch)["prediction"], model(changed)["prediction"])
        other = batch.with_features({m: x * 3 + 1 for m, x in batch.features.items()})
        assert not torch.equal(model(batch)["prediction"], model(other)["prediction"])
    assert list(model.summaries) == [kept]


def test_text_only_datasets_take_the_baselines_and_refuse_the_fusion_methods(tiny_data) -> None:
    spec, _ = tiny_data
    text_spec = dataclasses.replace(
        spec,
        modalities=("text",),
        feature_dims={"text": spec.feature_dims["text"]},
        max_lengths={"text": spec.max_lengths["text"]},
    )
    for name in ("text_only", "late_transformer", "ridge"):
        cls = METHODS.get(name)
        build_model(cls, cls.resolve_hparams("mosi"), text_spec, seed=0)
    for name in ("lf_dnn", "audio_only"):
        cls = METHODS.get(name)
        with pytest.raises(ConfigError, match=f"method {name} reads .*missing: .*audio"):
            build_model(cls, cls.resolve_hparams("mosi"), text_spec, seed=0)


def test_late_transformer_learns(short_synth_data) -> None:
    spec, splits = short_synth_data
    cls = METHODS.get("late_transformer")
    model = build_model(cls, cls.resolve_hparams(spec.kind, {"model_dim": 32}), spec, seed=0)
    assert_learns_and_logs_terms(model, splits, "late_transformer", {"task"})


def test_late_transformer_fine_tunes_the_text_model_on_token_datasets(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    cls = METHODS.get("late_transformer")
    model = build_model(cls, cls.resolve_hparams(spec.kind), spec, seed=0)
    assert model.text_encoder is not None and model.text_encoder.finetune
    assert cls.text_model_facts(model.hparams, spec)["encoder"] == "fine-tuned"
    audio = METHODS.get("audio_only")
    assert audio.resolve_text_mode(audio.resolve_hparams(spec.kind), spec) == "features"


def test_a_method_with_nothing_to_tune_runs_one_trial(tmp_path, monkeypatch) -> None:
    from test_pipeline import _params

    from harness.stages import fetch as fetch_stage
    from harness.stages import tune as tune_stage

    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, tune__n_trials=3)
    fetch_stage.run(params, "synth")
    tune_stage.run(params, "synth", "ridge")
    best = json.loads(paths.best_params_file("synth", "ridge").read_text())
    assert best["n_complete"] == 1 and best["params"] == {}
