"""TFR-Net: the registry contract, its named loss terms and their weights, the incomplete training
view (per-sample masks, [UNK] tokens), MMSA's reconstruction loss, the BiGRU and the temporal
Transformer's axis, the token path, and learning on the synthetic benchmark."""

from __future__ import annotations

import inspect

import pytest
import test_methods_contract as contract
import torch
from learning_check import assert_learns_and_logs_terms
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import methods.tfr_net  # noqa: F401  (import registers the method)
from harness.data.loading import take_batch
from harness.data.types import Batch, DataSpec, TokenBatch
from harness.errors import ConfigError
from harness.training.loop import build_model
from methods import METHODS
from methods.common.feature_reconstruction import (
    MissingView,
    MMSATransformer,
    divisor_heads,
    dropped_tokens,
    reconstruction_terms,
)
from methods.common.gated_fusion import RealStepsBiGRU, real_mask
from methods.tfr_net import TFRNet

NAME = "tfr_net"
GEN_TERMS = {f"{p}_{m}" for p in ("rec", "sim") for m in ("text", "audio", "vision")}
TERMS = {"task"} | GEN_TERMS
SMALL = {
    "model_dim": 12,
    "num_heads": 2,
    "levels": 1,
    "memory_levels": 1,
    "num_temporal_heads": 2,
    "fusion_text_hidden": 8,
    "fusion_audio_hidden": 8,
    "fusion_vision_hidden": 8,
    "fusion_gru_layers": 1,
    "classifier_hidden": 16,
}
# small sizes that learn within 8 epochs at MMSA's batch 24 and rates
LEARN = {
    **SMALL,
    "model_dim": 18,
    "num_heads": 3,
    "num_temporal_heads": 1,
    "fusion_text_hidden": 24,
    "fusion_audio_hidden": 12,
    "fusion_vision_hidden": 24,
    "classifier_hidden": 64,
}
CONTRACT_CHECKS = [getattr(contract, name) for name in dir(contract) if name.startswith("test_")]


def _model(spec, seed: int = 0, **overrides) -> TFRNet:
    return build_model(TFRNet, TFRNet.resolve_hparams(spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


def _training(model: TFRNet, epoch: int = 2) -> TFRNet:
    model.train()
    model.start_epoch(epoch)
    return model


# -- the registry-wide contract ----------------------------------------------------------------
@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda check: check.__name__)
def test_contract(check, request) -> None:
    if "tiny_data" in inspect.signature(check).parameters:
        check(NAME, request.getfixturevalue("tiny_data"))
    else:
        check(NAME)


def test_registered_with_mmsa_defaults() -> None:
    assert METHODS.get(NAME) is TFRNet
    hp = TFRNet.resolve_hparams("mosi")
    assert (hp.model_dim, hp.num_heads, hp.levels, hp.batch_size, hp.learning_rate) == (
        30, 6, 3, 24, 1e-3,
    )  # fmt: skip
    assert (hp.grad_clip, hp.grad_clip_mode, hp.lr_scheduler, hp.output_head) == (
        0.8, "value", "plateau", "linear",
    )  # fmt: skip
    sims = TFRNet.resolve_hparams("sims")
    assert (sims.levels, sims.batch_size, sims.scheduler_patience, sims.weight_gen_vision) == (
        2, 16, 10, 1e-4,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="audio_kernel"):
        TFRNet.resolve_hparams("mosi", {"audio_kernel": 4})


# -- equality with MMSA's TFR_NET ---------------------------------------------------------------
# MMSA's TFR_NET (thuiar/MMSA a94e65d, its mosi config, num_temporal_head 2, BERT replaced by a
# stub returning the given states) with msabench's weights below loaded by name, in eval mode:
# its predictions on the complete batch, and its generator loss (weighted RECLoss, 3 modalities)
# with the keep-mask below as its missing view (/tmp/issue22/tfr_net/equiv/pin_*.py made them)
MMSA_COMPLETE = ([0.948889, 0.982054, 0.97401], 4.05)
MMSA_MISSING = ([0.947976, 0.982054, 0.94556], 9.43383)


def _mmsa_filled() -> tuple[TFRNet, Batch, dict[str, torch.Tensor]]:
    """msabench's TFR-Net at MMSA's mosi sizes on tiny shapes, every float tensor of its state
    filled from torch.Generator().manual_seed(0) in sorted name order (randn x fan_in^-0.5 for
    matrices, x 0.5 for vectors; BatchNorm variances in [0.5, 1.5)), then the inputs (3 rows, rows
    1-2 shorter, zeros after their lengths) and a keep-mask drawn from the same generator."""
    dims, steps = {"text": 7, "audio": 5, "vision": 6}, {"text": 6, "audio": 4, "vision": 2}
    spec = DataSpec("mosi", dims, steps, (-3.0, 3.0))
    model = _model(spec, text_encoder="features", num_temporal_heads=2).eval()
    generator = torch.Generator().manual_seed(0)
    state = model.state_dict()
    for name in sorted(state):
        shape = state[name].shape
        if not state[name].is_floating_point():
            continue
        if name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=generator) + 0.5
            continue
        scale = shape[-1] ** -0.5 if len(shape) > 1 else 0.5
        state[name] = torch.randn(shape, generator=generator) * scale
    model.load_state_dict(state)
    lengths = {"text": [6, 3, 5], "audio": [4, 2, 1], "vision": [2, 2, 1]}
    features, keep = {}, {}
    for m in dims:
        real = torch.arange(steps[m]) < torch.tensor(lengths[m]).unsqueeze(1)
        features[m] = torch.randn(3, steps[m], dims[m], generator=generator) * real.unsqueeze(-1)
        keep[m] = torch.rand(3, steps[m], generator=generator) > 0.4
    lengths = {m: torch.tensor(n) for m, n in lengths.items()}
    return model, Batch(features, lengths, torch.zeros(3), torch.arange(3)), keep


