"""FINE: named loss terms and their weights, every ablation switch, the Mixture of Q-Formers,
the contrastive queue, the critics' own step, label-free predictions, and learning on synth."""

from __future__ import annotations

import pytest
import torch

import methods.fine  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods.common.qformer import MixtureOfQFormers
from methods.fine import FINE
from methods.search_space import suggest_all

SMALL = {"model_dim": 32, "num_queries": 2, "num_experts": 2, "critic_hidden": 32}
FULL_TERMS = {"task", "up", "cl", "aux", "sha", "uni", "recon", "str", "utr"}


def _model(spec, seed: int = 0, **overrides) -> FINE:
    return build_model(FINE, FINE.resolve_hparams(spec.kind, {**SMALL, **overrides}), spec, seed)


def _batch(splits, n: int = 24) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


def _terms(model: FINE, batch: Batch) -> dict[str, torch.Tensor]:
    return model.loss_terms(batch, model(batch))


def test_every_term_is_named_finite_and_listed_in_the_weights(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    terms = _terms(model, _batch(splits))
    assert set(terms) == FULL_TERMS == set(model.loss_weights())
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"use_moq": False}, FULL_TERMS - {"aux"}),  # w/o MoQ
        ({"factorization": "none"}, {"task", "up", "cl", "aux"}),  # w/o FTRE
        ({"factorization": "misa"}, {"task", "up", "cl", "aux", "cmd", "diff", "recon"}),
        ({"use_sha": False}, FULL_TERMS - {"sha"}),  # w/o I_sha
        ({"use_task_mi": False}, FULL_TERMS - {"str", "utr"}),  # w/o I_str, I_utr
        ({"use_dcq": False}, FULL_TERMS - {"cl"}),  # w/o DCQ
        ({"contrastive": "supcon"}, FULL_TERMS),  # DCQ with SupCon
    ],
)
def test_each_ablation_is_a_switch_of_the_same_model(tiny_data, overrides, expected) -> None:
    spec, splits = tiny_data
    model = _model(spec, **overrides)
    assert set(_terms(model, _batch(splits))) == expected == set(model.loss_weights())


@pytest.mark.parametrize(
    ("weight", "removed"),
    [
        ("lambda_up", {"up"}),
        ("lambda_cl", {"cl"}),
        ("lambda_aux", {"aux"}),
        ("beta_mi", {"sha", "uni", "recon", "str", "utr"}),
    ],
)
def test_a_zero_weight_removes_its_terms_and_weights_scale_them(tiny_data, weight, removed) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    assert set(_terms(_model(spec, **{weight: 0.0}), batch)) == FULL_TERMS - removed
    values = []
    for w in (0.2, 0.4):
        model = _model(spec, **{weight: w})
        model.eval()  # no dropout, and the queue stays empty
        with torch.no_grad():
            terms = _terms(model, batch)
        values.append(sum(float(terms[name]) for name in removed))
    assert values[1] == pytest.approx(2 * values[0], rel=1e-4)


