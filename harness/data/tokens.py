"""Token ids of the text modality, as the papers feed text to a pretrained Transformer.

MMSA's pickles hold them as `text_bert` (N, 3, L): row 0 the WordPiece ids, row 1 the attention
mask, row 2 the segment (token type) ids. The feature store keeps the same layout under key
`text_tokens` (int64) of each split, and the manifest's `text_tokens` entry (`TokenInfo`) says
which vocabulary and text model the ids belong to. N = samples, L = padded token length,
B = batch size, L' = the longest real token count in a batch.

Checks (`check_tokens`, one-line DataErrors naming split, key and row): ids are integers in
[0, vocab_size); the mask is 0/1, prefix-shaped (ones, then zeros) with at least one real token;
segment ids are 0 or 1; and the mask's sum equals the text modality's stored length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.errors import DataError

TOKENS_KEY = "text_tokens"  # the store's key of the (N, 3, L) int64 array
ID_ROW, MASK_ROW, SEGMENT_ROW = 0, 1, 2
_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class TokenInfo:
    """What the stored token ids mean: the text model whose tokenizer wrote (or whose vocabulary
    checked) them, and the ids a method or a missing-modality mask needs.

    model: the params value naming the model (`minilm`, a local directory, or `hub:<name>`);
    name / revision / sha256: the model's identity (sha256 of its weights file);
    hidden_size: the width of its token states; max_length: L."""

    model: str
    name: str
    revision: str
    sha256: str
    vocab_size: int
    hidden_size: int
    max_length: int
    cls_id: int
    sep_id: int
    pad_id: int
    unk_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: Any, where: str) -> TokenInfo:
        """Parse the manifest entry; a malformed one raises DataError naming `where`."""
        fields = set(cls.__dataclass_fields__)
        if not isinstance(payload, dict) or set(payload) != fields:
            got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise DataError(f"{where}: text_tokens expected keys {sorted(fields)}, got {got}")
        try:
            return cls(**payload)
        except TypeError as exc:
            raise DataError(f"{where}: text_tokens malformed ({exc})") from None

    def provenance(self) -> str:
        """One line for tables and run records: `name@revision (sha256 12 chars)`."""
        return f"{self.name}@{self.revision} (weights sha256 {self.sha256[:12]})"


def check_tokens(where: str, tokens: Any, text_lengths: np.ndarray | None, vocab_size: int) -> None:
    """Check a split's tokens (N, 3, L) int64 against the vocabulary and the text lengths (N,)."""
    n = -1 if text_lengths is None else int(text_lengths.shape[0])
    if not isinstance(tokens, np.ndarray) or tokens.dtype != np.int64 or tokens.ndim != 3:
        is_array = isinstance(tokens, np.ndarray)
        got = f"{tokens.dtype} array of shape {tokens.shape}" if is_array else type(tokens).__name__
        raise DataError(f"{where}: key '{TOKENS_KEY}' expected an int64 (N, 3, L) array, got {got}")
    if tokens.shape[1] != 3 or tokens.shape[2] < 1 or (n >= 0 and tokens.shape[0] != n):
        raise DataError(
            f"{where}: key '{TOKENS_KEY}' has shape {tokens.shape}; expected "
            f"({n if n >= 0 else 'N'}, 3, L) (ids, attention mask, segment ids)"
        )
    for start in range(0, tokens.shape[0], _CHUNK_ROWS):
        chunk = tokens[start : start + _CHUNK_ROWS]
        lengths = None if text_lengths is None else text_lengths[start : start + _CHUNK_ROWS]
        _check_chunk(where, chunk, lengths, vocab_size, start)


def _check_chunk(
    where: str, tokens: np.ndarray, lengths: np.ndarray | None, vocab_size: int, start: int
) -> None:
    ids, mask, segments = tokens[:, ID_ROW], tokens[:, MASK_ROW], tokens[:, SEGMENT_ROW]
    key = f"key '{TOKENS_KEY}'"
    bad = (ids < 0) | (ids >= vocab_size)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{where}: {key} token id {int(ids[row, col])} at row {start + row} is outside the "
            f"text model's vocabulary [0, {vocab_size})"
        )
    bad_rows = ((mask != 0) & (mask != 1)).any(axis=1)
    if bad_rows.any():
        row = int(np.argmax(bad_rows))
        raise DataError(f"{where}: {key} attention mask at row {start + row} is not 0/1")
    if (np.diff(mask, axis=1) > 0).any() or (mask[:, 0] == 0).any():
        bad_rows = (np.diff(mask, axis=1) > 0).any(axis=1) | (mask[:, 0] == 0)
        row = int(np.argmax(bad_rows))
        raise DataError(
            f"{where}: {key} attention mask at row {start + row} is not prefix-shaped; expected "
            "1s for the real tokens (at least one), then 0s"
        )
    bad_rows = ((segments != 0) & (segments != 1)).any(axis=1)
    if bad_rows.any():
        row = int(np.argmax(bad_rows))
        raise DataError(f"{where}: {key} segment ids at row {start + row} are not 0/1")
    if lengths is not None:
        counts = mask.sum(axis=1)
        bad_rows = counts != lengths
        if bad_rows.any():
            row = int(np.argmax(bad_rows))
            raise DataError(
                f"{where}: {key} attention mask at row {start + row} has {int(counts[row])} real "
                f"tokens but key 'text_lengths' says {int(lengths[row])}; expected equal"
            )
