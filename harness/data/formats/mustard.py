"""The `mustard` format: MUStARD, sarcasm detection in TV dialogue (Castro et al., ACL 2019), as a
text-only binary dataset, one cross-validation fold per dataset.

Files under the dataset folder (/work/shared/data/mustard/SOURCE.md describes them):
    sarcasm_data.json   {utterance id: {utterance, speaker, context: [turns], context_speakers,
                        show, sarcasm: true/false}}: 690 utterances, 345 sarcastic
    split_indices.p     the authors' 5 speaker-dependent folds: a pickled list of 5 (train
                        indices, test indices) pairs of int arrays into the json's key order
                        (552 / 138 each); read with the restricted unpickler (safe_pickle.py)

A dataset is one fold (`fold: 1..5`; params.yaml declares mustard_fold1 .. mustard_fold5 in
`group: mustard`): test = the fold's test utterances; validation = a share of the fold's training
utterances, stratified by label and seeded (the authors' folds have none); train = the rest.
Labels are 1.0 (sarcastic) and 0.0 as float32, so the dataset's kind must be `binary`; ids are
the json's keys.

Text only: each utterance is tokenized by `text_model` (default the built-in MiniLM) into
token ids (N, 3, L), L = max_text_tokens, and encoded once by the frozen model into its final
token states (N, L, H), stored as the `text` features (lengths = real tokens). With `context:
true` the text is the sentence pair [CLS] context [SEP] utterance [SEP], the context being the
dialogue turns before the utterance joined by spaces; the utterance is kept whole and the
context loses its oldest tokens when the pair is longer than L. MiniLM token counts: utterance
3-97 (mean 19.1; 5 of 690 above 64); context + utterance 12-188 (mean 62.6; 286 of 690 above
64, 15 above 128): with context, set max_text_tokens: 128.

Options (the dataset's params section):
    fold                required, 1 to 5: the authors' fold
    context: false      the utterance alone | true: its dialogue context, then the utterance
    valid_fraction: 0.15  share of each class of the fold's training utterances held out
    split_seed: 0       seed of the validation draw
    text: tokens        the only text there is (no other features exist)
    text_model: minilm  harness/text_models.py
    max_text_tokens: 64 L, the token ids' padded length
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.data.formats.registry import read_options, register_format
from harness.data.safe_pickle import safe_load
from harness.data.split_arrays import SplitArrays
from harness.errors import ConfigError, DataError
from harness.schema import checked, non_negative, probability

log = logging.getLogger("msabench")

DATA_FILE = "sarcasm_data.json"
SPLIT_FILE = "split_indices.p"
FOLDS = 5


def _fold_number(value: Any) -> str | None:
    return None if 1 <= value <= FOLDS else f"a fold number from 1 to {FOLDS}"


def _token_budget(value: Any) -> str | None:
    return None if value >= 4 else "an integer >= 4 ([CLS], [SEP], a token, [SEP])"


@dataclass(frozen=True, kw_only=True)
class MustardOptions:
    """The options of format mustard (`datasets.<name>.<option>`)."""

    fold: int = checked(check=_fold_number)  # required: which of the authors' folds
    context: bool = False  # the dialogue context before the utterance, as a sentence pair
    valid_fraction: float = checked(0.15, probability)
    split_seed: int = checked(0, non_negative)
    text: Literal["tokens"] = "tokens"
    text_model: str = "minilm"
    max_text_tokens: int = checked(64, _token_budget)


@dataclass(frozen=True)
class Utterances:
    """sarcasm_data.json in its key order: ids, utterances, contexts (the turns joined by
    spaces) (N,) unicode and labels (N,) float32 (1.0 sarcastic)."""

    ids: np.ndarray
    utterances: np.ndarray
    contexts: np.ndarray
    labels: np.ndarray


@register_format("mustard", MustardOptions)
def read_mustard(directory: Path, options: Mapping[str, Any]) -> dict[str, SplitArrays]:
    """The fold `fold` of the MUStARD files under `directory` as {split: SplitArrays}."""
    from harness.data.text_encoding import encode, text_only_split, tokenize
    from harness.text_models import resolve

    settings: MustardOptions = read_options(MustardOptions, options)
    kind = options.get("kind")
    if kind is not None and kind != "binary":
        raise ConfigError(
            f"kind: format mustard has classes (sarcastic 1, not 0); expected binary, got {kind!r}"
        )
    directory = Path(directory)
    data = read_utterances(directory / DATA_FILE)
    folds = read_folds(directory / SPLIT_FILE, len(data.ids))
    train, test = folds[settings.fold - 1]
    valid = stratified_rows(train, data.labels, settings.valid_fraction, settings.split_seed)
    train = np.setdiff1d(train, valid)
    model = resolve(settings.text_model, "text_model")
    contexts = data.contexts.tolist() if settings.context else None
    tokens = tokenize(data.utterances.tolist(), model, settings.max_text_tokens, contexts)
    full = int((tokens[:, 1, -1] == 1).sum())
    log.info(
        "mustard fold %d: %d of %d token sequences fill all %d tokens (truncated or exactly L)",
        settings.fold, full, len(tokens), settings.max_text_tokens,
    )  # fmt: skip
    states = encode(tokens, model)
    rows = {"train": train, "valid": valid, "test": test}
    return {
        name: text_only_split(tokens[r], states[r], data.labels[r], data.ids[r])
        for name, r in rows.items()
    }


def stratified_rows(rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted rows drawn from `rows` (n,) (indices into `labels` (N,)): per class (in sorted
    order), round(fraction x the class's rows) of them, by one seeded generator permuting each
    class's sorted rows. ConfigError when a class would give none, or all, of its rows."""
    generator = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels[rows]):
        members = np.sort(rows[labels[rows] == label])
        n_chosen = round(fraction * len(members))
        if not 1 <= n_chosen < len(members):
            raise ConfigError(
                f"valid_fraction: {fraction} of the {len(members)} training utterances of class "
                f"{label:g} gives {n_chosen}; expected at least one and fewer than all "
                "(format mustard)"
            )
        chosen.append(members[generator.permutation(len(members))[:n_chosen]])
    return np.sort(np.concatenate(chosen))


