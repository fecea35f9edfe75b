"""The `mmsa` format: MMSA feature pickles (`aligned_50.pkl`, `unaligned_50.pkl`, SIMS
`unaligned_39.pkl`, SIMS v2), plus the pickle-reading helpers the `mult` format shares.

Layout: a dict {train, valid, test}, each a dict of
    id                  N strings "video$_$clip" (kept as they are)
    text                (N, L_t, 768) BERT features
    audio, vision       (N, L_a, D_a), (N, L_v, D_v)
    audio_lengths, vision_lengths   N whole numbers (list or array)
    regression_labels   (N,) the labels (or `classification_labels`, option `label_key`)
    text_bert           optional (N, 3, L_t): token ids / attention mask / segment ids
    raw_text, annotations, classification_labels, regression_labels_T/A/V: optional, not read

Decisions (the dataset's params section may set `file`, `fill_nonfinite`, `clip_lengths`,
`label_key`):
  * Labels are finite and inside the dataset kind's range; for the binary kind (humour, e.g.
    UR-FUNNY converted to MMSA's layout) exactly 0 or 1. `label_key: classification_labels`
    reads the labels from that key instead of regression_labels (the mmsa format only).
  * Text lengths are the attention mask's sum (text_bert row 1), else the full L_t.
  * text_bert, when present, is kept as the store's token ids (`text_tokens`, int64 (N, 3, L_t);
    harness/data/tokens.py checks them against the vocabulary of the dataset's `text_model`,
    default the built-in MiniLM, whose vocabulary is bert-base-uncased's).
  * A declared length longer than its sequence is an error naming file, split, key and row
    (`clip_lengths: true` clips it to the sequence, with a warning giving the count).
  * A length of 0 (MMSA's mark of a missing modality) is stored as one all-zero time step,
    length 1, with a warning giving the count: models see "nothing" rather than a crash.
  * Values past each length are set to zero in place (BERT features of padding tokens included).
  * -inf in audio is set to 0, as MMSA does, with a warning giving the count per split. Any other
    non-finite value (NaN, +inf, -inf outside audio) at t < length is an error naming file, split,
    key and row, unless `fill_nonfinite: true`, which zero-fills them with a warning and count.
  * Memory: float32 arrays are used as unpickled (no copy); others are converted once, and each
    split's pickled arrays are dropped as soon as they are converted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from harness.data.formats.registry import read_options, register_format
from harness.data.safe_pickle import safe_load
from harness.data.spec import LABEL_RANGES, MODALITIES, SPLITS, is_classification
from harness.data.split_arrays import SplitArrays, invalid_labels
from harness.errors import ConfigError, DataError

LOG = logging.getLogger("msabench")
CHUNK_BYTES = 1 << 26  # non-finite scans look at ~64 MiB of features at a time
MMSA_KEYS = (  # besides the labels (option `label_key`)
    "id",
    "text",
    "audio",
    "vision",
    "audio_lengths",
    "vision_lengths",
)


@dataclass(frozen=True)
class Where:
    """The file and split a value comes from, for one-line errors and warnings."""

    file: Path
    split: str

    def error(self, key: str, text: str) -> DataError:
        return DataError(f"{self.file}: split '{self.split}': key '{key}' {text}")

    def warn(self, key: str, text: str) -> None:
        LOG.warning("%s: split '%s': key '%s' %s", self.file, self.split, key, text)


@dataclass(frozen=True)
class PickleOptions:
    """The reader settings of a dataset's params section (`datasets.<name>.<option>`)."""

    file: str | None = None  # the pickle inside a directory (default: its only .pkl)
    fill_nonfinite: bool = False  # zero-fill NaN/Inf in text and vision instead of refusing
    clip_lengths: bool = False  # clip declared lengths longer than the sequence
    text_model: str = "minilm"  # the text model of text_bert's ids (harness/text_models.py)
    kind: str | None = field(default=None, metadata={"derived": True})  # the dataset's kind

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> Self:
        """From a dataset section; `kind` (a dataset key, not an option) checks label ranges."""
        kind = options.get("kind")
        if kind is not None and kind not in LABEL_RANGES:
            raise ConfigError(f"kind: expected one of {sorted(LABEL_RANGES)}, got {kind!r}")
        return replace(read_options(cls, options), kind=kind)


