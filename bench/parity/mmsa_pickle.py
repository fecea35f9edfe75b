"""The parity data: a msabench feature store written as an MMSA-layout pickle (MMSA's
`unaligned_50.pkl` keys), which both sides then read, MMSA through its data loader and msabench
through its `mmsa` format reader (a store with `standardize: false`).

Per split, from the store's arrays (harness/data/split_arrays.py):
    text            (N, L_t, D_t) float32: the store's text (on `mosi_tokens`, the frozen text
                    model's token states), zeros past each row's length
    text_bert       (N, 3, L_t) float32: token ids, attention mask, segment ids (MMSA casts them)
    audio, vision   (N, T, D) float32 with T = max(the store's length, `steps`): utterance-level
                    vectors (T = 1) are stored at step 0, zeros after, as MMSA's own unaligned
                    pickles pad audio and vision to 375 and 500 steps. MMSA needs the room: its
                    MulT convolves every sequence with a kernel of 5 and no padding (steps 5),
                    its MISA packs audio and vision with the text's lengths (steps L_t)
    audio_lengths, vision_lengths   (N,) int64: the real lengths (1 for utterance vectors)
    regression_labels (N,) float32; classification_labels (N,) int64 (MMSA's 0/1/2 by sign)
    id, raw_text    (N,) object
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from harness.data.loading import read_split_arrays
from harness.data.spec import SPLITS
from harness.data.store import read_manifest
from harness.errors import DataError


def _padded(x: np.ndarray, steps: int) -> np.ndarray:
    """(N, T, D) -> (N, max(T, steps), D), zeros appended."""
    if x.shape[1] >= steps:
        return np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros((x.shape[0], steps, x.shape[2]), dtype=np.float32)
    out[:, : x.shape[1]] = x
    return out


def export_mmsa_pickle(store: str | Path, out: str | Path, steps: int) -> Path:
    """Write the store's three splits as an MMSA-layout pickle at `out` (atomically), audio and
    vision padded to at least `steps` steps."""
    manifest = read_manifest(store)
    if manifest.text_tokens is None:
        raise DataError(f"{store}: no token ids; the parity pickle needs text_bert for MISA, ...")
    data = {}
    for split in SPLITS:
        arrays = read_split_arrays(store, split, manifest)
        labels = np.asarray(arrays.labels, dtype=np.float32)
        data[split] = {
            "id": np.array([str(i) for i in arrays.ids], dtype=object),
            "raw_text": np.array(["" for _ in range(arrays.n)], dtype=object),
            "text": np.ascontiguousarray(arrays.features["text"], dtype=np.float32),
            "text_bert": np.asarray(arrays.tokens, dtype=np.float32),
            "audio": _padded(arrays.features["audio"], steps),
            "vision": _padded(arrays.features["vision"], steps),
            "audio_lengths": np.asarray(arrays.lengths["audio"], dtype=np.int64),
            "vision_lengths": np.asarray(arrays.lengths["vision"], dtype=np.int64),
            "regression_labels": labels,
            "classification_labels": np.digitize(labels, [-1e-9, 1e-9]).astype(np.int64),
        }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        pickle.dump(data, handle, protocol=4)
    os.replace(tmp, out)
    return out
