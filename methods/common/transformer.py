"""The cross-modal Transformer encoder of MulT (Tsai et al., ACL 2019), with padding masks.

Follows MulT's reference code (fairseq-derived, as vendored in MMSA): inputs are scaled by
sqrt(D) and given sinusoidal positions (fairseq layout: sines then cosines, positions from 1),
embedding dropout, then pre-norm layers of
    LayerNorm -> multi-head attention (queries: target; keys/values: source) -> dropout -> residual
    LayerNorm -> Linear(D, 4D) -> ReLU -> dropout -> Linear(4D, D) -> dropout -> residual
and a final LayerNorm. One LayerNorm normalises both the queries and the keys/values of a layer,
as in MulT. Without a source the encoder is a self-attention Transformer (MulT's memory).

Departure: MulT ignores padding (and MMSA switches on a causal "future" mask instead); here key
padding masks built from the sequence lengths keep padding from ever being attended to, and padded
output rows are zeroed so they never leak into a later encoder or pooling.

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
        source_padding: torch.Tensor,
    ) -> torch.Tensor:
        """`source_padding` (B, S) bool is True at padding (torch's key_padding_mask)."""
        query = self.attention_norm(target)
        keys = query if source is None else self.attention_norm(source)
        attended, _ = self.attention(
            query, keys, keys, key_padding_mask=source_padding, need_weights=False
        )
        x = target + F.dropout(attended, self.res_dropout, self.training)
        hidden = F.relu(self.fc1(self.ffn_norm(x)))
        hidden = self.fc2(F.dropout(hidden, self.relu_dropout, self.training))
        return x + F.dropout(hidden, self.res_dropout, self.training)


class CrossModalTransformer(nn.Module):
    """MulT's TransformerEncoder: the target sequence attends to a source sequence through
    `layers` CrossModalLayers (or to itself when no source is given).

    forward(target (B, T, D), target_mask (B, T), source (B, S, D) | None, source_mask (B, S))
    -> (B, T, D) with padded rows set to zero."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        layers: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"num_heads: {num_heads} does not divide the model dimension {dim}")
        self.dim = dim
        self.embed_dropout = embed_dropout
        self.layers = nn.ModuleList(
            CrossModalLayer(dim, num_heads, attn_dropout, relu_dropout, res_dropout)
            for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(dim)

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """sqrt(D) * x + positions, zero at padding, then embedding dropout: (B, T, D)."""
        positions = sinusoidal_positions(x.shape[1], self.dim, x.device).to(x.dtype)
        embedded = (math.sqrt(self.dim) * x + positions) * mask.unsqueeze(-1).to(x.dtype)
        return F.dropout(embedded, self.embed_dropout, self.training)

    def forward(
        self,
        target: torch.Tensor,
        target_mask: torch.Tensor,
        source: torch.Tensor | None = None,
        source_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        target_mask = safe_mask(target_mask)
        x = self.embed(target, target_mask)
        if source is None:
            keys, key_padding = None, ~target_mask
        else:
            if source_mask is None:
                raise ValueError("source_mask: required when a source sequence is given")
            source_mask = safe_mask(source_mask)
            keys, key_padding = self.embed(source, source_mask), ~source_mask
        for layer in self.layers:
            x = layer(x, keys, key_padding)
        return self.final_norm(x) * target_mask.unsqueeze(-1).to(x.dtype)


def last_real_step(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The output at each sequence's last real step: x (B, T, D), lengths (B,) -> (B, D);
    an empty sequence gives its first step."""
    index = (lengths.clamp(min=1, max=x.shape[1]) - 1).to(x.device)
    return x[torch.arange(x.shape[0], device=x.device), index]
