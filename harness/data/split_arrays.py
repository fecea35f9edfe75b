"""One split as numpy arrays (what a dataset reader produces) and the checks every split must
pass before it is written to the feature store (harness/data/store.py).

Shapes: N samples in a split, T_m padded length and D_m feature dimension of modality m. Each check
raises a one-line DataError naming the split, key, row and what was expected."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.data.spec import LABEL_RANGES, MODALITIES, SPLITS, is_classification
from harness.data.tokens import TOKENS_KEY, TokenInfo, check_tokens
from harness.errors import DataError

_CHECK_CHUNK = 1 << 24  # elements validated at a time (bounds memory for multi-GB splits)
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SplitArrays:
    """One split as numpy arrays: features[m] (N, T_m, D_m) float32 with zeros at t >= lengths[m],
    lengths[m] (N,) int64 in [1, T_m], labels (N,) float32, ids (N,) unicode; tokens (N, 3, L)
    int64 (ids, attention mask, segment ids; harness/data/tokens.py) when the source has them."""

    features: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    labels: np.ndarray
    ids: np.ndarray
    tokens: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    def to_npz_arrays(self) -> dict[str, np.ndarray]:
        """The key -> array map stored in `<split>.npz`."""
        arrays = {"labels": self.labels, "ids": self.ids}
        for m, x in self.features.items():
            arrays[m] = x
            arrays[f"{m}_lengths"] = self.lengths[m]
        if self.tokens is not None:
            arrays[TOKENS_KEY] = self.tokens
        return arrays


def check_array(where: str, key: str, array: Any, dtype: str, shape: tuple[Any, ...]) -> None:
    """`shape` holds ints (exact) or names (any size); dtype "U" means any unicode width."""
    ok = isinstance(array, np.ndarray) and array.ndim == len(shape)
    if ok:
        ok = array.dtype.kind == "U" if dtype == "U" else array.dtype == np.dtype(dtype)
        ok = ok and all(
            isinstance(s, str) or s == a for s, a in zip(shape, array.shape, strict=True)
        )
    if not ok:
        wanted = "unicode" if dtype == "U" else dtype
        shape_text = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        is_array = isinstance(array, np.ndarray)
        got = f"{array.dtype} array of shape {array.shape}" if is_array else type(array).__name__
        raise DataError(
            f"{where}: key '{key}' expected a {wanted} array of shape {shape_text}, got {got}"
        )


def _first_bad_row(bad: np.ndarray) -> int:
    """Row index of the first True in `bad` (N, ...)."""
    return int(np.argwhere(bad)[0][0])


def _check_modality(split: str, m: str, x: Any, lengths: Any, n: int) -> None:
    check_array(f"split '{split}'", m, x, "float32", (n, "T", "D"))
    max_len = x.shape[1]
    check_array(f"split '{split}'", f"{m}_lengths", lengths, "int64", (n,))
    bad = (lengths < 1) | (lengths > max_len)
    if bad.any():
        row = _first_bad_row(bad)
        raise DataError(
            f"split '{split}': key '{m}_lengths' value {int(lengths[row])} at row {row} "
            f"outside [1, {max_len}]"
        )
    rows = max(1, _CHECK_CHUNK // max(1, x.shape[1] * x.shape[2]))  # bounded temporaries
    for start in range(0, n, rows):
        chunk, chunk_lengths = x[start : start + rows], lengths[start : start + rows]
        finite = np.isfinite(chunk).all(axis=(1, 2))
        if not finite.all():
            row = start + _first_bad_row(~finite)
            raise DataError(f"split '{split}': key '{m}' has a non-finite value at row {row}")
        padding = np.arange(max_len)[None, :] >= chunk_lengths[:, None]  # (rows, T)
        nonzero = (chunk != 0).any(axis=2) & padding
        if nonzero.any():
            row = start + _first_bad_row(nonzero)
            raise DataError(
                f"split '{split}': key '{m}' has nonzero padding at row {row} "
                f"(expected zeros at t >= length {int(lengths[row])})"
            )


def invalid_labels(labels: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    """(bad (N,) bool, what was expected) for labels (N,) of a dataset of `kind`: a regression
    kind's labels finite and inside its range; a classification kind's exactly 0 or 1."""
    if is_classification(kind):
        return (labels != 0) & (labels != 1), f"exactly 0 or 1 (kind '{kind}')"
    low, high = LABEL_RANGES[kind]
    bad = ~np.isfinite(labels) | (labels < low) | (labels > high)
    return bad, f"[{low}, {high}] (kind '{kind}')"


def _check_split(split: str, arrays: SplitArrays, kind: str) -> None:
    if not isinstance(arrays, SplitArrays):
        raise DataError(f"split '{split}': expected SplitArrays, got {type(arrays).__name__}")
    where = f"split '{split}'"
    check_array(where, "labels", arrays.labels, "float32", ("N",))
    n = arrays.n
    if n < 1:
        raise DataError(f"{where}: key 'labels' is empty; expected at least one sample")
    check_array(where, "ids", arrays.ids, "U", (n,))
    modalities = set(arrays.features)
    if not modalities or not modalities <= set(MODALITIES) or modalities != set(arrays.lengths):
        raise DataError(
            f"split '{split}': modalities {sorted(arrays.features)} with lengths for "
            f"{sorted(arrays.lengths)}; expected a non-empty subset of {list(MODALITIES)} in both"
        )
    for m in arrays.features:
        _check_modality(split, m, arrays.features[m], arrays.lengths[m], n)
    bad, expected = invalid_labels(arrays.labels, kind)
    if bad.any():
        row = _first_bad_row(bad)
        raise DataError(
            f"split '{split}': key 'labels' value {arrays.labels[row]} at row {row}; "
            f"expected {expected}"
        )
    if len(np.unique(arrays.ids)) != n:
        raise DataError(f"split '{split}': key 'ids' has duplicate ids; expected unique ids")


def check_splits(
    splits: dict[str, SplitArrays], kind: str, tokens: TokenInfo | None = None
) -> None:
    """Every split valid, same modalities and (T_m, D_m) across splits, ids disjoint; with
    `tokens`, every split's token ids valid for that vocabulary and agreeing with the text
    lengths (harness/data/tokens.py), and without it no split holding tokens."""
    if not isinstance(splits, dict) or sorted(splits) != sorted(SPLITS):
        names = sorted(splits) if isinstance(splits, dict) else type(splits).__name__
        raise DataError(f"splits: got {names}, expected exactly {list(SPLITS)}")
    for name in SPLITS:
        _check_split(name, splits[name], kind)
    first = {m: x.shape[1:] for m, x in splits[SPLITS[0]].features.items()}
    for name in SPLITS[1:]:
        shapes = {m: x.shape[1:] for m, x in splits[name].features.items()}
        if shapes != first:
            raise DataError(
                f"split '{name}': (T_m, D_m) per modality {shapes} differ from split "
                f"'{SPLITS[0]}' {first}; modalities and shapes must agree across splits"
            )
    for name in SPLITS:
        _check_split_tokens(name, splits[name], tokens)
    all_ids = np.concatenate([splits[name].ids for name in SPLITS])
    if len(np.unique(all_ids)) != len(all_ids):
        raise DataError("splits: key 'ids' repeats across splits; expected disjoint splits")


def _check_split_tokens(split: str, arrays: SplitArrays, tokens: TokenInfo | None) -> None:
    where = f"split '{split}'"
    if tokens is None:
        if arrays.tokens is not None:
            raise DataError(f"{where}: key '{TOKENS_KEY}' given without the text model it uses")
        return
    if arrays.tokens is None or "text" not in arrays.lengths:
        raise DataError(f"{where}: key '{TOKENS_KEY}' missing; expected tokens and a text modality")
    check_tokens(where, arrays.tokens, arrays.lengths["text"], tokens.vocab_size)
    if arrays.tokens.shape[2] != tokens.max_length:
        raise DataError(
            f"{where}: key '{TOKENS_KEY}' has L = {arrays.tokens.shape[2]}; expected "
            f"{tokens.max_length} as in every split"
        )


def check_extras(extras: dict[str, dict[str, np.ndarray]]) -> None:
    for name, arrays in extras.items():
        if (
            not isinstance(name, str)
            or not _EXTRA_NAME.match(name)
            or name in (*SPLITS, "manifest")
        ):
            raise DataError(f"extras: name {name!r} invalid; expected [A-Za-z0-9_.-], not a split")
        for key, array in arrays.items():
            if not isinstance(array, np.ndarray) or array.dtype.hasobject:
                raise DataError(f"extras '{name}': key '{key}' expected a numeric or string array")
