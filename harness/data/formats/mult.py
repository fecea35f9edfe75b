"""The `mult` format: MulT/CMU processed pickles (`mosi_data.pkl`, `mosi_data_noalign.pkl`,
`mosei_senti_data.pkl`, `mosei_senti_data_noalign.pkl`).

Layout: a dict {train, valid, test}, each a dict of
    text     (N, 50, 300) GloVe features
    audio    (N, L_a, D_a)
    vision   (N, L_v, D_v)
    labels   (N, 1, 1) sentiment scores
    id       (N, k) or (N,) bytes or str; a multi-part id is joined with "_"

No lengths are stored. Each sample's length is derived: the index after its last time step that is
not all zeros, at least 1 (an all-zero sequence, a missing modality, is one zero step and is counted
in a warning). Zeros before that step count as part of the sequence, so a left-padded sequence keeps
its leading zeros (the model sees them, as it does in MulT, which uses no lengths at all).

Non-finite values follow the `mmsa` policy: -inf in audio is set to 0 (as MulT does) with a warning
giving the count per split; NaN, +inf, and -inf elsewhere are an error naming the file, split, key
and row unless the dataset sets `fill_nonfinite: true`. Values are cleaned before lengths are
derived. Options: `file` (the .pkl inside a directory path), `fill_nonfinite`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.formats.mmsa import (
    PickleOptions,
    Where,
    check_keys,
    clean_nonfinite,
    read_pickled_splits,
    row_chunks,
    to_features,
    to_ids,
    to_labels,
)
from harness.data.formats.registry import register_format
from harness.data.spec import MODALITIES
from harness.data.split_arrays import SplitArrays

MULT_KEYS = ("labels", "id", "text", "audio", "vision")


@register_format("mult", PickleOptions)
def read_mult(path: Path, options: Mapping[str, Any]) -> dict[str, SplitArrays]:
    """A MulT/CMU pickle (a file, or a directory holding one .pkl or option `file:`) as
    {split: SplitArrays}; see the module docstring for lengths and non-finite values."""
    return read_pickled_splits(path, options, _mult_split)


def _mult_split(where: Where, raw: dict[str, Any], settings: PickleOptions) -> SplitArrays:
    n = check_keys(where, raw, MULT_KEYS)
    labels = to_labels(where, "labels", raw.pop("labels"), n, settings.kind)
    ids = to_ids(where, "id", raw.pop("id"), n)
    features, lengths = {}, {}
    for m in MODALITIES:
        x = to_features(where, m, raw.pop(m), n)
        clean_nonfinite(where, m, x, zero_neginf=m == "audio", fill=settings.fill_nonfinite)
        lengths[m] = derived_lengths(x)
        empty = int((lengths[m] == 0).sum())
        if empty:
            where.warn(
                m, f"had {empty} all-zero sequence(s) (modality missing); stored as length 1"
            )
        lengths[m] = np.maximum(lengths[m], 1)
        features[m] = x
    return SplitArrays(features=features, lengths=lengths, labels=labels, ids=ids)


def derived_lengths(x: np.ndarray) -> np.ndarray:
    """(N,) int64 from x (N, T, D): 1 + the index of each sample's last time step with a nonzero
    feature, 0 for an all-zero sample. Scans ~64 MiB of features at a time."""
    steps = x.shape[1]
    lengths = np.empty(x.shape[0], dtype=np.int64)
    for start, chunk in row_chunks(x):
        nonzero = (chunk != 0).any(axis=2)  # (k, T)
        last = steps - np.argmax(nonzero[:, ::-1], axis=1)
        lengths[start : start + len(chunk)] = np.where(nonzero.any(axis=1), last, 0)
    return lengths