# -- reading and checking the files ------------------------------------------------------------


def read_utterances(path: Path) -> Utterances:
    """sarcasm_data.json, every entry checked; a malformed one raises a one-line DataError."""
    if not path.is_file():
        raise DataError(f"{path}: not found; the mustard format expects MUStARD's {DATA_FILE}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, dict) or not raw:
        got = f"an empty {type(raw).__name__}" if not raw else type(raw).__name__
        raise DataError(f"{path}: expected an object keyed by utterance id, got {got}")
    utterances, contexts, labels = [], [], []
    for key, entry in raw.items():
        utterance, context, sarcasm = _entry(path, key, entry)
        utterances.append(utterance)
        contexts.append(" ".join(context))
        labels.append(float(sarcasm))
    return Utterances(
        ids=np.array(list(raw), dtype=str),
        utterances=np.array(utterances, dtype=str),
        contexts=np.array(contexts, dtype=str),
        labels=np.array(labels, dtype=np.float32),
    )


def _entry(path: Path, key: str, entry: Any) -> tuple[str, list[str], bool]:
    """(utterance, context turns, sarcasm) of one json entry, each checked."""
    where = f"{path}: utterance {key!r}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
    for name in ("utterance", "context", "sarcasm"):
        if name not in entry:
            raise DataError(f"{where}: key '{name}' missing; expected utterance, context, sarcasm")
    utterance, context, sarcasm = entry["utterance"], entry["context"], entry["sarcasm"]
    if not isinstance(utterance, str) or not utterance.strip():
        raise DataError(f"{where}: key 'utterance' {utterance!r}; expected a non-empty string")
    if not isinstance(context, list) or not all(isinstance(turn, str) for turn in context):
        raise DataError(f"{where}: key 'context' {context!r}; expected a list of strings")
    if not isinstance(sarcasm, bool):
        raise DataError(f"{where}: key 'sarcasm' {sarcasm!r}; expected true or false")
    return utterance, context, sarcasm


def read_folds(path: Path, n_utterances: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """split_indices.p as FOLDS (train rows, test rows) pairs of sorted int64 arrays, each fold
    checked: whole numbers in [0, n_utterances), no repeats, train and test disjoint and together
    every utterance."""
    if not path.is_file():
        raise DataError(f"{path}: not found; the mustard format expects MUStARD's {SPLIT_FILE}")
    raw = safe_load(path)
    if not isinstance(raw, list | tuple) or len(raw) != FOLDS:
        got = f"{len(raw)} entries" if isinstance(raw, list | tuple) else type(raw).__name__
        raise DataError(f"{path}: expected a list of {FOLDS} (train, test) index pairs, got {got}")
    folds = []
    for number, pair in enumerate(raw, start=1):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise DataError(f"{path}: fold {number}: expected a (train, test) pair of index arrays")
        train = _indices(path, number, "train", pair[0], n_utterances)
        test = _indices(path, number, "test", pair[1], n_utterances)
        shared = np.intersect1d(train, test)
        if shared.size:
            raise DataError(
                f"{path}: fold {number}: index {int(shared[0])} is in both train and test; "
                "expected disjoint sets (a leak)"
            )
        if train.size + test.size != n_utterances:
            raise DataError(
                f"{path}: fold {number}: train {train.size} + test {test.size} indices; expected "
                f"the {n_utterances} utterances of {DATA_FILE} (552 + 138), each once"
            )
        folds.append((train, test))
    return folds


def _indices(path: Path, fold: int, part: str, value: Any, n_utterances: int) -> np.ndarray:
    """One index array of a fold as sorted int64 (n,), checked."""
    where = f"{path}: fold {fold}: {part}"
    indices = np.asarray(value) if isinstance(value, np.ndarray | list | tuple) else None
    if indices is None or indices.ndim != 1 or indices.size == 0 or indices.dtype.kind not in "iu":
        got = (
            f"{indices.dtype} of shape {indices.shape}"
            if indices is not None
            else type(value).__name__
        )
        raise DataError(f"{where}: expected a non-empty 1-D integer index array, got {got}")
    bad = (indices < 0) | (indices >= n_utterances)
    if bad.any():
        index = int(indices[np.argmax(bad)])
        raise DataError(
            f"{where}: index {index} outside [0, {n_utterances - 1}]; expected rows of "
            f"{DATA_FILE} ({n_utterances} utterances)"
        )
    unique = np.unique(indices)
    if unique.size != indices.size:
        values, counts = np.unique(indices, return_counts=True)
        raise DataError(f"{where}: index {int(values[counts > 1][0])} repeated; expected each once")
    return unique.astype(np.int64)
