"""MISA: shapes, named loss terms and their weights, masking, the contract checks, and learning."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import methods.misa  # noqa: F401  (import registers the method)
from harness.data.loading import iterate_batches, load_dataset, take_batch
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods import METHODS
from methods.misa import MISA

TERMS = {"task", "diff", "cmd", "recon"}


def _model(spec, seed: int = 0, **overrides) -> MISA:
    return build_model(MISA, MISA.resolve_hparams(spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


def _total(model: MISA, batch: Batch) -> torch.Tensor:
    return torch.stack(list(model.loss_terms(batch, model(batch)).values())).sum()


def test_registered_under_its_name() -> None:
    assert METHODS.get("misa") is MISA


def test_outputs_have_the_documented_shapes(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec), _batch(splits)
    outputs = model(batch)
    size = model.hparams.hidden_size
    assert outputs["prediction"].shape == (16,)
    assert torch.isfinite(outputs["prediction"]).all()
    low, high = spec.label_range
    assert ((outputs["prediction"] >= low) & (outputs["prediction"] <= high)).all()
    for name in ("utterance", "shared", "private", "reconstructed"):
        assert outputs[name].shape == (16, 3, size)
    assert outputs["fused"].shape == (16, 6 * size)
    # shared and private encoders end in a sigmoid
    assert ((outputs["shared"] > 0) & (outputs["shared"] < 1)).all()


def test_every_named_term_is_a_finite_scalar(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec), _batch(splits)
    terms = model.loss_terms(batch, model(batch))
    assert set(terms) == TERMS == set(model.loss_weights())
    for term in terms.values():
        assert term.ndim == 0 and torch.isfinite(term)


@pytest.mark.parametrize(
    ("weight", "term"), [("diff_weight", "diff"), ("sim_weight", "cmd"), ("recon_weight", "recon")]
)
def test_a_zero_weight_removes_its_term_and_weights_scale_terms(tiny_data, weight, term) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    removed = _model(spec, **{weight: 0.0})
    assert set(removed.loss_terms(batch, removed(batch))) == TERMS - {term}
    assert removed.loss_weights()[term] == 0.0
    values = []
    for w in (0.2, 0.4):
        model = _model(spec, **{weight: w})
        model.eval()
        values.append(float(model.loss_terms(batch, model(batch))[term].detach()))
    assert values[1] == pytest.approx(2 * values[0], rel=1e-5)


def test_all_auxiliary_weights_zero_leaves_the_task_loss(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(spec, diff_weight=0.0, sim_weight=0.0, recon_weight=0.0)
    batch = _batch(splits)
    assert set(model.loss_terms(batch, model(batch))) == {"task"}


@pytest.mark.parametrize("text_encoder", ["lstm", "mean"])
def test_padding_does_not_change_predictions(tiny_data, text_encoder) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec, feature_text_encoder=text_encoder), _batch(splits)
    model.eval()
    padded = Batch(
        features={
            m: torch.cat([x, torch.zeros(16, 5, x.shape[2])], 1) for m, x in batch.features.items()
        },
        lengths=batch.lengths,
        labels=batch.labels,
        index=batch.index,
    )
    with torch.no_grad():
        torch.testing.assert_close(model(padded)["prediction"], model(batch)["prediction"])


def test_an_empty_modality_gives_finite_predictions(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec), _batch(splits)
    batch.features["audio"] = torch.zeros(16, 0, spec.feature_dims["audio"])
    batch.lengths["audio"] = torch.zeros(16, dtype=torch.long)
    assert torch.isfinite(model(batch)["prediction"]).all()


def test_sims_defaults_follow_mmsa(tiny_data) -> None:
    hp = MISA.resolve_hparams("sims")
    assert (hp.batch_size, hp.dropout, hp.diff_weight, hp.sim_weight, hp.recon_weight) == (
        64,
        0.0,
        0.3,
        1.0,
        0.8,
    )
    assert MISA.resolve_hparams("mosi").learning_rate == 1e-4


@pytest.mark.parametrize(
    "overrides",
    [
        {"hidden_size": 127},
        {"feature_text_encoder": "bert"},
        {"diff_weight": -0.1},
        {"cmd_moments": 0},
    ],
)
def test_bad_hparams_raise_a_config_error(tiny_data, overrides) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError):
        _model(spec, **overrides)


# -- the contract checks of tests/test_methods_contract.py, for MISA -----------------------------
def test_loss_falls_on_a_small_batch(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _model(spec, learning_rate=3e-3), _batch(splits)
    optimizer = torch.optim.Adam(model.parameters(), lr=model.hparams.learning_rate)
    model.eval()
    with torch.no_grad():
        before = float(_total(model, batch))
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        _total(model, batch).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert float(_total(model, batch)) < 0.8 * before


def test_deterministic_under_a_seed(tiny_data) -> None:
    spec, splits = tiny_data
    results = []
    for _ in range(2):
        model = _model(spec, seed=7)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(7)
        for batch in iterate_batches(splits["train"], 16, shuffle=True, generator=generator):
            optimizer.zero_grad()
            _total(model, batch).backward()
            optimizer.step()
        model.eval()
        results.append(model(_batch(splits))["prediction"].detach())
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize("text_encoder", ["lstm", "mean"])
def test_accepts_length_one_sequences_and_any_dims(tiny_data, text_encoder) -> None:
    spec, _ = tiny_data
    dims = {"text": 3, "audio": 5, "vision": 1}
    small_spec = replace(spec, feature_dims=dims, max_lengths={m: 1 for m in dims})
    model = _model(small_spec, feature_text_encoder=text_encoder)
    batch = Batch(
        features={m: torch.randn(4, 1, d) for m, d in dims.items()},
        lengths={m: torch.ones(4, dtype=torch.long) for m in dims},
        labels=torch.zeros(4),
        index=torch.arange(4),
    )
    model.train()
    outputs = model(batch)
    assert torch.isfinite(outputs["prediction"]).all()
    assert all(torch.isfinite(t) for t in model.loss_terms(batch, outputs).values())


# -- learning ----------------------------------------------------------------------------------
def test_learns_the_synthetic_task_better_than_the_training_mean(tmp_path) -> None:
    directory = tmp_path / "synth"
    config = SyntheticConfig(n_train=300, n_valid=100, n_test=100, seed=1)
    write_synthetic_store(directory, config, dataset="synth")
    spec, splits = load_dataset(directory)
    # MMSA's lr 1e-4 is tuned for a fine-tuned BERT and thousands of samples; 1e-3 learns here
    hparams = MISA.resolve_hparams(spec.kind, {"learning_rate": 1e-3, "batch_size": 32})
    model = build_model(MISA, hparams, spec, seed=0)
    loop = LoopConfig(max_epochs=10, patience=10, progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("synth", "misa", 0), 0)
    train_mean = splits["train"].labels.mean()
    baseline = float((splits["valid"].labels - train_mean).abs().mean())
    assert outcome.best_valid["mae"] < 0.8 * baseline
    assert {"task", "diff", "cmd", "recon", "total"} <= set(outcome.history[0].train)


def test_audio_and_vision_are_read_over_the_text_lengths_as_mmsa_does(tiny_data) -> None:
    """MMSA's MISA packs audio and vision with the text's lengths (`av_lengths: text`, the
    default): the first L_text steps of each, zero padding included; "own" reads their own."""
    from methods.common.encoders import pad_steps

    spec, splits = tiny_data
    batch = _batch(splits)
    text_lengths = batch.lengths["text"]
    assert not torch.equal(text_lengths, batch.lengths["audio"])  # the check means something
    assert _model(spec).hparams.av_lengths == "text"
    for av_lengths in ("text", "own"):
        model = _model(spec, av_lengths=av_lengths).eval()
        for m in ("audio", "vision"):
            x = batch.features[m]
            if av_lengths == "text":
                expected = model.sequence_encoders[m](
                    pad_steps(x, max(x.shape[1], int(text_lengths.max()))), text_lengths
                )
            else:
                expected = model.sequence_encoders[m](x, batch.lengths[m])
            with torch.no_grad():
                assert torch.allclose(model._encode(m, batch), expected, atol=1e-6)
    own, text = _model(spec, av_lengths="own").eval(), _model(spec).eval()
    with torch.no_grad():
        assert not torch.allclose(own._encode("audio", batch), text._encode("audio", batch))
    # text longer than the audio sequence: zero-padded (MMSA would fail), not an error
    short = Batch(
        features={**batch.features, "audio": batch.features["audio"][:, :1]},
        lengths={**batch.lengths, "audio": torch.ones_like(batch.lengths["audio"])},
        labels=batch.labels,
        index=batch.index,
    )
    assert torch.isfinite(text(short)["prediction"]).all()
    with pytest.raises(ConfigError, match=r"hparams\.av_lengths: expected one of text, own"):
        MISA.resolve_hparams("mosi", {"av_lengths": "audio"})
