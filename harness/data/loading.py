"""From a feature store to tensors in memory: loading, standardisation and batching.

Shapes: N samples in a split, B in a batch, T_m padded length, D_m feature dimension of modality m.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from harness.data.mmap_npz import open_npz
from harness.data.split_arrays import SplitArrays, check_array
from harness.data.store import Manifest, read_manifest
from harness.data.tokens import MASK_ROW, TOKENS_KEY, check_tokens
from harness.data.types import SPLITS, Batch, DataSpec, SplitData, TokenBatch
from harness.errors import ConfigError, DataError

MIN_STD = 1e-8  # features whose std over the training split is below this are left unscaled
# Loaded splits whose features take at most this many MiB in all are standardised once, into
# memory; larger ones (MOSEI: 7 GB) stay memory-mapped and are standardised batch by batch. The
# batches are bit-identical either way, so this is a speed/memory knob only.
IN_MEMORY_ENV = "MSABENCH_IN_MEMORY_MIB"
DEFAULT_IN_MEMORY_MIB = 1024


def in_memory_budget() -> int:
    """Bytes of standardised features kept in memory: $MSABENCH_IN_MEMORY_MIB MiB (default 1024;
    0 = always memory-mapped)."""
    value = os.environ.get(IN_MEMORY_ENV, str(DEFAULT_IN_MEMORY_MIB)).strip()
    if not value.isdigit():
        raise ConfigError(f"${IN_MEMORY_ENV}: got {value!r}, expected a whole number of MiB")
    return int(value) << 20


def read_split_arrays(
    directory: str | Path, split: str, manifest: Manifest | None = None
) -> SplitArrays:
    """Open `<split>.npz` memory-mapped (nothing big is read yet), checking keys, dtypes, shapes
    and lengths against the manifest: features[m] (N, T_m, D_m) float32, lengths[m] (N,) int64,
    labels (N,), ids (N,)."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    if split not in manifest.splits:
        raise DataError(f"split {split!r} unknown; expected one of {list(manifest.splits)}")
    entry = manifest.splits[split]
    path = directory / entry.file
    stored = open_npz(path)
    lengths_keys = [f"{m}_lengths" for m in manifest.modalities]
    missing = [k for k in ["labels", "ids", *manifest.modalities, *lengths_keys] if k not in stored]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}; re-run fetch")
    check_array(str(path), "labels", stored["labels"], "float32", (entry.n,))
    check_array(str(path), "ids", stored["ids"], "U", (entry.n,))
    for m in manifest.modalities:
        shape = (entry.n, manifest.max_lengths[m], manifest.feature_dims[m])
        check_array(str(path), m, stored[m], "float32", shape)
        lengths = stored[f"{m}_lengths"]
        check_array(str(path), f"{m}_lengths", lengths, "int64", (entry.n,))
        if entry.n and (lengths.min() < 1 or lengths.max() > shape[1]):
            raise DataError(f"{path}: key '{m}_lengths' has values outside [1, {shape[1]}]")
    tokens = None
    if manifest.text_tokens is not None:
        if TOKENS_KEY not in stored:
            raise DataError(f"{path}: missing key {TOKENS_KEY} the manifest lists; re-run fetch")
        tokens = np.asarray(stored[TOKENS_KEY])
        check_tokens(str(path), tokens, stored.get("text_lengths"), manifest.text_tokens.vocab_size)
    return SplitArrays(
        features={m: stored[m] for m in manifest.modalities},
        lengths={m: stored[f"{m}_lengths"] for m in manifest.modalities},
        labels=stored["labels"],
        ids=stored["ids"],
        tokens=tokens,
    )