@dataclass(frozen=True)
class MmsaOptions(PickleOptions):
    """The mmsa format's settings: PickleOptions and the key holding the labels."""

    # classification_labels for pickles that keep a binary task's classes there (UR-FUNNY
    # conversions); MMSA's own MOSI/MOSEI/SIMS pickles hold the scores in regression_labels
    label_key: Literal["regression_labels", "classification_labels"] = "regression_labels"


def resolve_pickle(path: Path, options: PickleOptions) -> Path:
    """`path` itself if a file; else `path/<options.file>`, or the directory's only .pkl."""
    name = options.file
    if path.is_file():
        return path
    if name is not None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"file: expected a file name inside {path}, got {name!r}")
        if not (path / name).is_file():
            raise DataError(f"{path / name}: not found (from option 'file')")
        return path / name
    pickles = sorted(p for p in path.glob("*.pkl") if p.is_file())
    if len(pickles) != 1:
        found = ", ".join(p.name for p in pickles) or "none"
        raise DataError(f"{path}: expected exactly one .pkl file (or option 'file'), found {found}")
    return pickles[0]


def load_pickled_splits(file: Path) -> dict[str, dict[str, Any]]:
    """The safely unpickled top-level dict, checked to hold a dict per split."""
    data = safe_load(file)
    if not isinstance(data, dict):
        raise DataError(
            f"{file}: expected a dict with keys {list(SPLITS)} at the top level, "
            f"got {type(data).__name__}"
        )
    for split in SPLITS:
        if split not in data:
            keys = sorted(str(k) for k in data)
            raise DataError(f"{file}: split '{split}' missing; the top-level keys are {keys}")
        if not isinstance(data[split], dict):
            got = type(data[split]).__name__
            raise DataError(f"{file}: split '{split}' expected a dict of arrays, got {got}")
    return data


def check_keys(where: Where, raw: Mapping[Any, Any], keys: Sequence[str]) -> int:
    """Every key present with the same number of samples N >= 1; returns N."""
    for key in keys:
        if key not in raw:
            present = sorted(str(k) for k in raw)
            raise where.error(key, f"missing; expected keys {list(keys)}, present {present}")
    counts = {key: _sample_count(raw[key]) for key in keys}
    first, n = keys[0], counts[keys[0]]
    for key, count in counts.items():
        if count is None:
            raise where.error(key, f"expected one entry per sample, got {type(raw[key]).__name__}")
        if count != n:
            raise where.error(
                key, f"has {count} samples but key '{first}' has {n}; expected one entry per sample"
            )
    if n == 0:
        raise DataError(
            f"{where.file}: split '{where.split}' is empty (key '{first}' has 0 samples); "
            "expected at least one sample"
        )
    return n


