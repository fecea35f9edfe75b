"""The cross-modal Transformer encoder of MulT (Tsai et al., ACL 2019).

Pre-norm layers as in MulT's code (fairseq-derived; MMSA vendors the same encoder): inputs are
scaled by sqrt(D), optionally given sinusoidal positions (fairseq layout: sines then cosines,
positions from 1), embedding dropout, then
    LayerNorm -> multi-head attention (queries: target; keys/values: source) -> dropout -> residual
    LayerNorm -> Linear(D, 4D) -> ReLU -> dropout -> Linear(4D, D) -> dropout -> residual
and a final LayerNorm. One LayerNorm normalises the queries, keys and values of a layer, as in
MulT. Without a source the encoder is a self-attention Transformer (MulT's memory).

Switches (their defaults keep the behaviour of the methods that use the encoder as it was
written for msabench; MulT's module sets MMSA's):
  * `positions`: the original MulT adds sinusoidal positions; MMSA's MulT does not
    (`position_embedding=False`).
  * `masking`: "padding" builds key padding masks from the sequence lengths, so padding is never
    attended, and zeroes padded output rows (msabench's); "future" is MMSA's `attn_mask: true`:
    no padding masks (padding is attended, as by MulT and MMSA) and its `buffered_future_mask`,
    where target step i sees source steps j <= i + |S - T|.
  * `separate_kv_dropout`: MulT and MMSA scale and drop out a cross-modal source twice, once as
    keys and once as values (two dropout masks); off, one embedded source serves as both.

B = batch, T = target steps, S = source steps, D = model dimension; masks are (B, T) / (B, S) bool,
True at real steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fairseq/MulT sinusoidal embeddings of positions 1..length: (length, dim), sines in the
    first half of the channels, cosines in the second, a zero column when dim is odd."""
    half = dim // 2
    rate = math.log(10000.0) / max(half - 1, 1)
    frequencies = torch.exp(torch.arange(half, dtype=torch.float32, device=device) * -rate)
    positions = torch.arange(1, length + 1, dtype=torch.float32, device=device)
    angles = positions.unsqueeze(1) * frequencies.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:
        table = torch.cat([table, table.new_zeros(length, 1)], dim=1)
    return table


def safe_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool with the first step of all-padding rows marked real, so that attention over
    an empty sequence (a missing modality) sees one zero step instead of producing NaN."""
    if mask.shape[1] == 0:
        return mask
    fixed = mask.clone()
    fixed[:, 0] |= ~mask.any(dim=1)
    return fixed


class CrossModalLayer(nn.Module):
    """One pre-norm MulT layer. target (B, T, D), source (B, S, D) or None -> (B, T, D)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(
            dim, num_heads, dropout=attn_dropout, batch_first=True
        )
        self.attention_norm = nn.LayerNorm(dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        for linear in (self.fc1, self.fc2):  # MulT's Linear(): xavier weights, zero bias
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout

    def forward(
        self,
        target: torch.Tensor,
        source: torch.Tensor | None,
        source_padding: torch.Tensor | None,
        values: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`source_padding` (B, S) bool is True at padding (torch's key_padding_mask), or None;
        `values` (B, S, D) the source embedded apart for values (default: `source`);
        `attn_mask` (T, S) float, added to the attention logits (-inf: not attended)."""
        query = self.attention_norm(target)
        keys = query if source is None else self.attention_norm(source)
        vals = keys if values is None else self.attention_norm(values)
        attended, _ = self.attention(
            query,
            keys,
            vals,
            key_padding_mask=source_padding,
            attn_mask=attn_mask,
            need_weights=False,
        )
        x = target + F.dropout(attended, self.res_dropout, self.training)
        hidden = F.relu(self.fc1(self.ffn_norm(x)))
        hidden = self.fc2(F.dropout(hidden, self.relu_dropout, self.training))
        return x + F.dropout(hidden, self.res_dropout, self.training)


MASKINGS = ("padding", "future")


def future_mask(target_steps: int, source_steps: int, device=None) -> torch.Tensor:
    """MMSA's/MulT's `buffered_future_mask`: (T, S) float, -inf where source step j > target
    step i + |S - T|, else 0."""
    full = torch.full((target_steps, source_steps), float("-inf"), device=device)
    return torch.triu(full, diagonal=1 + abs(source_steps - target_steps))


class CrossModalTransformer(nn.Module):
    """MulT's TransformerEncoder: the target sequence attends to a source sequence through
    `layers` CrossModalLayers (or to itself when no source is given).

    forward(target (B, T, D), target_mask (B, T), source (B, S, D) | None, source_mask (B, S))
    -> (B, T, D); with masking "padding" its padded rows are zero (the module docstring has the
    switches)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        layers: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        positions: bool = True,
        masking: str = "padding",
        separate_kv_dropout: bool = False,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"num_heads: {num_heads} does not divide the model dimension {dim}")
        if masking not in MASKINGS:
            raise ValueError(f"masking: expected one of {', '.join(MASKINGS)}, got {masking!r}")
        self.dim = dim
        self.embed_dropout = embed_dropout
        self.positions = positions
        self.masking = masking
        self.separate_kv_dropout = separate_kv_dropout
        self.layers = nn.ModuleList(
            CrossModalLayer(dim, num_heads, attn_dropout, relu_dropout, res_dropout)
            for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(dim)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """sqrt(D) * x (+ positions), zero at padding where a mask is given, then embedding
        dropout: (B, T, D)."""
        embedded = math.sqrt(self.dim) * x
        if self.positions:
            embedded = embedded + sinusoidal_positions(x.shape[1], self.dim, x.device).to(x.dtype)
        if mask is not None:
            embedded = embedded * mask.unsqueeze(-1).to(x.dtype)
        return F.dropout(embedded, self.embed_dropout, self.training)

    def forward(
        self,
        target: torch.Tensor,
        target_mask: torch.Tensor,
        source: torch.Tensor | None = None,
        source_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.masking == "future":
            return self._forward_future(target, source)
        target_mask = safe_mask(target_mask)
        x = self.embed(target, target_mask)
        values = None
        if source is None:
            keys, key_padding = None, ~target_mask
        else:
            if source_mask is None:
                raise ValueError("source_mask: required when a source sequence is given")
            source_mask = safe_mask(source_mask)
            keys, key_padding = self.embed(source, source_mask), ~source_mask
            if self.separate_kv_dropout:
                values = self.embed(source, source_mask)
        for layer in self.layers:
            x = layer(x, keys, key_padding, values)
        return self.final_norm(x) * target_mask.unsqueeze(-1).to(x.dtype)

    def _forward_future(self, target: torch.Tensor, source: torch.Tensor | None) -> torch.Tensor:
        """MMSA's form: every step attended, padding included, under the future mask."""
        x = self.embed(target, None)
        keys = values = None
        steps = target.shape[1]
        if source is not None:
            keys = self.embed(source, None)
            values = self.embed(source, None) if self.separate_kv_dropout else None
            steps = source.shape[1]
        mask = future_mask(target.shape[1], steps, target.device).to(x.dtype)
        for layer in self.layers:
            x = layer(x, keys, None, values, mask)
        return self.final_norm(x)


def last_real_step(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The output at each sequence's last real step: x (B, T, D), lengths (B,) -> (B, D);
    an empty sequence gives its first step."""
    index = (lengths.clamp(min=1, max=x.shape[1]) - 1).to(x.device)
    return x[torch.arange(x.shape[0], device=x.device), index]