def test_supcon_and_accon_differ_only_in_the_contrastive_term(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    terms = {}
    for variant in ("accon", "supcon"):
        model = _model(spec, contrastive=variant)
        model.eval()
        with torch.no_grad():
            terms[variant] = {k: float(v) for k, v in _terms(model, batch).items()}
    assert terms["accon"]["cl"] != pytest.approx(terms["supcon"]["cl"])
    for name in FULL_TERMS - {"cl"}:
        assert terms["accon"][name] == pytest.approx(terms["supcon"][name])


def test_predictions_never_depend_on_the_labels(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    model.eval()
    batch = _batch(splits)
    other = Batch(batch.features, batch.lengths, -batch.labels, batch.index)
    with torch.no_grad():
        torch.testing.assert_close(model(batch)["prediction"], model(other)["prediction"])


def test_padding_does_not_change_predictions(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    model.eval()
    batch = _batch(splits, 8)
    padded = Batch(
        {m: torch.cat([x, torch.zeros(8, 3, x.shape[2])], 1) for m, x in batch.features.items()},
        batch.lengths,
        batch.labels,
        batch.index,
    )
    with torch.no_grad():
        torch.testing.assert_close(model(padded)["prediction"], model(batch)["prediction"])


def test_router_picks_top_k_experts_and_the_balance_loss_is_one_when_uniform() -> None:
    torch.manual_seed(0)
    moq = MixtureOfQFormers(8, num_queries=3, num_experts=4, top_k=2, heads=2, dropout=0.0)
    x, mask = torch.randn(5, 6, 8), torch.ones(5, 6, dtype=torch.bool)
    gates, probabilities = moq.route(x, mask)
    assert ((gates > 0).sum(dim=1) == 2).all()
    torch.testing.assert_close(gates.sum(dim=1), torch.ones(5))
    tokens, balance = moq(x, mask)
    assert tokens.shape == (5, 3, 8) and float(balance.detach()) >= 1.0 - 1e-6
    with torch.no_grad():
        moq.router.weight.zero_()
        moq.router.bias.zero_()
    _, balance = moq(x, mask)
    assert float(balance.detach()) == pytest.approx(1.0)  # uniform probabilities: E * sum f_e / E


def test_the_critic_step_trains_only_the_critics(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec)
    critics = {id(p) for p in model.estimator_parameters()}
    assert critics and not critics & {id(p) for p in model.parameter_groups()[0]["params"]}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logged = model.extra_step(_batch(splits))
    assert set(logged) == {"critic_loss"}
    moved = [name for name, p in model.named_parameters() if not torch.equal(before[name], p)]
    assert moved and all(name.startswith(("uni_estimators", "str_estimators")) for name in moved)
    assert all(p.grad is None for p in model.parameters())


def test_the_queue_fills_in_training_mode_only(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, queue_size=4)
    batch = _batch(splits)
    model.eval()
    _terms(model, batch)
    assert int(model.queue.count.sum()) == 0
    model.train()
    _terms(model, batch)
    from methods.common.contrastive import sentiment_classes

    per_class = torch.bincount(sentiment_classes(batch.labels, "mosi"), minlength=7)
    assert model.queue.count.tolist() == per_class.clamp(max=4).tolist()
    features, labels, classes = model.queue.contents()
    assert features.shape[0] == int(per_class.clamp(max=4).sum())
    torch.testing.assert_close(features.norm(dim=1), torch.ones(features.shape[0]))
    assert (sentiment_classes(labels, "mosi") == classes).all()
    assert "queue" not in " ".join(model.state_dict())  # not part of a restored best state


def test_invalid_switch_values_are_one_line_errors(tiny_data) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match="hparams.factorization: expected one of"):
        _model(spec, factorization="factorcl")
    with pytest.raises(ConfigError, match="hparams.top_k: expected 1..num_experts=2, got 3"):
        _model(spec, top_k=3)


def test_search_space_samples_buildable_models(tiny_data) -> None:
    import optuna

    spec, splits = tiny_data
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(3):
        sampled = suggest_all(study.ask(), FINE.SEARCH_SPACE)
        model = build_model(FINE, FINE.resolve_hparams("mosi", sampled), spec, 0)
        assert torch.isfinite(model(_batch(splits, 8))["prediction"]).all()


# -- learning ------------------------------------------------------------------------------------
def test_learns_the_synthetic_benchmark_and_logs_every_term(short_synth_data) -> None:
    spec, splits = short_synth_data
    model = _model(spec, seed=0)
    loop = LoopConfig(max_epochs=8, patience=8, progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("synth", "fine", 0), 0)
    mean_mae = float((splits["valid"].labels - splits["train"].labels.mean()).abs().mean())
    assert outcome.best_valid["mae"] < 0.9 * mean_mae
    for log in outcome.history:
        assert set(log.train) == FULL_TERMS | {"total", "critic_loss"}