def _sample_count(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    return len(value) if isinstance(value, list | tuple) else None


def to_features(where: Where, key: str, value: Any, n: int) -> np.ndarray:
    """(N, T, D) float32 with T, D >= 1: `value` itself when already float32, else one copy."""
    try:
        x = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise where.error(key, f"expected a numeric (N, T, D) array ({exc})") from None
    if x.ndim != 3 or x.shape[0] != n or min(x.shape[1:]) < 1:
        raise where.error(key, f"expected a numeric array of shape ({n}, T, D), got {x.shape}")
    return x if x.flags.writeable else x.copy()


def to_lengths(where: Where, key: str, value: Any, n: int) -> np.ndarray:
    """(N,) int64 from N whole numbers >= 0 (a list or an integer or float array)."""
    raw = np.asarray(value)
    if raw.shape != (n,) or raw.dtype.kind not in "iuf":
        raise where.error(key, f"expected {n} whole numbers, got {raw.dtype} of shape {raw.shape}")
    bad = raw < 0
    if raw.dtype.kind == "f":
        bad |= ~np.isfinite(raw) | (raw != np.round(raw))
    if bad.any():
        row = first_row(bad)
        raise where.error(key, f"value {raw[row]} at row {row} is not a whole number >= 0")
    return raw.astype(np.int64)


def apply_lengths(
    where: Where, key: str, lengths_key: str, x: np.ndarray, lengths: np.ndarray, clip: bool
) -> np.ndarray:
    """Zero `x` (N, T, D) in place at t >= lengths (N,); return the lengths made valid for the
    store: > T is an error (or clipped when `clip`), 0 becomes 1 (one all-zero step)."""
    steps = x.shape[1]
    over = lengths > steps
    if over.any():
        row = first_row(over)
        if not clip:
            raise where.error(
                lengths_key,
                f"value {lengths[row]} at row {row} exceeds the {steps} time steps of key "
                f"'{key}' (set clip_lengths: true to clip)",
            )
        where.warn(lengths_key, f"had {int(over.sum())} value(s) above {steps}; clipped")
        lengths = np.minimum(lengths, steps)
    if (lengths < steps).any():
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    empty = int((lengths == 0).sum())
    if empty:
        where.warn(
            lengths_key,
            f"had {empty} length(s) of 0 (modality missing); stored as one zero step, length 1",
        )
    return np.maximum(lengths, 1)


def row_chunks(x: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, view of x[first:first + k]) over `x` (N, ...), ~CHUNK_BYTES per view."""
    rows = max(1, CHUNK_BYTES // max(1, x[0].nbytes))
    for start in range(0, x.shape[0], rows):
        yield start, x[start : start + rows]


def clean_nonfinite(where: Where, key: str, x: np.ndarray, zero_neginf: bool, fill: bool) -> None:
    """In place on `x` (N, T, D): -inf -> 0 when `zero_neginf`; any other non-finite value -> 0
    when `fill`, else a DataError naming the first row. Fills are logged with their counts."""
    neginf = other = 0
    for start, chunk in row_chunks(x):
        bad = ~np.isfinite(chunk)
        if not bad.any():
            continue
        if zero_neginf:
            is_neginf = np.isneginf(chunk)
            neginf += int(is_neginf.sum())
            chunk[is_neginf] = 0
            bad &= ~is_neginf
        if bad.any() and not fill:
            row = first_row(bad)
            value = chunk[row][bad[row]][0]
            raise where.error(
                key,
                f"holds {value} at row {start + row}; expected finite values "
                "(set fill_nonfinite: true to zero-fill them)",
            )
        other += int(bad.sum())
        chunk[bad] = 0
    if neginf:
        where.warn(key, f"held {neginf} -inf value(s); set to 0 (as MMSA and MulT do)")
    if other:
        where.warn(key, f"held {other} non-finite value(s); set to 0 (fill_nonfinite: true)")


def to_labels(
    where: Where, key: str, value: Any, n: int, kind: str | None, hint: str = ""
) -> np.ndarray:
    """(N,) float32 from (N,) or (N, 1, ...) values: finite and within the kind's range, exactly
    0 or 1 for a classification kind (`invalid_labels`); `hint` ends the error message."""
    try:
        labels = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise where.error(key, f"expected {n} numeric labels ({exc})") from None
    if labels.ndim < 1 or labels.shape[0] != n or labels.size != n:
        raise where.error(key, f"expected shape ({n},) or ({n}, 1, ...), got {labels.shape}")
    labels = labels.reshape(n)
    if kind:
        bad, expected = invalid_labels(labels, kind)
    else:
        bad, expected = ~np.isfinite(labels), "a finite value"
    if bad.any():
        row = first_row(bad)
        raise where.error(key, f"value {labels[row]} at row {row}; expected {expected}{hint}")
    return labels


def to_ids(where: Where, key: str, value: Any, n: int) -> np.ndarray:
    """(N,) unicode ids, unique within the split; an (N, k) id is joined with "_"."""
    raw = np.asarray(value, dtype=object)
    if raw.ndim < 1 or raw.shape[0] != n:
        raise where.error(key, f"expected {n} ids, got shape {raw.shape}")
    ids = ["_".join(_id_text(part) for part in row) for row in raw.reshape(n, -1)]
    seen: dict[str, int] = {}
    for row, sample_id in enumerate(ids):
        if sample_id in seen:
            raise where.error(
                key, f"value {sample_id!r} at row {row} repeats row {seen[sample_id]}"
            )
        seen[sample_id] = row
    return np.array(ids, dtype=str)


def _id_text(part: Any) -> str:
    if isinstance(part, bytes):
        try:
            return part.decode("utf-8")
        except UnicodeDecodeError:
            return part.decode("latin1")
    return str(part)


def check_across_splits(file: Path, splits: Mapping[str, SplitArrays], id_key: str) -> None:
    """Each modality's (T, D) equal in every split; no id in two splits (a leak)."""
    first = splits[SPLITS[0]]
    for split in SPLITS[1:]:
        for m, x in splits[split].features.items():
            if x.shape[1:] != first.features[m].shape[1:]:
                raise DataError(
                    f"{file}: split '{split}': key '{m}' has (T, D) = {x.shape[1:]} but split "
                    f"'{SPLITS[0]}' has {first.features[m].shape[1:]}; expected equal shapes"
                )
    owner: dict[str, str] = {}
    for split in SPLITS:
        for sample_id in splits[split].ids.tolist():
            if sample_id in owner:
                raise DataError(
                    f"{file}: split '{split}': key '{id_key}' value {sample_id!r} is also in "
                    f"split '{owner[sample_id]}'; splits must not share samples (a leak)"
                )
            owner[sample_id] = split


def first_row(bad: np.ndarray) -> int:
    """Index along axis 0 of the first True in `bad` (N, ...)."""
    return int(np.argwhere(bad)[0][0])


SplitConverter = Callable[[Where, dict[str, Any], PickleOptions], SplitArrays]


def read_pickled_splits(
    path: Path,
    options: Mapping[str, Any],
    convert_split: SplitConverter,
    settings_type: type[PickleOptions] = PickleOptions,
) -> dict[str, SplitArrays]:
    """Resolve and load the pickle, then `convert_split(Where, raw_split, settings)` each split
    (settings: the format's options, a `settings_type`), dropping the pickled split as soon as
    it is converted."""
    settings = settings_type.from_mapping(options)
    file = resolve_pickle(path, settings)
    data = load_pickled_splits(file)
    splits: dict[str, SplitArrays] = {}
    for split in SPLITS:
        splits[split] = convert_split(Where(file, split), data.pop(split), settings)
    del data
    check_across_splits(file, splits, "id")
    return splits


@register_format("mmsa", MmsaOptions)
def read_mmsa(path: Path, options: Mapping[str, Any]) -> dict[str, SplitArrays]:
    """An MMSA pickle (a file, or a directory holding one .pkl or option `file:`) as
    {split: SplitArrays}; see the module docstring for lengths and non-finite values."""
    return read_pickled_splits(path, options, _mmsa_split, MmsaOptions)


def _mmsa_split(where: Where, raw: dict[str, Any], settings: PickleOptions) -> SplitArrays:
    assert isinstance(settings, MmsaOptions)
    label_key = settings.label_key
    keys = (label_key, *MMSA_KEYS) + (("text_bert",) if "text_bert" in raw else ())
    n = check_keys(where, raw, keys)
    hint = ""
    if label_key == "regression_labels" and settings.kind and is_classification(settings.kind):
        hint = "; set label_key: classification_labels if the pickle keeps the classes there"
    labels = to_labels(where, label_key, raw.pop(label_key), n, settings.kind, hint)
    ids = to_ids(where, "id", raw.pop("id"), n)
    features, lengths, tokens = {}, {}, None
    for m in MODALITIES:
        x = to_features(where, m, raw.pop(m), n)
        if m == "text":
            tokens = _text_tokens(where, raw.pop("text_bert", None), x)
            declared = np.full(n, x.shape[1], np.int64) if tokens is None else tokens[:, 1].sum(1)
            lengths_key = "text_bert"
        else:
            lengths_key = f"{m}_lengths"
            declared = to_lengths(where, lengths_key, raw.pop(lengths_key), n)
        lengths[m] = apply_lengths(where, m, lengths_key, x, declared, settings.clip_lengths)
        clean_nonfinite(where, m, x, zero_neginf=m == "audio", fill=settings.fill_nonfinite)
        features[m] = x
    return SplitArrays(features=features, lengths=lengths, labels=labels, ids=ids, tokens=tokens)


def _text_tokens(where: Where, text_bert: Any, text: np.ndarray) -> np.ndarray | None:
    """text_bert (N, 3, L_t) as int64 token ids (ids, attention mask, segment ids), or None."""
    n, steps = text.shape[:2]
    if text_bert is None:
        return None
    tokens = np.asarray(text_bert)
    if tokens.shape != (n, 3, steps) or tokens.dtype.kind not in "biuf":
        raise where.error(
            "text_bert",
            f"expected a numeric array of shape ({n}, 3, {steps}) (ids, mask, segments; L_t of "
            f"key 'text'), got {tokens.dtype} of shape {tokens.shape}",
        )
    if tokens.dtype.kind == "f":
        bad = ~np.isfinite(tokens) | (tokens != np.round(tokens))
        if bad.any():
            row = first_row(bad)
            raise where.error("text_bert", f"row {row} holds a non-integer token id or mask value")
    mask = tokens[:, 1, :]
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        row = first_row(bad)
        raise where.error("text_bert", f"attention mask (row 1) at row {row} is not 0/1")
    return tokens.astype(np.int64)
