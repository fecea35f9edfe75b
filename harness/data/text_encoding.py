"""Transcripts to token ids and frozen token states, at fetch time (the fetch stage caches both in
the feature store, so training never re-encodes a transcript).

N = transcripts, L = max_length tokens, H = the text model's hidden size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.data.split_arrays import SplitArrays
from harness.data.tokens import MASK_ROW, TokenInfo
from harness.errors import DataError
from harness.text_models import (
    BUILTIN,
    TextModel,
    check_spec,
    load_encoder,
    load_tokenizer,
    resolve,
)

log = logging.getLogger("msabench")
ENCODE_BATCH = 64


def tokenize(
    texts: Sequence[str],
    model: TextModel,
    max_length: int,
    contexts: Sequence[str] | None = None,
) -> np.ndarray:
    """Token ids (N, 3, L) int64 (ids, attention mask, segment ids), [CLS] ... [SEP] then padding,
    truncated to L tokens, as MMSA's `text_bert`. With `contexts` (N strings), each row is the
    pair [CLS] context [SEP] text [SEP] (segment ids 0, then 1; `_pair_tokens`)."""
    tokenizer = load_tokenizer(model)
    if contexts is not None:
        return _pair_tokens(tokenizer, texts, contexts, max_length)
    encoded = tokenizer(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    rows = [encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"]]
    return np.stack([np.asarray(r, dtype=np.int64) for r in rows], axis=1)


def _pair_tokens(
    tokenizer: Any, texts: Sequence[str], contexts: Sequence[str], max_length: int
) -> np.ndarray:
    """Token ids (N, 3, L) of the pairs (contexts[i], texts[i]) as a BERT tokenizer encodes a
    sentence pair: [CLS] context [SEP] text [SEP], segment ids 0 up to the first [SEP], 1 after.
    The text (what is classified) is kept whole when it fits in L - 3 tokens (else cut at its
    end), and the context fills the room left from its end: its *oldest* tokens are dropped, so
    the turns nearest the text survive (a tokenizer's own pair truncation cuts the nearest)."""
    if len(contexts) != len(texts):
        raise ValueError(f"{len(contexts)} contexts for {len(texts)} texts; expected one each")
    if max_length < 4:
        raise ValueError(f"max_length {max_length}: a pair needs at least 4 tokens")
    text_ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    context_ids = tokenizer(list(contexts), add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    tokens = np.zeros((len(texts), 3, max_length), dtype=np.int64)
    tokens[:, 0] = tokenizer.pad_token_id
    for row, (text, context) in enumerate(zip(text_ids, context_ids, strict=True)):
        text = text[: max_length - 3]
        room = max_length - 3 - len(text)
        context = context[max(0, len(context) - room) :]
        ids = [cls, *context, sep, *text, sep]
        tokens[row, 0, : len(ids)] = ids
        tokens[row, 1, : len(ids)] = 1
        tokens[row, 2, len(context) + 2 : len(ids)] = 1
    return tokens


def encode(tokens: np.ndarray, model: TextModel, batch_size: int = ENCODE_BATCH) -> np.ndarray:
    """The frozen model's final token states (N, L, H) float32 for tokens (N, 3, L), zeros at
    padding (eval mode, no dropout; batches of `batch_size`)."""
    import torch

    encoder = load_encoder(model)
    states = np.zeros((tokens.shape[0], tokens.shape[2], model.hidden_size), dtype=np.float32)
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, tokens.shape[0], batch_size):
            chunk = torch.from_numpy(tokens[start : start + batch_size])
            longest = int(chunk[:, MASK_ROW].sum(dim=1).max())
            chunk = chunk[:, :, :longest]
            out = encoder(
                input_ids=chunk[:, 0], attention_mask=chunk[:, 1], token_type_ids=chunk[:, 2]
            ).last_hidden_state
            out = out * chunk[:, 1].unsqueeze(-1).to(out.dtype)
            states[start : start + len(chunk), :longest] = out.numpy()
    log.info(
        "encoded %d transcripts with %s in %.1f s",
        len(tokens),
        model.provenance(),
        time.perf_counter() - started,
    )
    return states


def text_only_split(
    tokens: np.ndarray, states: np.ndarray, labels: np.ndarray, ids: Sequence[str]
) -> SplitArrays:
    """A split whose only modality is text: the frozen model's token states (N, L, H) float32
    as the `text` features, lengths = real tokens (N,) from the token ids (N, 3, L), which are
    kept for fine-tuning; labels (N,) as float32, ids (N,) as unicode."""
    return SplitArrays(
        features={"text": np.ascontiguousarray(states, dtype=np.float32)},
        lengths={"text": tokens[:, MASK_ROW].sum(axis=1).astype(np.int64)},
        labels=np.asarray(labels, dtype=np.float32),
        ids=np.asarray(ids, dtype=str),
        tokens=np.ascontiguousarray(tokens, dtype=np.int64),
    )


def token_info(model: TextModel, max_length: int) -> TokenInfo:
    """The manifest entry for token ids of `model`'s tokenizer, padded to `max_length`."""
    tokenizer = load_tokenizer(model)
    special = {
        "cls_id": tokenizer.cls_token_id,
        "sep_id": tokenizer.sep_token_id,
        "pad_id": tokenizer.pad_token_id,
        "unk_id": tokenizer.unk_token_id,
    }
    missing = [name for name, value in special.items() if value is None]
    if missing:
        raise DataError(
            f"text model {model.spec!r}: its tokenizer has no {', '.join(missing)}; expected a "
            "BERT-style tokenizer ([CLS], [SEP], [PAD], [UNK])"
        )
    return TokenInfo(
        model=model.spec,
        name=model.name,
        revision=model.revision,
        sha256=model.sha256,
        vocab_size=model.vocab_size,
        hidden_size=model.hidden_size,
        max_length=max_length,
        **{k: int(v) for k, v in special.items()},
    )


def splits_token_info(
    splits: Mapping[str, SplitArrays], options: Mapping[str, Any], key: str
) -> TokenInfo | None:
    """The TokenInfo of splits that hold token ids (None if none do), for the dataset's
    `text_model` option (default the built-in MiniLM); its vocabulary checks the ids."""
    lengths = {s.tokens.shape[2] for s in splits.values() if s.tokens is not None}
    if not lengths:
        return None
    spec = check_spec(options.get("text_model", BUILTIN), f"{key}.text_model")
    return token_info(resolve(spec, f"{key}.text_model"), max(lengths))