def load_split(
    directory: str | Path,
    split: str,
    device: str | torch.device = "cpu",
    manifest: Manifest | None = None,
) -> SplitData:
    """One split of a store as tensors on `device` (validated against the manifest). On the CPU
    the feature tensors share the memory-mapped file's pages: nothing is copied."""
    manifest = manifest or read_manifest(directory)
    arrays = read_split_arrays(directory, split, manifest)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    return SplitData(
        name=split,
        features={m: tensor(x) for m, x in arrays.features.items()},
        lengths={m: tensor(n) for m, n in arrays.lengths.items()},
        labels=tensor(arrays.labels),
        ids=arrays.ids.tolist(),
        tokens=None if arrays.tokens is None else tensor(arrays.tokens),
        unk_id=-1 if manifest.text_tokens is None else manifest.text_tokens.unk_id,
    )


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(N, max_len) bool, True at real time steps t < lengths (N,)."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def _masked_sum(
    x: torch.Tensor, lengths: torch.Tensor, centre: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum over real steps of x (n, T, D) (or of (x - centre)^2): (D,) float64."""
    mask = padding_mask(lengths, x.shape[1]).unsqueeze(2)
    values = x.double()
    if centre is not None:
        values = (values - centre).square()
    return torch.where(mask, values, 0.0).sum(dim=(0, 1))


def scale_rows(
    rows: torch.Tensor,
    lengths: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    inplace: bool = False,
) -> torch.Tensor:
    """(rows - mean) / std at real steps, exact zeros at padding: rows (B, T, D) -> (B, T, D).
    With `inplace` (for a fresh copy, as `take_batch` gathers) `rows` is overwritten: the same
    values without three temporary (B, T, D) tensors, which made batching 11-15% of a fast
    method's training step (bench/README.md)."""
    padding = ~padding_mask(lengths, rows.shape[1]).unsqueeze(2)
    if not inplace:
        scaled = (rows - mean) / std
        return torch.where(padding, torch.zeros((), dtype=rows.dtype, device=rows.device), scaled)
    return rows.sub_(mean).div_(std).masked_fill_(padding, 0.0)


