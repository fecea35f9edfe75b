"""The `bclstm` format: CMU-MOSI utterance features of the bc-LSTM release with MMSA's labels.

Files under the dataset folder (/work/shared/data/mosi-bclstm/SOURCE.md describes them):
    data/{text,audio,video}/<m>_{train,test}0.csv   header-less, quoted; features then a 0/1 label
    data/text_{train,test}.csv                      column 0: row of transcripts.csv; then text
    data/transcripts.csv                            utterance id VIDEO_CLIP, transcript, int, 0/1
    label.csv                                       MMSA: video_id, clip_id, text, label, ..., mode
Row i of `<m>_<s>0.csv` is utterance `transcripts[text_<s>.csv[i, 0]]`, whose id equals
`f"{video_id}_{clip_id}"` in label.csv. Each utterance is one vector per modality, stored as
features (N, 1, D_m) float32 with lengths 1; labels are label.csv's continuous `label`.

With `text: tokens` the text modality is the transcript instead (the token-level MOSI): each
transcript is tokenized by the dataset's `text_model` (default the built-in MiniLM) into token ids
(N, 3, L), L = max_text_tokens, kept for fine-tuning, and encoded once by the frozen model into
its final token states, stored as the text features (N, L, H) with lengths = real tokens ([CLS]
and [SEP] included); audio and vision stay the bc-LSTM utterance vectors (length 1).

Options (the dataset's params section):
    split: bclstm (default)  the speaker-independent bc-LSTM split: test = its 752 test utterances;
                             validation = a seeded choice of its training *videos*
           mmsa_standard     label.csv's `mode` column (1284/229/686); leaks labels, see below
    valid_fraction: 0.15     share of bc-LSTM training videos held out for validation
    split_seed: 0            seed of the permutation of the sorted training video ids
    text: features (default) the bc-LSTM text vectors | tokens: the transcripts, as above
    text_model: minilm       the text model of `text: tokens` (harness/text_models.py)
    max_text_tokens: 50      L, the token ids' padded length (MMSA's 50)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from harness.data.formats.registry import read_options, register_format
from harness.data.spec import SPLITS
from harness.data.split_arrays import SplitArrays
from harness.errors import ConfigError, DataError
from harness.schema import non_negative, positive, probability

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("msabench")

# modality in the store -> folder/file stem in the bundle, and feature columns (label excluded)
BUNDLE_MODALITIES: dict[str, tuple[str, int]] = {
    "text": ("text", 100),
    "audio": ("audio", 73),
    "vision": ("video", 100),
}
BUNDLE_SPLITS = ("train", "test")
SPLIT_MODES = ("bclstm", "mmsa_standard")
LABEL_COLUMNS = ("video_id", "clip_id", "label", "mode")
LEAK_WARNING = (
    "bclstm format with split: mmsa_standard: the bc-LSTM feature extractors were trained on the "
    "bc-LSTM training utterances, 558 of which are test utterances of the MMSA standard split, so "
    "test scores are inflated (text alone: about 94% vs 77% binary accuracy); use split: bclstm"
)


@dataclass(frozen=True)
class Utterances:
    """All utterances of the bundle, bc-LSTM train rows then test rows: features[m] (N, D_m)
    float64, labels (N,) float64, ids / video_ids / bclstm_split / mode / transcripts (N,)
    unicode; with token-level text, tokens (N, 3, L) int64 and text_states (N, L, H) float32."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    ids: np.ndarray
    video_ids: np.ndarray
    bclstm_split: np.ndarray
    mode: np.ndarray
    transcripts: np.ndarray
    tokens: np.ndarray | None = None
    text_states: np.ndarray | None = None

    def select(self, mask: np.ndarray) -> SplitArrays:
        """The rows where `mask` (N,) is True as a store split: features (n, 1, D_m) float32
        (text (n, L, H) with token-level text)."""
        n = int(mask.sum())
        features = {
            m: np.ascontiguousarray(x[mask, None, :], np.float32) for m, x in self.features.items()
        }
        lengths = {m: np.ones(n, dtype=np.int64) for m in self.features}
        tokens = None
        if self.tokens is not None and self.text_states is not None:
            tokens = np.ascontiguousarray(self.tokens[mask])
            features["text"] = np.ascontiguousarray(self.text_states[mask])
            lengths["text"] = tokens[:, 1].sum(axis=1).astype(np.int64)
        return SplitArrays(
            features=features,
            lengths=lengths,
            labels=self.labels[mask].astype(np.float32),
            ids=self.ids[mask].astype(str),
            tokens=tokens,
        )


@dataclass(frozen=True)
class BclstmOptions:
    """The options of format bclstm (`datasets.<name>.<option>`)."""

    split: Literal["bclstm", "mmsa_standard"] = "bclstm"  # SPLIT_MODES; mmsa_standard leaks
    valid_fraction: float = field(default=0.15, metadata={"check": probability})
    split_seed: int = field(default=0, metadata={"check": non_negative})
    text: Literal["features", "tokens"] = "features"
    text_model: str = "minilm"
    max_text_tokens: int = field(default=50, metadata={"check": positive})