def test_predictions_and_reconstruction_loss_equal_mmsa_tfr_net() -> None:
    model, batch, keep = _mmsa_filled()
    with torch.no_grad():
        torch.testing.assert_close(
            model(batch)["prediction"], torch.tensor(MMSA_COMPLETE[0]), atol=2e-5, rtol=0
        )
        read = model.read(batch, keep)
        masks = {m: real_mask(n, model.steps[m]) for m, n in read["lengths"].items()}
        aligned, temporal = model.alignment(read["inputs"], masks, temporal=True)
        _, prediction = model.fusion(aligned, read["lengths"])
        weights, loss = model.loss_weights(), 0.0
        for m, dropped in read["dropped"].items():
            generated = model.generators[m](temporal[m])
            parts = reconstruction_terms(generated, read["targets"][m], dropped, "combine", 3)
            loss += sum(float(weights[f"{p}_{m}"] * v) for p, v in parts.items())
    torch.testing.assert_close(prediction, torch.tensor(MMSA_MISSING[0]), atol=2e-5, rtol=0)
    assert loss == pytest.approx(MMSA_MISSING[1], rel=1e-5)


# -- outputs and loss terms --------------------------------------------------------------------
def test_outputs_and_the_exact_named_terms(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _training(_model(spec, **SMALL)), _batch(splits)
    outputs = model(batch)
    assert outputs["prediction"].shape == (16,) and torch.isfinite(outputs["prediction"]).all()
    assert outputs["fused"].shape == (16, 24)
    for m, width in spec.feature_dims.items():
        steps = spec.max_lengths[m]
        assert outputs[f"generated_{m}"].shape == outputs[f"target_{m}"].shape == (16, steps, width)
        assert outputs[f"dropped_{m}"].shape == (16, steps)
    terms = model.loss_terms(batch, outputs)
    assert set(terms) == TERMS == set(model.loss_weights())
    assert all(t.ndim == 0 and torch.isfinite(t) and t > 0 for t in terms.values())
    model.eval()  # eval: the batch as given, task only
    outputs = model(batch)
    assert set(model.loss_terms(batch, outputs)) == {"task"}
    assert not any(name.startswith(("dropped", "generated")) for name in outputs)


def test_reconstruction_terms_are_zero_in_the_warm_up_epoch(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _training(_model(spec, **SMALL), epoch=1), _batch(splits)
    outputs = model(batch)
    assert "generated_text" not in outputs
    terms = model.loss_terms(batch, outputs)
    assert set(terms) == TERMS and all(float(terms[t]) == 0.0 for t in GEN_TERMS)


@pytest.mark.parametrize(
    ("overrides", "removed"),
    [
        ({"weight_gen_audio": 0.0}, {"rec_audio", "sim_audio"}),
        ({"weight_sim_loss": 0.0}, {"sim_text", "sim_audio", "sim_vision"}),
        ({"reconstruction_loss": "smooth_l1"}, {"sim_text", "sim_audio", "sim_vision"}),
        ({"use_generator": False}, GEN_TERMS),
    ],
)
def test_a_zero_weight_or_switch_removes_terms(tiny_data, overrides, removed) -> None:
    spec, splits = tiny_data
    model, batch = _training(_model(spec, **SMALL, **overrides)), _batch(splits)
    assert set(model.loss_terms(batch, model(batch))) == TERMS - removed


def test_weights_scale_their_terms(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    values = []
    for weight in (1.0, 3.0):
        model = _training(_model(spec, **SMALL, weight_gen_text=weight, text_dropout=0.0))
        torch.manual_seed(0)  # the same dropout masks
        terms = model.loss_terms(batch, model(batch))
        values.append((float(terms["rec_text"].detach()), float(terms["sim_text"].detach())))
    assert values[1][0] == pytest.approx(3 * values[0][0], rel=1e-5)
    assert values[1][1] == pytest.approx(3 * values[0][1], rel=1e-5)


def test_reconstruction_terms_match_a_hand_computation() -> None:
    g = torch.Generator().manual_seed(0)
    generated, target = torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 4, generator=g)
    dropped = torch.rand(3, 5, generator=g) > 0.5
    terms = reconstruction_terms(generated, target, dropped, "combine", 3)
    rows = dropped.reshape(-1)
    count = 4 * int(rows.sum()) + 1e-4
    diff = (generated - target).reshape(-1, 4)[rows].abs()
    smooth = torch.where(diff < 1, 0.5 * diff**2, diff - 0.5).sum()
    assert float(terms["rec"]) == pytest.approx(float(smooth) / count, rel=1e-5)
    x = (generated * dropped.unsqueeze(-1)).reshape(-1, 4)  # every step, zeros where kept
    y = (target * dropped.unsqueeze(-1)).reshape(-1, 4)
    cmd = sum(
        float(torch.sqrt(((x - x.mean(0)).pow(k).mean(0) - (y - y.mean(0)).pow(k).mean(0))
                         .pow(2).sum() + 1e-12))
        for k in (2, 3)
    ) + float(torch.sqrt((x.mean(0) - y.mean(0)).pow(2).sum() + 1e-12))  # fmt: skip
    assert float(terms["sim"]) == pytest.approx(cmd / count, rel=1e-5)
    nothing = reconstruction_terms(generated, target, torch.zeros(3, 5, dtype=torch.bool), "mse", 3)
    assert float(nothing["rec"]) == 0.0


# -- the incomplete training view --------------------------------------------------------------
def test_per_sample_view_depends_only_on_seed_and_row() -> None:
    steps, rates = (
        {"text": 6, "audio": 9, "vision": 4},
        dict.fromkeys(("text", "audio", "vision"), 0.2),
    )
    view = MissingView(5, steps, rates, "per_sample")
    first = view.keep(torch.tensor([3, 7, 11]))
    again = view.keep(torch.tensor([11, 2, 3]))  # another batch, another order
    for m in steps:
        assert torch.equal(first[m][0], again[m][2]) and torch.equal(first[m][2], again[m][0])
    other = MissingView(6, steps, rates, "per_sample").keep(torch.tensor([3, 7, 11]))
    assert any(not torch.equal(first[m], other[m]) for m in steps)
    redrawn = MissingView(5, steps, rates, "per_batch")
    assert not torch.equal(
        redrawn.keep(torch.arange(3))["audio"], redrawn.keep(torch.arange(3))["audio"]
    )
    big = MissingView(5, steps, rates, "per_sample").keep(torch.arange(2000))  # MMSA: u > rate
    assert 0.18 < 1 - float(big["audio"].float().mean()) < 0.22


def test_training_view_zeroes_dropped_frames_only_at_real_steps(tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _training(_model(spec, **SMALL, audio_missing_rate=0.5)), _batch(splits)
    read = model.read(batch, model.missing.keep(batch.index))
    x, dropped = read["inputs"]["audio"], read["dropped"]["audio"]
    real = torch.arange(x.shape[1]) < batch.lengths["audio"].unsqueeze(1)
    assert dropped.any() and not (dropped & ~real).any()
    assert (x[dropped] == 0).all()
    kept = real & ~dropped
    torch.testing.assert_close(x[kept], read["targets"]["audio"][kept])


def test_eval_reads_the_batch_as_given(tiny_data) -> None:
    spec, splits = tiny_data
    batch = _batch(splits)
    predictions = []
    for rate in (0.0, 0.9):
        model = _model(spec, **SMALL, text_missing_rate=rate, audio_missing_rate=rate)
        model.eval()
        with torch.no_grad():
            predictions.append(model(batch)["prediction"])
    torch.testing.assert_close(predictions[0], predictions[1])


def test_dropped_tokens_keep_cls_and_sep() -> None:
    ids = torch.tensor([[101, 7, 8, 9, 102, 0], [101, 5, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    tokens = TokenBatch(ids, mask, torch.zeros_like(ids), unk_id=100)
    dropped = dropped_tokens(torch.zeros(2, 6, dtype=torch.bool), tokens)  # every step dropped
    expected = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(dropped, expected)


def test_token_path_unk_view_and_complete_target(tiny_token_data) -> None:
    spec, splits = tiny_token_data
    model = _training(_model(spec, **SMALL, text_missing_rate=0.5))
    assert model.text_mode == "pretrained"
    batch = _batch(splits, 8)
    keep = model.missing.keep(batch.index)
    read = model.read(batch, keep)
    dropped = dropped_tokens(keep["text"], batch.tokens)
    assert dropped.any()
    steps = spec.tokens.max_length
    assert read["inputs"]["text"].shape == (8, steps, model.dims["text"])
    complete = model.encode_tokens([batch.tokens])[0]
    model.eval()  # no dropout: the target is the text model's states of the complete tokens
    with torch.no_grad():
        torch.testing.assert_close(
            model.read(batch, keep)["targets"]["text"], model.encode_tokens([batch.tokens])[0]
        )
    assert complete.shape == (8, steps, model.dims["text"])
    model = _training(model)
    terms = model.loss_terms(batch, model(batch))
    sum(terms.values()).backward()
    encoder = model.text_encoder.model.embeddings.word_embeddings.weight
    assert set(terms) == TERMS and encoder.grad is not None and encoder.grad.abs().sum() > 0


# -- blocks ------------------------------------------------------------------------------------
def test_bigru_equals_packed_nn_gru() -> None:
    torch.manual_seed(0)
    ours, reference = RealStepsBiGRU(5, 4, 2), torch.nn.GRU(5, 4, 2, bidirectional=True)
    for layer in range(2):
        for side, suffix in (("forward_layers", ""), ("backward_layers", "_reverse")):
            gru = getattr(ours, side)[layer]
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(gru, f"{name}_l0").data.copy_(
                    getattr(reference, f"{name}_l{layer}{suffix}")
                )
    x, lengths = torch.randn(3, 6, 5), torch.tensor([6, 2, 4])
    packed = pack_padded_sequence(x.transpose(0, 1), lengths, enforce_sorted=False)
    expected = pad_packed_sequence(reference(packed)[0], total_length=6)[0].transpose(0, 1)
    torch.testing.assert_close(ours(x, lengths), expected, atol=1e-6, rtol=1e-5)


def test_positions_skip_steps_whose_first_channel_is_zero() -> None:
    net = MMSATransformer(4, 2, 1, positions=True, masking="future", skip_zero_steps=True)
    x = torch.ones(1, 3, 4)
    x[0, 1, 0] = 0.0
    embedded = net.embed(x, None) - 2.0 * x  # minus sqrt(4) * x: the positions alone
    assert embedded[0, 1].abs().max() == 0 and embedded[0, 0].abs().max() > 0
    assert divisor_heads(30, 25) == 15 and divisor_heads(50, 25) == 25 and divisor_heads(1, 25) == 1


@pytest.mark.parametrize("axis", ["batch", "channels"])
def test_temporal_attention_axis(tiny_data, axis) -> None:
    """MMSA's "batch" axis: a sample's reconstruction sees the batch's earlier samples (future
    mask), never later ones; "channels": each sample on its own."""
    spec, _ = tiny_data
    model = _model(spec, **SMALL, temporal_attention=axis)
    model.eval()
    aligned = torch.randn(4, spec.max_lengths["audio"], 36)
    changed = aligned.clone()
    changed[1] += torch.randn(changed.shape[1:])  # (a constant shift is normalised away)
    with torch.no_grad():
        before = model.alignment.run_temporal("audio", aligned)
        after = model.alignment.run_temporal("audio", changed)
    torch.testing.assert_close(before[0], after[0])
    moved = not torch.allclose(before[2:], after[2:])
    assert moved == (axis == "batch")


def test_empty_modality_and_binary_kind(tiny_data, tiny_binary_data) -> None:
    spec, splits = tiny_data
    model, batch = _training(_model(spec, **SMALL)), _batch(splits)
    batch.features["audio"] = torch.zeros(16, 0, spec.feature_dims["audio"])
    batch.lengths["audio"] = torch.zeros(16, dtype=torch.long)
    terms = model.loss_terms(batch, model(batch))
    assert all(torch.isfinite(t) for t in terms.values())
    spec, splits = tiny_binary_data
    model = _training(_model(spec, **SMALL))
    outputs = model(_batch(splits))
    assert ((outputs["prediction"] > 0) & (outputs["prediction"] < 1)).all()


def test_learns_on_the_short_synthetic_benchmark(short_synth_data) -> None:
    spec, splits = short_synth_data
    model = _model(spec, **LEARN)  # MMSA's batch 24 and rates
    assert_learns_and_logs_terms(model, splits, NAME, TERMS)
