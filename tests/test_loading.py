"""Loading a store into tensors, train-only standardisation, and batching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.data.loading import (
    Standardizer,
    feature_bytes,
    in_memory_budget,
    iterate_batches,
    load_dataset,
    load_split,
    num_batches,
    padding_mask,
    take_batch,
)
from harness.data.store import MANIFEST_NAME, write_store
from harness.data.synthetic import SyntheticConfig, generate, write_synthetic_store
from harness.data.types import MODALITIES, SPLITS, SplitData
from harness.errors import ConfigError, DataError

SMALL = SyntheticConfig(
    n_train=50,
    n_valid=12,
    n_test=20,
    max_lengths={"text": 8, "audio": 12, "vision": 10},
    feature_dims={"text": 6, "audio": 5, "vision": 7},
    noise_dims={"text": 1, "audio": 1, "vision": 2},
)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("features") / "synth"
    write_synthetic_store(directory, SMALL)
    return directory


def _real_steps(split: SplitData, modality: str) -> torch.Tensor:
    """(sum of lengths, D) features at real time steps."""
    x = split.features[modality]
    return x[padding_mask(split.lengths[modality], x.shape[1])]


def test_load_split_matches_generated_arrays(store_dir):
    expected = generate(SMALL).arrays["valid"]
    split = load_split(store_dir, "valid")
    assert split.name == "valid" and len(split) == SMALL.n_valid
    assert split.ids == expected.ids.tolist()
    assert split.labels.dtype == torch.float32
    for m in MODALITIES:
        assert split.features[m].dtype == torch.float32
        assert split.lengths[m].dtype == torch.int64
        np.testing.assert_array_equal(split.features[m].numpy(), expected.features[m])


def test_load_split_rejects_mismatch_with_manifest(tmp_path, store_dir):
    manifest_path = store_dir / MANIFEST_NAME
    payload = json.loads(manifest_path.read_text())
    payload["feature_dims"]["audio"] += 1
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / MANIFEST_NAME).write_text(json.dumps(payload))
    (copy / "train.npz").write_bytes((store_dir / "train.npz").read_bytes())
    with pytest.raises(DataError) as info:
        load_split(copy, "train")
    assert "'audio'" in str(info.value) and "train.npz" in str(info.value)
    with pytest.raises(DataError, match="not found"):
        load_split(copy, "valid")
    with pytest.raises(DataError, match="split 'dev' unknown"):
        load_split(store_dir, "dev")


def test_standardizer_uses_train_real_steps_only(store_dir):
    splits = {name: load_split(store_dir, name) for name in SPLITS}
    scaler = Standardizer().fit(splits["train"])
    for m in MODALITIES:
        real = _real_steps(splits["train"], m).double()
        torch.testing.assert_close(scaler.mean[m].double(), real.mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            scaler.std[m].double(), real.std(0, unbiased=False), rtol=1e-5, atol=1e-6
        )
    # The statistics are those of train alone, not of all splits pooled (no leakage).
    pooled = torch.cat([_real_steps(splits[name], "text") for name in SPLITS]).double()
    assert not torch.allclose(scaler.mean["text"].double(), pooled.mean(0), atol=1e-4)
    scaled = scaler.transform(splits["train"])
    for m in MODALITIES:
        real = _real_steps(scaled, m).double()
        torch.testing.assert_close(real.mean(0), torch.zeros_like(real[0]), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            real.std(0, unbiased=False), torch.ones_like(real[0]), atol=1e-4, rtol=0
        )
    for name in SPLITS:
        out = scaler.transform(splits[name])
        for m in MODALITIES:
            x = out.features[m]
            padding = ~padding_mask(out.lengths[m], x.shape[1])
            assert torch.all(x[padding] == 0)
    valid_real = _real_steps(scaler.transform(splits["valid"]), "vision")
    assert not torch.allclose(valid_real.mean(0), torch.zeros(valid_real.shape[1]), atol=1e-5)


def test_standardizer_constant_feature_has_no_nan():
    lengths = torch.tensor([2, 3], dtype=torch.int64)
    x = torch.zeros(2, 3, 2)
    x[:, :, 0] = 5.0  # constant over real steps (padding set to 0 below)
    x[:, :, 1] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x[0, 2] = 0.0
    split = SplitData("train", {"text": x}, {"text": lengths}, torch.zeros(2))
    scaler = Standardizer().fit(split)
    assert scaler.std["text"][0] == 1.0
    out = scaler.transform(split).features["text"]
    assert torch.isfinite(out).all()
    assert torch.all(out[:, :, 0][padding_mask(lengths, 3)] == 0)
    assert out[0, 2].abs().sum() == 0


def test_standardizer_state_dict_round_trip(store_dir):
    train = load_split(store_dir, "train")
    scaler = Standardizer().fit(train)
    restored = Standardizer.from_state_dict(scaler.state_dict())
    for m in MODALITIES:
        assert torch.equal(
            restored.transform(train).features[m], scaler.transform(train).features[m]
        )


def test_load_dataset(store_dir):
    spec, splits = load_dataset(store_dir)
    assert spec.kind == "mosi" and spec.feature_dims == SMALL.feature_dims
    assert spec.max_lengths == SMALL.max_lengths and spec.label_range == (-3.0, 3.0)
    assert sorted(splits) == sorted(SPLITS)
    whole = take_batch(splits["train"], torch.arange(len(splits["train"])))  # scaled lazily
    real = whole.features["audio"][whole.mask("audio")]
    assert real.mean().abs() < 1e-4 and (real.std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert splits["train"].scale is None  # small: standardised once, into memory
    _, some = load_dataset(store_dir, splits=("train", "valid"))
    assert sorted(some) == ["train", "valid"]
    assert torch.equal(some["valid"].features["text"], splits["valid"].features["text"])
    with pytest.raises(DataError, match="'train'"):
        load_dataset(store_dir, splits=("test",))
    _, raw = load_dataset(store_dir, standardize=False)
    assert torch.equal(raw["test"].features["text"], load_split(store_dir, "test").features["text"])


def test_in_memory_and_memory_mapped_standardising_give_identical_batches(store_dir):
    _, in_memory = load_dataset(store_dir)
    _, mapped = load_dataset(store_dir, in_memory_bytes=feature_bytes(in_memory["train"]))
    for name, split in mapped.items():  # over the budget: scaled batch by batch
        assert split.scale is not None and in_memory[name].scale is None
        assert torch.equal(split.features["text"], load_split(store_dir, name).features["text"])
    generator = torch.Generator().manual_seed(0)
    for name in SPLITS:
        order = torch.randperm(len(mapped[name]), generator=generator)
        for start in range(0, len(order), 16):
            index = order[start : start + 16]
            a, b = take_batch(in_memory[name], index), take_batch(mapped[name], index)
            for m in MODALITIES:
                assert torch.equal(a.features[m], b.features[m]), (name, m)


def test_in_memory_budget_comes_from_the_environment(store_dir, monkeypatch):
    monkeypatch.setenv("MSABENCH_IN_MEMORY_MIB", "0")
    assert in_memory_budget() == 0
    assert all(split.scale is not None for split in load_dataset(store_dir)[1].values())
    monkeypatch.setenv("MSABENCH_IN_MEMORY_MIB", "2048")
    assert in_memory_budget() == 2 << 30
    monkeypatch.setenv("MSABENCH_IN_MEMORY_MIB", "1.5g")
    with pytest.raises(ConfigError, match=r"MSABENCH_IN_MEMORY_MIB: got '1.5g', expected a whole"):
        load_dataset(store_dir)


def test_num_batches():
    assert num_batches(10, 3) == 4 and num_batches(9, 3) == 3 and num_batches(10, 3, True) == 3
    with pytest.raises(ValueError, match="batch_size"):
        num_batches(10, 0)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_index_once_and_are_trimmed(store_dir, shuffle):
    split = load_split(store_dir, "train")
    generator = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(split, 16, shuffle, generator))
    assert len(batches) == num_batches(len(split), 16)
    index = torch.cat([b.index for b in batches])
    assert sorted(index.tolist()) == list(range(len(split)))
    assert (index.tolist() == list(range(len(split)))) != shuffle
    for batch in batches:
        assert batch.index.dtype == torch.int64
        torch.testing.assert_close(batch.labels, split.labels[batch.index])
        for m in MODALITIES:
            longest = int(batch.lengths[m].max())
            assert batch.features[m].shape == (batch.size, longest, SMALL.feature_dims[m])
            expected = split.features[m][batch.index, :longest]
            assert torch.equal(batch.features[m], expected)
            assert torch.all(split.features[m][batch.index, longest:] == 0)


def test_same_generator_seed_same_order(store_dir):
    split = load_split(store_dir, "train")

    def order(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return torch.cat([b.index for b in iterate_batches(split, 7, True, generator)]).tolist()

    assert order(3) == order(3)
    assert order(3) != order(4)
    dropped = list(
        iterate_batches(split, 7, True, torch.Generator().manual_seed(3), drop_last=True)
    )
    assert all(b.size == 7 for b in dropped) and len(dropped) == len(split) // 7


def test_write_store_then_load_handles_missing_modality(tmp_path):
    data = generate(SMALL)
    splits = {
        name: type(arrays)(
            features={"text": arrays.features["text"]},
            lengths={"text": arrays.lengths["text"]},
            labels=arrays.labels,
            ids=arrays.ids,
        )
        for name, arrays in data.arrays.items()
    }
    write_store(tmp_path / "text_only", "toy", "mosi", splits, {}, [])
    spec, loaded = load_dataset(tmp_path / "text_only")
    assert spec.modalities == ("text",) and set(loaded["train"].features) == {"text"}
