"""MulT and MMIM: the registry contract, their loss terms, MMIM's estimator step, padding
invariance, and learning on the synthetic benchmark."""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path

import optuna
import pytest
import torch

import methods.mmim  # noqa: F401  (import registers the method)
import methods.mult  # noqa: F401  (import registers the method)
from harness.data.loading import iterate_batches, load_dataset, take_batch
from harness.data.synthetic import SyntheticConfig, write_synthetic_store
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
from methods import METHODS
from methods.common.transformer import CrossModalTransformer
from methods.search_space import suggest_all

NAMES = ["mult", "mmim"]
# small sizes for the training tests (the reference MulT is slow on two CPU cores)
SMALL = {
    "mult": {"model_dim": 30, "num_heads": 5, "levels": 1, "memory_levels": 1},
    "mmim": {"text_hidden": 32, "text_out": 32},
}
MMIM_TERMS = {"task", "mmilb", "entropy", "cpc"}


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a loaded two-core machine two threads contend and these small
    models train ~25x slower (measured: MMIM 2.9 s vs 79 s per synthetic epoch)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(name: str, spec, seed: int = 0, **overrides):
    cls = METHODS.get(name)
    return build_model(cls, cls.resolve_hparams(spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


def _total(model, batch: Batch) -> torch.Tensor:
    return torch.stack(list(model.loss_terms(batch, model(batch)).values())).sum()


# -- the registry contract (tests/test_methods_contract.py, for these two methods) -------------
@pytest.mark.parametrize("name", NAMES)
def test_builds_and_predicts_bounded_finite_scores(name, tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(name, spec)
    batch = _batch(splits)
    prediction = model(batch)["prediction"]
    assert prediction.shape == (batch.size,)
    assert torch.isfinite(prediction).all()
    low, high = spec.label_range
    assert (prediction >= low).all() and (prediction <= high).all()


@pytest.mark.parametrize("name", NAMES)
def test_named_terms_are_present_finite_scalars(name, tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(name, spec)
    batch = _batch(splits)
    terms = model.loss_terms(batch, model(batch))
    assert set(terms) == ({"task"} if name == "mult" else MMIM_TERMS)
    assert set(terms) <= set(model.loss_weights())
    for term in terms.values():
        assert term.ndim == 0 and torch.isfinite(term)


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_on_a_small_batch(name, tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(name, spec, learning_rate=3e-3)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = _batch(splits)
    model.start_epoch(1)  # both measured at an epoch's start (MMIM's entropy memory empty)
    model.eval()
    with torch.no_grad():
        before = float(_total(model, batch))
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        _total(model, batch).backward()
        optimizer.step()
    model.start_epoch(2)
    model.eval()
    with torch.no_grad():
        after = float(_total(model, batch))
    assert after < 0.8 * before


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed(name, tiny_data) -> None:
    spec, splits = tiny_data
    results = []
    for _ in range(2):
        model = _model(name, spec, seed=7)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(7)
        for batch in iterate_batches(splits["train"], 16, shuffle=True, generator=generator):
            model.extra_step(batch)
            loss = _total(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        results.append(model(_batch(splits))["prediction"].detach())
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [1, 0])
def test_accepts_short_or_empty_sequences_and_any_dims(name, steps, tiny_data) -> None:
    spec, _ = tiny_data
    dims = {"text": 3, "audio": 5, "vision": 1}
    small_spec = replace(spec, feature_dims=dims, max_lengths={m: 1 for m in dims})
    model = _model(name, small_spec)
    batch = Batch(
        features={m: torch.randn(4, steps, d) for m, d in dims.items()},
        lengths={m: torch.full((4,), steps, dtype=torch.long) for m in dims},
        labels=torch.tensor([1.0, -1.0, 0.5, -0.5]),
        index=torch.arange(4),
    )
    model.train()
    outputs = model(batch)
    assert torch.isfinite(outputs["prediction"]).all()
    assert all(torch.isfinite(t) for t in model.loss_terms(batch, outputs).values())


@pytest.mark.parametrize("name", NAMES)
def test_search_space_samples_valid_hparams_that_build(name, tiny_data) -> None:
    spec, splits = tiny_data
    cls = METHODS.get(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        sampled = suggest_all(study.ask(), cls.SEARCH_SPACE)
        hparams = cls.resolve_hparams("mosi", sampled)
        assert asdict(hparams).items() >= sampled.items()
        model = build_model(cls, hparams, spec, seed=0)
        assert torch.isfinite(model(_batch(splits, 4))["prediction"]).all()


@pytest.mark.parametrize("name", NAMES)
def test_module_docstring_names_its_reference(name) -> None:
    module = sys.modules[METHODS.get(name).__module__]
    assert module.__doc__ and len(module.__doc__.split()) > 30


@pytest.mark.parametrize("name", NAMES)
def test_prediction_does_not_depend_on_padding(name, tiny_data) -> None:
    spec, splits = tiny_data
    model = _model(name, spec)
    model.eval()
    index = torch.arange(16)
    batch = _batch(splits)
    shortest = int(torch.argmin(batch.lengths["audio"]))
    alone = take_batch(splits["train"], index[shortest : shortest + 1])
    with torch.no_grad():
        together = model(batch)["prediction"][shortest]
        single = model(alone)["prediction"][0]
    assert float(together) == pytest.approx(float(single), abs=1e-5)


# -- MulT ------------------------------------------------------------------------------------
def test_mult_rejects_heads_that_do_not_divide_the_model_dimension(tiny_data) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match="num_heads"):
        _model("mult", spec, model_dim=30, num_heads=4)


def test_mult_sims_defaults_follow_mmsa() -> None:
    hparams = METHODS.get("mult").resolve_hparams("sims")
    assert (hparams.levels, hparams.memory_levels, hparams.audio_kernel) == (2, 3, 1)


def test_cross_modal_transformer_never_attends_to_padding() -> None:
    torch.manual_seed(0)
    encoder = CrossModalTransformer(8, 2, layers=2).eval()
    target, source = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    target_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    source_mask = torch.tensor([[True] * 4 + [False] * 3, [True] * 7])
    changed = source.clone()
    changed[0, 4:] = 100.0  # padding of the first source sequence
    with torch.no_grad():
        out = encoder(target, target_mask, source, source_mask)
        out_changed = encoder(target, target_mask, changed, source_mask)
    assert out.shape == (2, 5, 8)
    assert torch.allclose(out, out_changed, atol=1e-6)
    assert (out[1, 3:] == 0).all()  # padded target rows are zero


# -- learning on the synthetic benchmark -----------------------------------------------------
@pytest.fixture(scope="module")
def synth_data(tmp_path_factory: pytest.TempPathFactory):
    directory: Path = tmp_path_factory.mktemp("synth") / "synth"
    config = SyntheticConfig(n_train=300, n_valid=100, n_test=100, seed=1)
    write_synthetic_store(directory, config, dataset="synth")
    return load_dataset(directory)


def _fit(name: str, data, seed: int, epochs: int):
    spec, splits = data
    model = _model(name, spec, seed=seed, **SMALL[name])
    loop = LoopConfig(max_epochs=epochs, patience=epochs, progress=False)
    return fit(model, splits["train"], splits["valid"], loop, RunContext("synth", name, seed), seed)


@pytest.mark.parametrize("name", NAMES)
def test_learns_the_synthetic_benchmark(name, synth_data) -> None:
    _, splits = synth_data
    outcome = _fit(name, synth_data, seed=0, epochs=10)
    mean_mae = float((splits["valid"].labels - splits["train"].labels.mean()).abs().mean())
    assert outcome.best_valid["mae"] < 0.9 * mean_mae
    for log in outcome.history:
        assert set(outcome.model.loss_weights()) >= set(log.train) - {
            "total",
            "mmilb_lld",
            "mmilb_nll",
            "mmilb_total",
        }


@pytest.mark.parametrize("name", NAMES)
def test_fit_is_deterministic_under_a_seed(name, tiny_data) -> None:
    _, splits = tiny_data
    runs = [_fit(name, tiny_data, seed=3, epochs=2) for _ in range(2)]
    predictions = [evaluate(run.model, splits["test"], 64, "cpu")[1] for run in runs]
    assert (predictions[0] == predictions[1]).all()
    assert [h.train for h in runs[0].history] == [h.train for h in runs[1].history]


# -- MulT: MMSA's architecture by default, msabench's behind switches --------------------------
def test_future_mask_is_mmsas_buffered_future_mask() -> None:
    from methods.common.transformer import future_mask

    inf = float("-inf")
    assert future_mask(2, 4).tolist() == [[0.0, 0.0, 0.0, inf], [0.0, 0.0, 0.0, 0.0]]
    assert future_mask(3, 3).tolist() == [[0.0, inf, inf], [0.0, 0.0, inf], [0.0, 0.0, 0.0]]


def test_mult_reference_reads_the_last_padded_step_and_attends_to_padding(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits, 8)
    short = int(batch.lengths["audio"].argmin())
    assert batch.lengths["audio"][short] < spec.max_lengths["audio"]
    features = dict(batch.features)
    audio = features["audio"].clone()
    audio[short, batch.lengths["audio"][short] :] = 5.0  # garbage in the padding
    changed = Batch(features={**features, "audio": audio}, lengths=batch.lengths,
                    labels=batch.labels, index=batch.index)  # fmt: skip
    # kernel 1: a wider "same" convolution would itself read the garbage at the boundary
    reference = _model("mult", spec, audio_kernel=1)  # MMSA: future mask, padding attended
    ours = _model(
        "mult",
        spec,
        audio_kernel=1,
        pooling="last",
        attention_masking="padding",
        conv_padding="same",
    )
    for model in (reference, ours):
        model.eval()
    with torch.no_grad():
        moved = (reference(changed)["prediction"] - reference(batch)["prediction"]).abs()
        kept = (ours(changed)["prediction"] - ours(batch)["prediction"]).abs()
    assert moved[short] > 1e-4  # MMSA's MulT sees its padding
    assert kept.max() < 1e-5  # msabench's masks it out


def test_mult_valid_convolution_shortens_by_kernel_minus_one(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model("mult", spec, audio_kernel=3, text_kernel=1)
    projected = model.project(_batch(splits, 4))
    assert projected["audio"][0].shape[1] == spec.max_lengths["audio"] - 2
    assert projected["vision"][0].shape[1] == spec.max_lengths["vision"] - 4
    assert projected["text"][0].shape[1] == spec.max_lengths["text"]
    same = _model("mult", spec, pooling="last", attention_masking="padding", conv_padding="same")
    batch = _batch(splits, 4)
    assert same.project(batch)["audio"][0].shape[1] == batch.features["audio"].shape[1]


def test_mult_no_projection_where_the_width_is_already_model_dim(tiny_data) -> None:
    spec, _ = tiny_data
    width = spec.feature_dims["audio"]  # 6: a model_dim of 6 with 2 heads
    model = _model("mult", spec, model_dim=width, num_heads=2)
    assert "audio" not in model.projections and "text" in model.projections
    same = _model("mult", spec, model_dim=width, num_heads=2, pooling="last",
                  attention_masking="padding", conv_padding="same")  # fmt: skip
    assert "audio" in same.projections


def test_mult_positions_and_kv_dropout_switches() -> None:
    encoder = CrossModalTransformer(8, 2, 1, embed_dropout=0.5, positions=False)
    x = torch.randn(2, 5, 8)
    encoder.eval()
    assert torch.allclose(encoder.embed(x, None), x * 8**0.5)
    with_positions = CrossModalTransformer(8, 2, 1, positions=True).eval()
    assert not torch.allclose(with_positions.embed(x, None), x * 8**0.5)
    encoder.train()
    torch.manual_seed(0)
    first, second = encoder.embed(x, None), encoder.embed(x, None)
    assert not torch.equal(first, second)  # separate keys and values get separate masks


def test_mult_pooling_and_masking_must_agree(tiny_data) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match="pooling/attention_masking: 'last_padded'"):
        _model("mult", spec, attention_masking="padding")
    with pytest.raises(ConfigError, match="conv_padding: expected one of"):
        _model("mult", spec, conv_padding="full")
