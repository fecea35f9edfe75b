"""The synthetic benchmark: determinism, shapes, label form and the documented structure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.data.store import read_extras, read_manifest, verify_store
from harness.data.synthetic import (
    SyntheticConfig,
    clean_score,
    generate,
    write_synthetic_store,
)
from harness.data.types import MODALITIES, SPLITS
from harness.errors import ConfigError

SMALL = SyntheticConfig(
    n_train=40,
    n_valid=10,
    n_test=20,
    max_lengths={"text": 8, "audio": 12, "vision": 10},
    feature_dims={"text": 6, "audio": 5, "vision": 7},
    noise_dims={"text": 1, "audio": 1, "vision": 2},
)


@pytest.fixture(scope="module")
def default_data():
    return generate(SyntheticConfig())


def _all_bytes(data) -> list[bytes]:
    out = []
    for split in SPLITS:
        arrays = data.arrays[split]
        out += [arrays.labels.tobytes(), arrays.ids.tobytes()]
        out += [arrays.features[m].tobytes() + arrays.lengths[m].tobytes() for m in MODALITIES]
        out.append(data.latents[split].shared.tobytes())
    return out


def test_same_config_gives_identical_bytes():
    assert _all_bytes(generate(SMALL)) == _all_bytes(generate(SMALL))


def test_different_seed_differs():
    other = SyntheticConfig(**{**SMALL.to_dict(), "seed": 1})
    first, second = generate(SMALL), generate(other)
    assert not np.array_equal(first.arrays["train"].labels, second.arrays["train"].labels)
    assert not np.array_equal(
        first.arrays["train"].features["text"], second.arrays["train"].features["text"]
    )


def test_shapes_dtypes_and_ids():
    data = generate(SMALL)
    sizes = SMALL.split_sizes
    seen: set[str] = set()
    for split in SPLITS:
        arrays = data.arrays[split]
        n = sizes[split]
        assert arrays.labels.shape == (n,) and arrays.labels.dtype == np.float32
        for m in MODALITIES:
            shape = (n, SMALL.max_lengths[m], SMALL.feature_dims[m])
            assert arrays.features[m].shape == shape
            assert arrays.features[m].dtype == np.float32
            assert arrays.lengths[m].shape == (n,) and arrays.lengths[m].dtype == np.int64
        assert all(i.startswith("synth_") and len(i) == 11 for i in arrays.ids)
        seen |= set(arrays.ids.tolist())
    assert len(seen) == sum(sizes.values())  # splits disjoint, ids unique


def test_lengths_in_bounds_and_padding_zero(default_data):
    config = default_data.config
    for split in SPLITS:
        arrays = default_data.arrays[split]
        for m in MODALITIES:
            max_len, lengths, x = config.max_lengths[m], arrays.lengths[m], arrays.features[m]
            assert lengths.min() >= math.ceil(config.min_length_fraction * max_len)
            assert lengths.max() <= max_len
            padding = np.arange(max_len)[None, :] >= lengths[:, None]
            assert np.all(x[padding] == 0)
            last_real = x[np.arange(len(lengths)), lengths - 1]  # (N, D) at t = L - 1
            assert np.all(np.abs(last_real).sum(axis=1) > 0)
    all_lengths = np.concatenate([default_data.arrays[s].lengths["audio"] for s in SPLITS])
    assert len(np.unique(all_lengths)) > 10  # lengths vary


def test_labels_are_averaged_integer_ratings(default_data):
    k = default_data.config.n_annotators
    labels = np.concatenate([default_data.arrays[s].labels for s in SPLITS])
    assert labels.min() >= -3 and labels.max() <= 3
    scaled = labels.astype(np.float64) * k
    np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-4)
    assert np.any(labels == 0)
    assert len(np.unique(labels)) > 10


def test_latents_returned_and_consistent_with_labels(default_data):
    config = default_data.config
    for split in SPLITS:
        latents, n = default_data.latents[split], config.split_sizes[split]
        assert latents.shared.shape == (n, config.shared_dim)
        for m in MODALITIES:
            assert latents.unique[m].shape == (n, config.unique_dim)
            assert latents.nuisance[m].shape == (n, config.nuisance_dim)
        assert np.all(np.abs(latents.y_clean) < 3)
        recomputed = clean_score(latents.shared, latents.unique, default_data.parameters)
        np.testing.assert_allclose(recomputed, latents.y_clean)
    train = default_data.latents["train"]
    assert np.corrcoef(train.y_clean, default_data.arrays["train"].labels)[0, 1] > 0.9


def test_scale_is_the_std_of_the_raw_score(default_data):
    params = default_data.parameters
    expected = math.sqrt(1 + 1.0**2 + 0.6**2 + 0.4**2 + 0.5**2)
    assert params.scale == pytest.approx(expected)
    y_clean = np.concatenate([default_data.latents[s].y_clean for s in SPLITS])
    y_raw = np.arctanh(y_clean / 3) * params.scale
    assert np.std(y_raw) == pytest.approx(params.scale, rel=0.1)


def _pooled(arrays, modality: str) -> np.ndarray:
    """Mean over real time steps: (N, D)."""
    return arrays.features[modality].sum(axis=1) / arrays.lengths[modality][:, None]


def _ridge_r2(train_x, train_y, test_x, test_y, penalty: float = 1.0) -> float:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-8
    design = np.c_[(train_x - mean) / std, np.ones(len(train_x))]
    weights = np.linalg.solve(
        design.T @ design + penalty * np.eye(design.shape[1]), design.T @ train_y
    )
    predicted = np.c_[(test_x - mean) / std, np.ones(len(test_x))] @ weights
    return 1 - np.mean((test_y - predicted) ** 2) / np.var(test_y)


def test_text_more_informative_than_vision(default_data):
    train, test = default_data.arrays["train"], default_data.arrays["test"]
    scores = {
        m: _ridge_r2(_pooled(train, m), train.labels, _pooled(test, m), test.labels)
        for m in MODALITIES
    }
    assert scores["text"] > scores["vision"] + 0.15
    assert scores["text"] > 0.3


def test_noise_columns_uncorrelated_with_labels(default_data):
    config, arrays = default_data.config, default_data.arrays["train"]
    for m in MODALITIES:
        pooled = _pooled(arrays, m)[:, -config.noise_dims[m] :]
        for column in pooled.T:
            assert abs(np.corrcoef(column, arrays.labels)[0, 1]) < 0.15
        informative = _pooled(arrays, m)[:, : -config.noise_dims[m]]
        best = max(abs(np.corrcoef(c, arrays.labels)[0, 1]) for c in informative.T)
        assert best > 0.2


def test_signal_timing_differs_across_modalities():
    """With all noise off, the envelope peak (relative to length) varies between modalities."""
    quiet = SyntheticConfig(
        **{**SMALL.to_dict(), "noise_std": {"text": 0.0, "audio": 0.0, "vision": 0.0}}
    )
    quiet = SyntheticConfig(**{**quiet.to_dict(), "nuisance_dim": 1, "max_shift_fraction": 0.3})
    data = generate(quiet)
    arrays, params = data.arrays["train"], data.parameters
    peaks = {}
    for m in MODALITIES:
        informative = arrays.features[m][:, :, : -quiet.noise_dims[m]]
        offset = data.latents["train"].nuisance[m] @ params.mixing_nuisance[m].T  # (N, I)
        signal = np.abs(informative - offset[:, None, :]).sum(axis=2)
        padding = np.arange(signal.shape[1])[None, :] >= arrays.lengths[m][:, None]
        signal[padding] = -1
        peaks[m] = signal.argmax(axis=1) / arrays.lengths[m]
    assert not np.allclose(peaks["text"], peaks["audio"], atol=0.05)


def test_from_mapping_round_trip_and_defaults():
    config = SyntheticConfig.from_mapping(
        {"n_train": 10, "max_lengths": {"text": 5, "audio": 6, "vision": 7}}
    )
    assert config.n_train == 10 and config.max_lengths["vision"] == 7 and config.n_test == 400
    assert SyntheticConfig.from_mapping(config.to_dict()) == config


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"n_train": -3}, "datasets.synth.synthetic.n_train"),
        ({"n_valid": True}, "datasets.synth.synthetic.n_valid"),
        ({"seed": 1.5}, "datasets.synth.synthetic.seed"),
        ({"noise_std": {"text": 1.0}}, "datasets.synth.synthetic.noise_std"),
        ({"noise_std": {"text": -1, "audio": 1, "vision": 1}}, "noise_std.text"),
        ({"noise_dims": {"text": 32, "audio": 1, "vision": 1}}, "noise_dims.text"),
        ({"min_length_fraction": 0.0}, "min_length_fraction"),
        ({"max_shift_fraction": 2}, "max_shift_fraction"),
        ({"annotator_std": float("nan")}, "annotator_std"),
        ({"n_trian": 5}, "datasets.synth.synthetic.n_trian"),
    ],
)
def test_from_mapping_rejects_bad_values(mapping, key):
    with pytest.raises(ConfigError) as info:
        SyntheticConfig.from_mapping(mapping)
    message = str(info.value)
    assert key in message and "\n" not in message


def test_error_message_names_key_and_value():
    with pytest.raises(ConfigError, match="n_train: expected a positive integer, got -3"):
        SyntheticConfig.from_mapping({"n_train": -3})


def test_write_synthetic_store(tmp_path):
    manifest = write_synthetic_store(tmp_path / "synth", SMALL)
    assert manifest.source == {"type": "synthetic", "config": SMALL.to_dict()}
    assert read_manifest(tmp_path / "synth") == manifest
    verify_store(tmp_path / "synth")
    latents = read_extras(tmp_path / "synth", "latents")
    expected = generate(SMALL).latents["test"]
    np.testing.assert_array_equal(latents["test/unique/audio"], expected.unique["audio"])
    assert set(read_extras(tmp_path / "synth", "parameters")) >= {"w_shared", "scale"}
