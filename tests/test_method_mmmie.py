"""MMMIE: its three parts and their switches, named terms and weights, the CLUB step, padding
invariance, and learning on synth."""

from __future__ import annotations

import pytest
import torch

import methods.mmmie  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods.mmmie import MMMIE

SMALL = {"model_dim": 32, "critic_hidden": 32}
TERMS = {"task", "mi_max", "mi_min"}


def _model(spec, seed: int = 0, **overrides) -> MMMIE:
    return build_model(MMMIE, MMMIE.resolve_hparams(spec.kind, {**SMALL, **overrides}), spec, seed)


def _batch(splits, n: int = 24) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, TERMS),
        ({"use_mi_max": False}, TERMS - {"mi_max"}),
        ({"use_mi_min": False}, TERMS - {"mi_min"}),
        ({"use_identity": False}, TERMS),
        ({"alpha": 0.0}, TERMS - {"mi_max"}),
        ({"beta": 0.0}, TERMS - {"mi_min"}),
    ],
)
def test_terms_follow_the_switches_and_weights(tiny_data, overrides, expected) -> None:
    spec, splits = tiny_data
    model = _model(spec, **overrides)
    batch = _batch(splits)
    terms = model.loss_terms(batch, model(batch))
    assert set(terms) == expected
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())


@pytest.mark.parametrize(("weight", "term"), [("alpha", "mi_max"), ("beta", "mi_min")])
def test_weights_scale_their_terms(tiny_data, weight, term) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = []
    for w in (0.1, 0.3):
        model = _model(spec, **{weight: w})
        model.eval()
        with torch.no_grad():
            values.append(float(model.loss_terms(batch, model(batch))[term]))
    assert values[1] == pytest.approx(3 * values[0], rel=1e-4)


def test_identity_embeddings_tell_the_fusion_which_modality_a_token_is(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits, 8)
    with_identity, without = _model(spec), _model(spec, use_identity=False)
    without.load_state_dict(with_identity.state_dict())  # same weights, only the switch differs
    with_identity.eval(), without.eval()
    with torch.no_grad():
        a, b = with_identity(batch)["prediction"], without(batch)["prediction"]
    assert not torch.allclose(a, b)


def test_club_step_trains_only_the_q_networks(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logged = model.extra_step(_batch(splits))
    assert set(logged) == {"club_nll"}
    moved = [name for name, p in model.named_parameters() if not torch.equal(before[name], p)]
    assert moved and all(name.startswith("clubs.") for name in moved)
    assert all(p.grad is None for p in model.parameters())
    main = {id(p) for p in model.parameter_groups()[0]["params"]}
    assert not main & {id(p) for p in model.estimator_parameters()}


def test_padding_does_not_change_predictions(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    model.eval()
    batch = _batch(splits, 8)
    padded = Batch(
        {m: torch.cat([x, torch.zeros(8, 4, x.shape[2])], 1) for m, x in batch.features.items()},
        batch.lengths,
        batch.labels,
        batch.index,
    )
    with torch.no_grad():
        torch.testing.assert_close(model(padded)["prediction"], model(batch)["prediction"])


def test_invalid_heads_are_a_one_line_error(tiny_data) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match="hparams.fusion_heads: expected a positive divisor"):
        _model(spec, fusion_heads=5)


def test_learns_the_synthetic_benchmark_and_logs_every_term(short_synth_data) -> None:
    spec, splits = short_synth_data
    model = _model(spec)
    loop = LoopConfig(max_epochs=8, patience=8, progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("synth", "mmmie", 0), 0)
    mean_mae = float((splits["valid"].labels - splits["train"].labels.mean()).abs().mean())
    assert outcome.best_valid["mae"] < 0.9 * mean_mae
    for log in outcome.history:
        assert set(log.train) == TERMS | {"total", "club_nll"}