class Standardizer:
    """Per-feature z-scoring with statistics from the real (unpadded) steps of the train split.

    mean[m], std[m]: (D_m,) float32. Constant features (std < MIN_STD) get std 1.
    """

    def __init__(
        self,
        mean: dict[str, torch.Tensor] | None = None,
        std: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.mean: dict[str, torch.Tensor] = dict(mean or {})
        self.std: dict[str, torch.Tensor] = dict(std or {})

    def fit(self, train: SplitData, chunk_elements: int = 1 << 24) -> Standardizer:
        """Fit on features[m] (N, T_m, D_m) of the training split, ignoring padding. Two passes
        (mean, then variance) over chunks of rows, so memory stays bounded for mapped splits."""
        for m, x in train.features.items():
            rows = max(1, chunk_elements // max(1, x.shape[1] * x.shape[2]))
            chunks = [
                (x[i : i + rows], train.lengths[m][i : i + rows]) for i in range(0, len(x), rows)
            ]
            count = sum(int(n.sum()) for _, n in chunks)
            total = sum(_masked_sum(c, n) for c, n in chunks)
            mean = total / count
            squares = sum(_masked_sum(c, n, centre=mean) for c, n in chunks)
            std = (squares / count).sqrt()
            std = torch.where(std < MIN_STD, torch.ones_like(std), std)
            self.mean[m], self.std[m] = mean.float().cpu(), std.float().cpu()
        return self

    def attach(self, split: SplitData) -> SplitData:
        """The same split with this scaling applied lazily, batch by batch (no copy now)."""
        self._check(split)
        scale = {
            m: (self.mean[m].to(x.device), self.std[m].to(x.device))
            for m, x in split.features.items()
        }
        return replace(split, scale=scale)

    def _check(self, split: SplitData) -> None:
        missing = sorted(set(split.features) - set(self.mean))
        if missing:
            raise DataError(f"standardizer: no statistics for modality {missing}; fit on train")

    def transform(self, split: SplitData) -> SplitData:
        """A new SplitData with (x - mean) / std at real steps and exact zeros at padding,
        materialised in memory: one copy of the features, scaled in place. Its batches are plain
        row gathers, bit-identical to those of `attach`'s lazy form (the same elementwise ops)."""
        self._check(split)
        features = {}
        for m, x in split.features.items():
            mean, std = self.mean[m].to(x.device), self.std[m].to(x.device)
            features[m] = scale_rows(x.clone(), split.lengths[m], mean, std, inplace=True)
        return replace(split, features=features, lengths=dict(split.lengths), ids=list(split.ids))

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "mean": {m: t.clone() for m, t in self.mean.items()},
            "std": {m: t.clone() for m, t in self.std.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, dict[str, torch.Tensor]]) -> Standardizer:
        return cls(mean=state["mean"], std=state["std"])


def feature_bytes(split: SplitData) -> int:
    """Bytes taken by the features of a split (all modalities, padding included)."""
    return sum(x.numel() * x.element_size() for x in split.features.values())


def load_dataset(
    directory: str | Path,
    device: str | torch.device = "cpu",
    standardize: bool | None = None,
    splits: Sequence[str] = SPLITS,
    in_memory_bytes: int | None = None,
) -> tuple[DataSpec, dict[str, SplitData]]:
    """The named splits of a store (all by default; tuning passes ("train", "valid") so the test
    split is never read); with `standardize`, z-scored with statistics of train only. `None`
    (the default) follows the store: its dataset's `standardize` setting, recorded in the
    manifest (true unless the dataset sets it false, MMSA's raw-feature treatment).

    Standardised splits whose features take at most `in_memory_bytes` in all (default:
    `in_memory_budget()`) are scaled once, into memory, so a batch is a row gather (4x cheaper
    than gathering and scaling for MOSI's shapes; bench/README.md); larger ones stay
    memory-mapped and are scaled batch by batch. Batches are bit-identical either way. Without
    `standardize` the splits stay memory-mapped.
    """
    manifest = read_manifest(directory)
    if standardize is None:
        standardize = manifest.standardize
    if standardize and "train" not in splits:
        raise DataError(f"splits: got {list(splits)}; standardising needs 'train' among them")
    loaded = {name: load_split(directory, name, device, manifest) for name in splits}
    if standardize:
        scaler = Standardizer().fit(loaded["train"])
        budget = in_memory_budget() if in_memory_bytes is None else in_memory_bytes
        fits = sum(feature_bytes(data) for data in loaded.values()) <= budget
        standardise = scaler.transform if fits else scaler.attach
        loaded = {name: standardise(data) for name, data in loaded.items()}
    return manifest.data_spec(), loaded


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches `iterate_batches` yields for n samples."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    return n // batch_size if drop_last else -(-n // batch_size)


def take_batch(split: SplitData, index: torch.Tensor) -> Batch:
    """Rows `index` (B,) of a split, each modality trimmed to the batch's longest real length."""
    features, lengths = {}, {}
    for m, x in split.features.items():
        lengths[m] = split.lengths[m][index]
        longest = int(lengths[m].max()) if index.numel() else 0
        # a fresh contiguous copy (safe to scale in place); index_select copies whole rows and is
        # 4-8x faster than the same gather by advanced indexing, x[index, :longest]
        rows = torch.index_select(x[:, :longest], 0, index)
        if split.scale is not None:
            rows = scale_rows(rows, lengths[m], *split.scale[m], inplace=True)
        features[m] = rows
    tokens = None if split.tokens is None else take_tokens(split.tokens, index, split.unk_id)
    return Batch(features, lengths, split.labels[index], index, tokens)


def take_tokens(tokens: torch.Tensor, index: torch.Tensor, unk_id: int) -> TokenBatch:
    """Rows `index` (B,) of a split's tokens (N, 3, L), trimmed to the batch's longest real token
    count L' (the attention mask is prefix-shaped): a TokenBatch of (B, L') tensors."""
    rows = torch.index_select(tokens, 0, index)
    longest = int(rows[:, MASK_ROW].sum(dim=1).max()) if index.numel() else 0
    rows = rows[:, :, :longest]
    return TokenBatch(
        rows[:, 0].contiguous(), rows[:, 1].contiguous(), rows[:, 2].contiguous(), unk_id
    )


def iterate_batches(
    split: SplitData,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Batches of `split` in order, or in a permutation drawn from `generator` when shuffling.

    Each index appears exactly once per pass (once at most with drop_last). The same generator
    state gives the same batches.
    """
    n = len(split)
    count = num_batches(n, batch_size, drop_last)
    device = split.labels.device
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(device)
    for start in range(0, count * batch_size, batch_size):
        yield take_batch(split, order[start : start + batch_size])