@register_format("bclstm", BclstmOptions)
def read_bclstm(directory: Path, options: Mapping[str, Any]) -> dict[str, SplitArrays]:
    """Read the bundle under `directory` and split it as option `split` says."""
    settings: BclstmOptions = read_options(BclstmOptions, options)
    split, valid_fraction, seed = settings.split, settings.valid_fraction, settings.split_seed
    utterances = read_bundle(Path(directory))
    if settings.text == "tokens":
        utterances = with_token_text(utterances, settings.text_model, settings.max_text_tokens)
    if split == "bclstm":
        assignment = bclstm_assignment(utterances, valid_fraction, seed)
    else:
        log.warning(LEAK_WARNING)
        warnings.warn(LEAK_WARNING, UserWarning, stacklevel=2)
        assignment = utterances.mode
    return {name: utterances.select(assignment == name) for name in SPLITS}


def with_token_text(utterances: Utterances, text_model: str, max_tokens: int) -> Utterances:
    """The utterances with their transcripts tokenized and encoded by the frozen text model."""
    from harness.data.text_encoding import encode, tokenize
    from harness.text_models import resolve

    model = resolve(text_model, "text_model")
    tokens = tokenize(utterances.transcripts.tolist(), model, max_tokens)
    return replace(utterances, tokens=tokens, text_states=encode(tokens, model))


def bclstm_assignment(utterances: Utterances, valid_fraction: float, seed: int) -> np.ndarray:
    """(N,) split names: bc-LSTM test rows -> "test"; the bc-LSTM training videos chosen by a
    permutation (seeded) of their sorted ids -> "valid", never splitting a video; the rest
    "train"."""
    in_train = utterances.bclstm_split == "train"
    videos = np.unique(utterances.video_ids[in_train])  # sorted
    n_valid = round(valid_fraction * len(videos))
    if not 1 <= n_valid < len(videos):
        raise ConfigError(
            f"valid_fraction: {valid_fraction} of {len(videos)} training videos gives {n_valid} "
            "validation videos; expected at least one and fewer than all (format bclstm)"
        )
    order = np.random.default_rng(seed).permutation(len(videos))
    in_valid = in_train & np.isin(utterances.video_ids, videos[order[:n_valid]])
    return np.where(in_train, np.where(in_valid, "valid", "train"), "test")


# -- reading and joining the files ------------------------------------------------------------


def read_bundle(directory: Path) -> Utterances:
    """Read and join every file of the bundle; each inconsistency raises a one-line DataError."""
    transcript_ids, transcript_binary, texts = _read_transcripts(
        directory / "data" / "transcripts.csv"
    )
    labels = _read_labels(directory / "label.csv", transcript_ids)
    rows, features, names = [], {m: [] for m in BUNDLE_MODALITIES}, []
    for split in BUNDLE_SPLITS:
        split_rows, split_features = _read_split(directory, split, transcript_binary)
        rows.append(split_rows)
        names.append(np.full(len(split_rows), split))
        for m, x in split_features.items():
            features[m].append(x)
    order = np.concatenate(rows)  # (N,) rows of transcripts.csv
    _check_coverage(order, directory / "data", len(transcript_ids))
    return Utterances(
        features={m: np.concatenate(parts) for m, parts in features.items()},
        labels=labels["label"][order],
        ids=transcript_ids[order],
        video_ids=labels["video_id"][order],
        bclstm_split=np.concatenate(names),
        mode=labels["mode"][order],
        transcripts=texts[order],
    )


def _read_split(
    directory: Path, split: str, transcript_binary: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(rows (n,) into transcripts.csv, {m: (n, D_m)}) of one bc-LSTM split, rows aligned."""
    index_path = directory / "data" / f"text_{split}.csv"
    index = _read_numeric_csv(index_path, 1 + BUNDLE_MODALITIES["text"][1])
    rows = _row_numbers(index[:, 0], index_path, len(transcript_binary))
    features = {}
    for m, (stem, dims) in BUNDLE_MODALITIES.items():
        path = directory / "data" / stem / f"{stem}_{split}0.csv"
        table = _read_numeric_csv(path, dims + 1)
        if len(table) != len(rows):
            raise DataError(f"{path}: {len(table)} rows, expected {len(rows)} as in {index_path}")
        _check_binary(table[:, -1], transcript_binary[rows], path, index_path)
        features[m] = table[:, :-1]
    _check_same_text(index[:, 1:], features["text"], index_path)
    return rows, features


def _read_numeric_csv(path: Path, n_columns: int) -> np.ndarray:
    """(R, n_columns) float64 from a header-less CSV of quoted numbers. A fast float parse first;
    if anything is off, a cell-by-cell parse finds the row and column to name."""
    import pandas as pd

    _require_file(path)
    try:
        values = pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
        if values.shape[1] == n_columns and np.isfinite(values).all():
            return values
    except ValueError:  # also pandas' ParserError and EmptyDataError
        pass
    frame = _read_csv(path, header=None)
    if frame.shape[1] != n_columns:
        raise DataError(f"{path}: {frame.shape[1]} columns, expected {n_columns}")
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raw = str(frame.iat[row, column])
        raise DataError(
            f"{path}: row {row + 1} column {column + 1} value {raw!r}; expected a finite number"
        )
    return values


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"{path}: not found; the bclstm format expects the bc-LSTM MOSI bundle")


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """All cells as strings (a missing cell of a short row reads as ""); a ragged file raises."""
    import pandas as pd

    _require_file(path)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty; expected CSV rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path}: not a well-formed CSV ({detail})") from None


def _read_transcripts(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (K,) unicode, binary labels (K,) int64, transcripts (K,) unicode) from
    transcripts.csv."""
    import pandas as pd

    frame = _read_csv(path, header=None)
    if frame.shape[1] != 4:
        raise DataError(f"{path}: {frame.shape[1]} columns, expected 4 (id, text, int, label)")
    ids = frame[0].to_numpy(dtype=str)
    duplicated = pd.Index(ids).duplicated()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise DataError(f"{path}: row {row + 1} repeats utterance id {str(ids[row])!r}")
    binary = frame[3].to_numpy(dtype=str)
    bad = ~np.isin(binary, ("0", "1"))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: row {row + 1} column 4 value {str(binary[row])!r}; expected 0 or 1"
        )
    return ids, binary.astype(np.int64), frame[1].to_numpy(dtype=str)


