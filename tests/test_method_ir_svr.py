"""IR-SVR: outputs, the switches and weights of its five named terms, the reversed discriminator
gradient, invariant gating, the SVR target, padding and empty modalities, and learning on synth."""

from __future__ import annotations

import pytest
import torch
from learning_check import assert_learns_and_logs_terms
from torch.nn import functional as F

import methods.ir_svr  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.data.types import MODALITIES, Batch
from harness.errors import ConfigError
from harness.training.loop import build_model
from methods import METHODS
from methods.common.regularizers import sequential_variation
from methods.ir_svr import IRSVR

SMALL = {"hidden_size": 32, "fusion_ff_dim": 64}
TERMS = {"task", "domain", "cmd", "recon", "svr"}
WEIGHTS = {
    "domain": "domain_weight",
    "cmd": "cmd_weight",
    "recon": "recon_weight",
    "svr": "svr_weight",
}
SWITCHES = {
    "domain": "use_discriminator",
    "cmd": "use_cmd",
    "recon": "use_recon",
    "svr": "use_svr",
}


def _model(spec, seed: int = 0, **overrides) -> IRSVR:
    return build_model(IRSVR, IRSVR.resolve_hparams(spec.kind, {**SMALL, **overrides}), spec, seed)


def _batch(splits, n: int = 16) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


def _padded(batch: Batch, extra: int = 4) -> Batch:
    return Batch(
        {
            m: torch.cat([x, torch.zeros(x.shape[0], extra, x.shape[2])], 1)
            for m, x in batch.features.items()
        },
        batch.lengths,
        batch.labels,
        batch.index,
    )


def _terms(model: IRSVR, batch: Batch) -> dict[str, torch.Tensor]:
    return model.loss_terms(batch, model(batch))


def test_registered_with_v1_defaults() -> None:
    assert METHODS.get("ir_svr") is IRSVR
    hp = IRSVR.resolve_hparams("mosi")
    assert (hp.domain_weight, hp.cmd_weight, hp.recon_weight, hp.svr_weight) == (0.4, 1.0, 1.0, 1.0)
    assert (hp.hidden_size, hp.dropout, hp.batch_size, hp.fbp_hidden, hp.fbp_factor) == (
        128,
        0.6,
        64,
        32,
        2,
    )
    assert (hp.variation, hp.cmd_moments, hp.task_loss) == ("tv", 5, "mse")
    assert IRSVR.resolve_hparams("sims").batch_size == 64


def test_outputs_have_the_documented_shapes(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec), _batch(splits)
    out = model(batch)
    steps = {m: batch.features[m].shape[1] for m in MODALITIES}
    assert out["prediction"].shape == (16,)
    low, high = spec.label_range
    assert ((out["prediction"] >= low) & (out["prediction"] <= high)).all()
    for m in MODALITIES:
        for name in ("shared", "private"):
            assert out[f"{name}_{m}"].shape == (16, 32)
            assert ((out[f"{name}_{m}"] > 0) & (out[f"{name}_{m}"] < 1)).all()  # sigmoid codes
            assert out[f"{name}_seq_{m}"].shape == (16, steps[m], 32)
        assert out[f"reconstructed_seq_{m}"].shape == (16, steps[m], 32)
    assert out["domain_logits"].shape == (16, 3, 3)
    assert out["fused_seq"].shape == (16, steps["text"], 64)
    for m in ("audio", "vision"):
        gate = out[f"gate_{m}"]
        assert gate.shape == (16, steps["text"]) and ((gate > 0) & (gate < 1)).all()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, TERMS),
        ({"use_discriminator": False}, TERMS - {"domain"}),
        ({"use_cmd": False}, TERMS - {"cmd"}),
        ({"use_recon": False}, TERMS - {"recon"}),
        ({"use_svr": False}, TERMS - {"svr"}),
        ({"use_invariant_gating": False}, TERMS),
        ({"variation": "js"}, TERMS),
        ({"svr_target": "fused"}, TERMS),
        ({"domain_weight": 0.0}, TERMS - {"domain"}),
        ({"cmd_weight": 0.0}, TERMS - {"cmd"}),
        ({"recon_weight": 0.0}, TERMS - {"recon"}),
        ({"svr_weight": 0.0}, TERMS - {"svr"}),
        (
            {"domain_weight": 0.0, "cmd_weight": 0.0, "recon_weight": 0.0, "svr_weight": 0.0},
            {"task"},
        ),
        (
            {"use_discriminator": False, "use_cmd": False, "use_recon": False, "use_svr": False},
            {"task"},
        ),
    ],
)
def test_terms_follow_the_switches_and_weights(tiny_data, overrides, expected) -> None:
    spec, splits = tiny_data
    model = _model(spec, **overrides)
    terms = _terms(model, _batch(splits))
    assert set(terms) == expected
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    weights = model.loss_weights()
    assert {name for name, w in weights.items() if w > 0} == expected
    assert all(weights[name] == 0.0 for name in set(weights) - expected)


