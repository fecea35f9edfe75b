"""Feature preprocessing as settings: the dataset's `standardize` (msabench z-scores, MMSA feeds
raw features) and the pooled encoders' `feature_steps` (msabench reads real steps, MMSA the
padded length), each checked against the reference computation written out by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from harness.data.declaration import DatasetConfig, parse_dataset
from harness.data.loading import iterate_batches, load_dataset, load_split
from harness.data.sources import fetch_dataset
from harness.data.store import read_manifest
from harness.errors import ConfigError
from methods import load_method
from methods.common.encoders import PooledUnimodalEncoders, padded_mean

SMALL = {
    "seed": 5,
    "n_train": 40,
    "n_valid": 12,
    "n_test": 12,
    "max_lengths": {"text": 7, "audio": 9, "vision": 6},
    "feature_dims": {"text": 5, "audio": 4, "vision": 6},
    "noise_dims": {"text": 1, "audio": 1, "vision": 1},
}


def _store(tmp_path, standardize: bool | None):
    section = {"source": "synthetic", "kind": "mosi", "synthetic": SMALL}
    if standardize is not None:
        section["standardize"] = standardize
    config = parse_dataset("small", section, "params.yaml")
    target = tmp_path / ("raw" if standardize is False else "z")
    fetch_dataset(config, target)
    return target


def test_standardize_is_recorded_in_the_store_and_followed_by_the_loader(tmp_path):
    raw_store, z_store = _store(tmp_path, False), _store(tmp_path, None)
    assert read_manifest(raw_store).standardize is False
    assert read_manifest(z_store).standardize is True  # the default: msabench's z-scoring
    _, raw = load_dataset(raw_store)
    _, scaled = load_dataset(z_store)
    stored = load_split(raw_store, "train")
    for m in ("text", "audio", "vision"):
        # MMSA's treatment: exactly the stored values
        assert torch.equal(raw["train"].features[m], stored.features[m])
        # msabench's: mean 0, std 1 over the training set's real steps
        x, lengths = scaled["train"].features[m], scaled["train"].lengths[m]
        mask = torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        real = x[mask]
        assert torch.allclose(real.mean(0), torch.zeros(real.shape[1]), atol=1e-5)
        assert torch.allclose(real.std(0, unbiased=False), torch.ones(real.shape[1]), atol=1e-4)
    # an explicit argument still overrides the store (the train stage reads raw test labels)
    _, forced = load_dataset(z_store, standardize=False)
    assert torch.equal(forced["train"].features["audio"], stored.features["audio"])


def test_standardize_must_be_a_boolean():
    section = {"source": "synthetic", "kind": "mosi", "standardize": "no"}
    with pytest.raises(ConfigError, match=r"datasets\.small\.standardize: expected true or false"):
        parse_dataset("small", section, "params.yaml")
    assert DatasetConfig("d", "synthetic", "mosi", {}).standardize is True


def test_padded_mean_is_mmsa_mean_over_the_padded_axis():
    rng = np.random.default_rng(0)
    lengths = np.array([3, 5, 1, 5])
    x = rng.standard_normal((4, 9, 3)).astype(np.float32)
    x[np.arange(9)[None, :] >= lengths[:, None]] = 0.0  # stores zero every padding step
    expected = np.mean(x, axis=1)  # MMSA's MMDataset with need_normalized: over all 9 steps
    trimmed = torch.from_numpy(x[:, :5])  # a batch is trimmed to its longest row
    assert np.allclose(padded_mean(trimmed, 9).numpy(), expected, atol=1e-6)
    assert not np.allclose(trimmed.mean(1).numpy(), expected, atol=1e-3)


def _encoders(steps: str, spec) -> PooledUnimodalEncoders:
    torch.manual_seed(0)
    dims = spec.feature_dims
    hidden = {"text": 8, "audio": 3, "vision": 3}
    return PooledUnimodalEncoders(
        dims, hidden, 6, dict.fromkeys(dims, 0.0), steps, spec.max_lengths
    )


def test_padded_steps_follow_mmsa_text_subnet_and_pooling(tiny_data):
    spec, splits = tiny_data
    batch = next(iterate_batches(splits["train"], 16, shuffle=False))
    encoders = _encoders("padded", spec).eval()
    with torch.no_grad():
        out = encoders(batch)
        # MMSA's TextSubNet: nn.LSTM over the whole padded sequence, h_n of the last step
        lstm = nn.LSTM(spec.feature_dims["text"], 8, batch_first=True)
        lstm.load_state_dict(encoders.text.rnn.forward_rnn.state_dict())
        text = torch.zeros(batch.size, spec.max_lengths["text"], spec.feature_dims["text"])
        text[:, : batch.features["text"].shape[1]] = batch.features["text"]
        _, (h_n, _) = lstm(text)
        expected_text = encoders.text.project(h_n[0])
        audio = batch.features["audio"] * batch.mask("audio").unsqueeze(-1)
        expected_audio = encoders.audio(audio.sum(1) / spec.max_lengths["audio"])
    assert torch.allclose(out["text"], expected_text, atol=1e-5)
    assert torch.allclose(out["audio"], expected_audio, atol=1e-5)
    # the real-step form differs on rows shorter than the padded length
    real = _encoders("real", spec).eval()
    real.load_state_dict(encoders.state_dict())
    with torch.no_grad():
        assert not torch.allclose(real(batch)["text"], out["text"], atol=1e-4)


@pytest.mark.parametrize("name", ["lf_dnn", "tfn", "lmf"])
def test_feature_steps_is_a_checked_switch_with_msabench_default(name, tiny_data):
    spec, splits = tiny_data
    method = load_method(name)
    assert method.resolve_hparams("mosi").feature_steps == "real"
    with pytest.raises(ConfigError, match=rf"methods\.{name}\.hparams\.feature_steps: expected"):
        method.resolve_hparams("mosi", {"feature_steps": "all"}, where=f"methods.{name}.hparams")
    hparams = dataclasses.replace(method.resolve_hparams("mosi"), feature_steps="padded")
    model = method(hparams, spec).eval()
    batch = next(iterate_batches(splits["valid"], 8, shuffle=False))
    prediction = model(batch)["prediction"]
    assert prediction.shape == (8,) and torch.isfinite(prediction).all()
