"""The `label_csv` format: an MMSA-style `label.csv` (video_id, clip_id, text, label, ..., mode)
read as a text-only dataset: the transcripts and their labels, nothing else.

MMSA's label files for MOSI, MOSEI and CH-SIMS share this header (extra columns such as
label_T or annotation are ignored); params.yaml's `mosei_text` reads the 22,788 CMU-MOSEI
transcripts of /work/shared/data/mosei-text/label.csv with it. Each row is one utterance:
    id      f"{video_id}_{clip_id}", unique
    text    the transcript (non-empty)
    label   the continuous label (within the dataset kind's range: [-3, 3] for mosi/mosei)
    mode    its split: train, valid or test (MMSA's standard split)
The transcripts are tokenized by `text_model` (default the built-in MiniLM) into token ids
(N, 3, L), L = max_text_tokens (MMSA's 50), and encoded once by the frozen model into its final
token states (N, L, H), stored as the `text` features (lengths = real tokens); no audio or
vision. Each split is encoded on its own, so converting holds one copy of the states (MOSEI at
L = 50: 22,788 x 50 x 384 float32 = 1.75 GB).

Options (the dataset's params section):
    file: label.csv     the CSV inside the dataset folder (a `file` dataset's path may also
                        name the CSV itself)
    text: tokens        the only text there is (no other features exist)
    text_model: minilm  harness/text_models.py
    max_text_tokens: 50 L, the token ids' padded length
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from harness.data.formats.registry import read_options, register_format
from harness.data.spec import DATASET_KINDS, SPLITS
from harness.data.split_arrays import SplitArrays, invalid_labels
from harness.errors import ConfigError, DataError
from harness.schema import checked

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("msabench")

COLUMNS = ("video_id", "clip_id", "text", "label", "mode")


def _token_budget(value: Any) -> str | None:
    return None if value >= 2 else "an integer >= 2 ([CLS] and [SEP] at least)"


@dataclass(frozen=True, kw_only=True)
class LabelCsvOptions:
    """The options of format label_csv (`datasets.<name>.<option>`)."""

    file: str = "label.csv"
    text: Literal["tokens"] = "tokens"
    text_model: str = "minilm"
    max_text_tokens: int = checked(50, _token_budget)


@dataclass(frozen=True)
class LabelRows:
    """label.csv's rows in file order: ids, texts, modes (N,) unicode, labels (N,) float32."""

    ids: np.ndarray
    texts: np.ndarray
    labels: np.ndarray
    modes: np.ndarray


@register_format("label_csv", LabelCsvOptions)
def read_label_csv(path: Path, options: Mapping[str, Any]) -> dict[str, SplitArrays]:
    """The label CSV at `path` (the file, or the folder holding option `file`) as
    {split: SplitArrays} with the text modality only."""
    from harness.data.text_encoding import encode, text_only_split, tokenize
    from harness.text_models import resolve

    settings: LabelCsvOptions = read_options(LabelCsvOptions, options)
    kind = options.get("kind")
    if kind is not None and kind not in DATASET_KINDS:
        raise ConfigError(f"kind: expected one of {', '.join(DATASET_KINDS)}, got {kind!r}")
    path = Path(path)
    rows = read_rows(path if path.is_file() else path / settings.file, kind)
    model = resolve(settings.text_model, "text_model")
    tokens = tokenize(rows.texts.tolist(), model, settings.max_text_tokens)
    cut = int((tokens[:, 1, -1] == 1).sum())
    log.info(
        "label_csv: %d of %d transcripts fill all %d tokens (truncated or exactly L)",
        cut, len(tokens), settings.max_text_tokens,
    )  # fmt: skip
    splits = {}
    for split in SPLITS:
        mask = rows.modes == split
        states = encode(tokens[mask], model)
        splits[split] = text_only_split(tokens[mask], states, rows.labels[mask], rows.ids[mask])
    return splits


def read_rows(path: Path, kind: str | None) -> LabelRows:
    """label.csv checked line by line (line 1 is the header); labels within `kind`'s range
    when it is given. Each problem raises a one-line DataError naming the file and line."""
    import pandas as pd

    frame = _read_csv(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected MMSA's header "
            f"({', '.join(COLUMNS)})"
        )
    ids = (frame["video_id"] + "_" + frame["clip_id"]).to_numpy(dtype=str)
    repeated = pd.Index(ids).duplicated()
    if repeated.any():
        row = int(np.argmax(repeated))
        raise DataError(f"{path}: line {row + 2} repeats utterance id {str(ids[row])!r}")
    texts = frame["text"].to_numpy(dtype=str)
    _first_bad(path, np.char.strip(texts) == "", "text", frame, "a non-empty transcript")
    labels = _labels(path, frame, kind)
    modes = frame["mode"].to_numpy(dtype=str)
    _first_bad(path, ~np.isin(modes, SPLITS), "mode", frame, f"one of {', '.join(SPLITS)}")
    for split in SPLITS:
        if not (modes == split).any():
            raise DataError(f"{path}: no row has mode {split!r}; expected rows of every split")
    return LabelRows(ids=ids, texts=texts, labels=labels, modes=modes)


def _labels(path: Path, frame: pd.DataFrame, kind: str | None) -> np.ndarray:
    """The label column (N,) float32: numbers, within `kind`'s range when given."""
    import pandas as pd

    labels = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=np.float64)
    _first_bad(path, ~np.isfinite(labels), "label", frame, "a number")
    if kind is not None:
        bad, expected = invalid_labels(labels, kind)
        _first_bad(path, bad, "label", frame, expected)
    return labels.astype(np.float32)


def _first_bad(
    path: Path, bad: np.ndarray, column: str, frame: pd.DataFrame, expected: str
) -> None:
    """DataError naming the first line (header = line 1) where `bad` (N,) holds."""
    if bad.any():
        row = int(np.argmax(bad))
        value = frame[column].iat[row]
        raise DataError(f"{path}: line {row + 2} {column} {value!r}; expected {expected}")


def _read_csv(path: Path) -> pd.DataFrame:
    """Every cell as a string (an empty cell reads as ""); a missing or ragged file raises."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: not found; the label_csv format expects an MMSA label.csv")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty; expected a header and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path}: not a well-formed CSV ({detail})") from None