def _read_labels(path: Path, transcript_ids: np.ndarray) -> dict[str, np.ndarray]:
    """label.csv columns aligned to transcripts.csv rows: label (K,) float64, video_id, mode."""
    import pandas as pd

    frame = _read_csv(path)
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected MMSA's header")
    ids = (frame["video_id"] + "_" + frame["clip_id"]).to_numpy(dtype=str)
    position = pd.Index(ids)
    if position.has_duplicates:
        line = int(np.argmax(position.duplicated())) + 2
        raise DataError(f"{path}: line {line} repeats utterance id {str(ids[line - 2])!r}")
    where = position.get_indexer(transcript_ids)  # (K,) row in label.csv, -1 if absent
    if (where < 0).any():
        absent = transcript_ids[int(np.argmax(where < 0))]
        raise DataError(f"{path}: no row for utterance {str(absent)!r} of transcripts.csv")
    if len(ids) != len(transcript_ids):
        extra = ids[~np.isin(ids, transcript_ids)][0]
        raise DataError(f"{path}: utterance {str(extra)!r} is not in transcripts.csv")
    labels = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(labels)
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raw = frame["label"].iat[line - 2]
        raise DataError(f"{path}: line {line} label {str(raw)!r}; expected a number in [-3, 3]")
    modes = frame["mode"].to_numpy(dtype=str)
    bad = ~np.isin(modes, SPLITS)
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raise DataError(
            f"{path}: line {line} mode {str(modes[line - 2])!r}; expected {list(SPLITS)}"
        )
    video_ids = frame["video_id"].to_numpy(dtype=str)
    return {"label": labels[where], "video_id": video_ids[where], "mode": modes[where]}


def _row_numbers(column: np.ndarray, path: Path, n_transcripts: int) -> np.ndarray:
    """Column 0 of text_<split>.csv (R,) float64 -> (R,) int64 rows of transcripts.csv."""
    rows = column.astype(np.int64)
    bad = (rows != column) | (rows < 0) | (rows >= n_transcripts)
    if bad.any():
        row = int(np.argmax(bad))
        value = float(column[row])
        raise DataError(
            f"{path}: row {row + 1} column 1 value {value!r}; expected a row number of "
            f"transcripts.csv in [0, {n_transcripts - 1}]"
        )
    return rows


def _check_binary(binary: np.ndarray, expected: np.ndarray, path: Path, index_path: Path) -> None:
    """The last column (R,) must equal transcripts.csv's 0/1 label of the joined rows (R,)."""
    bad = binary != expected
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: row {row + 1} label {binary[row]:g} differs from {expected[row]} in "
            f"transcripts.csv at the row named by {index_path.name} row {row + 1}; "
            "expected aligned files"
        )


def _check_same_text(indexed: np.ndarray, features: np.ndarray, path: Path) -> None:
    """text_<split>.csv repeats the text features (R, 100) of text/text_<split>0.csv (R, 100)."""
    bad = ~np.isclose(indexed, features, rtol=1e-4, atol=1e-5).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: row {row + 1} text features differ from data/text/; expected the same rows"
        )


def _check_coverage(order: np.ndarray, where: Path, n_transcripts: int) -> None:
    """Every row of transcripts.csv must be used exactly once by text_{train,test}.csv."""
    counts = np.bincount(order, minlength=n_transcripts)
    if (counts != 1).any():
        row = int(np.argmax(counts != 1))
        raise DataError(
            f"{where}/text_{{train,test}}.csv: transcripts.csv row {row} used {counts[row]} "
            "times; expected every utterance exactly once"
        )