def test_switched_off_parts_build_no_modules(tiny_data) -> None:
    spec, _ = tiny_data
    model = _model(spec, use_discriminator=False, use_recon=False, use_invariant_gating=False)
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert not {"discriminator", "decoders"} & names
    assert not any(".fbp." in name or ".gate." in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("term", sorted(WEIGHTS))
def test_weights_scale_their_terms(tiny_data, term) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = []
    for w in (0.2, 0.6):
        model = _model(spec, **{WEIGHTS[term]: w})
        model.eval()
        with torch.no_grad():
            values.append(float(_terms(model, batch)[term]))
    assert values[0] > 0
    assert values[1] == pytest.approx(3 * values[0], rel=1e-5)


def test_the_discriminator_gradient_reaches_the_shared_encoder_reversed(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec, reversal_lambda=0.5), _batch(splits)
    model.eval()  # no dropout: both losses below see the same discriminator
    out = model(batch)
    adversarial = model.loss_terms(batch, out)["domain"]  # through the reversal layer
    # the same loss without the reversal, from the pooled shared codes before it
    shared = torch.stack([out[f"shared_{m}"] for m in MODALITIES], dim=1)  # (B, 3, H)
    labels = torch.arange(3).expand(shared.shape[0], -1)
    plain = model.hparams.domain_weight * F.cross_entropy(
        model.discriminator(shared).flatten(0, 1), labels.flatten()
    )
    torch.testing.assert_close(adversarial, plain)
    encoder = list(model.shared_encoder.parameters())
    discriminator = list(model.discriminator.parameters())
    reversed_grads = torch.autograd.grad(adversarial, encoder + discriminator, retain_graph=True)
    plain_grads = torch.autograd.grad(plain, encoder + discriminator)
    for i, (got, reference) in enumerate(zip(reversed_grads, plain_grads, strict=True)):
        assert reference.abs().sum() > 0
        if i < len(encoder):  # the encoder learns to fool the discriminator: -lambda * gradient
            torch.testing.assert_close(got, -0.5 * reference)
        else:  # the discriminator itself learns to tell the modalities apart
            torch.testing.assert_close(got, reference)


def test_invariant_gating_changes_the_fusion(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits, 8)
    gated, ungated = _model(spec), _model(spec, use_invariant_gating=False)
    missing, unexpected = ungated.load_state_dict(gated.state_dict(), strict=False)
    assert not missing and unexpected and all(".fbp." in k or ".gate." in k for k in unexpected)
    gated.eval(), ungated.eval()
    with torch.no_grad():
        assert not torch.allclose(gated(batch)["prediction"], ungated(batch)["prediction"])
        # the gate reads the invariant audio code: other audio input, other gate
        other = Batch(dict(batch.features), batch.lengths, batch.labels, batch.index)
        other.features["audio"] = batch.features["audio"].flip(0)
        assert not torch.allclose(gated(batch)["gate_audio"], gated(other)["gate_audio"])


@pytest.mark.parametrize("variation", ["tv", "js"])
def test_svr_targets_the_documented_sequences(tiny_data, variation) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = {}
    for target in ("modalities", "vision", "fused"):
        model = _model(spec, svr_target=target, variation=variation)
        model.eval()
        with torch.no_grad():
            out = model(batch)
            values[target] = float(_terms(model, batch)["svr"])
        per_modality = {
            m: float(
                sequential_variation(
                    torch.cat([out[f"private_seq_{m}"], out[f"shared_seq_{m}"]], dim=-1),
                    out[f"mask_{m}"],
                    variation,
                )
            )
            for m in MODALITIES
        }
        expected = {
            "modalities": sum(per_modality.values()) / 3,
            "vision": per_modality["vision"],
            "fused": float(sequential_variation(out["fused_seq"], out["mask_text"], variation)),
        }[target]
        assert values[target] == pytest.approx(model.hparams.svr_weight * expected, rel=1e-5)
    assert len(set(values.values())) == 3 and all(v > 0 for v in values.values())


@pytest.mark.parametrize("overrides", [{}, {"variation": "js"}, {"svr_target": "fused"}])
def test_padding_changes_neither_predictions_nor_any_term(tiny_data, overrides) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec, **overrides), _batch(splits, 8)
    model.eval()
    with torch.no_grad():
        plain, padded = model(batch), model(_padded(batch))
        torch.testing.assert_close(padded["prediction"], plain["prediction"])
        terms, padded_terms = model.loss_terms(batch, plain), model.loss_terms(batch, padded)
    assert set(terms) == TERMS
    for name in TERMS:
        torch.testing.assert_close(padded_terms[name], terms[name], msg=name)


def test_predictions_do_not_depend_on_labels(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec), _batch(splits)
    model.eval()
    relabelled = Batch(batch.features, batch.lengths, -batch.labels + 1.0, batch.index)
    with torch.no_grad():
        assert torch.equal(model(batch)["prediction"], model(relabelled)["prediction"])
        # while the task term does read them
        assert not torch.equal(_terms(model, batch)["task"], _terms(model, relabelled)["task"])


@pytest.mark.parametrize("how", ["no steps", "zero lengths"])
def test_an_empty_modality_gives_finite_predictions_terms_and_gradients(tiny_data, how) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec), _batch(splits)
    for m in ("text", "audio"):
        if how == "no steps":
            batch.features[m] = torch.zeros(16, 0, spec.feature_dims[m])
        batch.lengths[m] = torch.zeros(16, dtype=torch.long)
    terms = _terms(model, batch)
    assert set(terms) == TERMS and all(torch.isfinite(t) for t in terms.values())
    torch.stack(list(terms.values())).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variation": "l2"}, "hparams.variation"),
        ({"svr_target": "text"}, "hparams.svr_target"),
        ({"cross_heads": 5}, "hparams.cross_heads"),
        ({"fusion_heads": 3}, "hparams.fusion_heads"),
        ({"svr_weight": -1.0}, "hparams.svr_weight"),
        ({"reversal_lambda": -0.5}, "hparams.reversal_lambda"),
        ({"fbp_factor": 0}, "hparams.fbp_factor"),
    ],
)
def test_bad_hparams_are_one_line_config_errors(tiny_data, overrides, message) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match=message):
        _model(spec, **overrides)


def test_learns_the_synthetic_benchmark_and_logs_every_term(short_synth_data) -> None:
    spec, splits = short_synth_data
    assert_learns_and_logs_terms(_model(spec), splits, "ir_svr", TERMS)
