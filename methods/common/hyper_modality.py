"""The Transformer blocks of ALMT (Zhang et al., EMNLP 2023), as MMSA's models/singleTask/ALMT.py
builds them: pre-norm layers with a LayerNorm each for queries, keys and values, bias-free
query/key/value projections to `heads` x `head_dim` channels (MMSA's `dim_head` 64 by default, so
the attention is wider than the model), GELU feed-forward, learned (randn) positions and learned
(zero) extra tokens; the Adaptive Hyper-modality Learning (AHL) layers; the [CLS] cross-modal
fusion Transformer.

Additions to MMSA's blocks: key padding masks (`key_mask`, True at real steps; MMSA attends over
padding), so a padded sequence gives the same tokens as the unpadded one.

B = batch, T = target (query) steps, S = source (key) steps, N = learned tokens, D = model width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def attend(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention per head, softmax(q k^T / sqrt(d)) v, through torch's fused
    `scaled_dot_product_attention`: queries (B, h, T, d), keys and values (B, h, S, d), key_mask
    (B, S) bool (True = attend) or None -> (B, h, T, d). Every row must keep one real key. MMSA
    writes the softmax out (materialising (B, h, T, S)); the fused kernel equals it to float
    tolerance (tests/test_attention.py)."""
    mask = None if key_mask is None else key_mask[:, None, None, :]
    return F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, h * d) -> (B, h, L, d)."""
    batch, steps, _ = x.shape
    return x.view(batch, steps, heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, L, d) -> (B, L, h * d)."""
    batch, heads, steps, width = x.shape
    return x.transpose(1, 2).reshape(batch, steps, heads * width)


def output_projection(inner: int, dim: int, heads: int, head_dim: int, dropout: float) -> nn.Module:
    """Linear(inner, D) + dropout, or the identity for one head of width D (MMSA's
    `project_out = not (heads == 1 and dim_head == dim)`)."""
    if heads == 1 and head_dim == dim:
        return nn.Identity()
    return nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))


class Attention(nn.Module):
    """MMSA's ALMT `Attention`: queries (B, T, D), keys (B, S, D), values (B, S, D), key_mask
    (B, S) or None -> (B, T, D)."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = output_projection(inner, dim, heads, head_dim, dropout)

    def forward(self, queries, keys, values, key_mask=None) -> torch.Tensor:
        q, k, v = (
            split_heads(f(x), self.heads)
            for f, x in ((self.to_q, queries), (self.to_k, keys), (self.to_v, values))
        )
        return self.to_out(merge_heads(attend(q, k, v, key_mask)))


class FeedForward(nn.Sequential):
    """Linear(D, hidden) -> GELU -> dropout -> Linear(hidden, D) -> dropout: (B, L, D) -> same."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


class PreNormLayer(nn.Module):
    """One layer: target + Attention(LN_q(target), LN_k(source), LN_v(source)), then
    x + FeedForward(LN(x)). target (B, T, D), source (B, S, D), key_mask (B, S) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int, head_dim: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_k, self.norm_v = (nn.LayerNorm(dim) for _ in range(3))
        self.attention = Attention(dim, heads, head_dim, dropout)
        self.norm_ff = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, ff_dim, dropout)

    def forward(self, target, source, key_mask=None) -> torch.Tensor:
        keys, values = self.norm_k(source), self.norm_v(source)
        x = target + self.attention(self.norm_q(target), keys, values, key_mask)
        return x + self.feed_forward(self.norm_ff(x))


class PreNormEncoder(nn.Module):
    """`depth` PreNormLayers (MMSA's TransformerEncoder and CrossTransformerEncoder)."""

    def __init__(
        self, dim: int, depth: int, heads: int, head_dim: int, ff_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            PreNormLayer(dim, heads, head_dim, ff_dim, dropout) for _ in range(depth)
        )

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, source: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Self-attention over x (B, L, D) (keys masked by mask (B, L)), or, given a source
        (B, S, D), cross-attention from x to the fixed source (mask (B, S)). Returns the input
        and every layer's output: depth + 1 tensors (B, L, D)."""
        states = [x]
        for layer in self.layers:
            x = layer(x, x if source is None else source, mask)
            states.append(x)
        return states


@dataclass(frozen=True)
class EncoderSize:
    """The size of a PreNormEncoder: layers, heads of head_dim channels, feed-forward width,
    dropout (attention output and feed-forward)."""

    depth: int
    heads: int
    head_dim: int
    ff_dim: int
    dropout: float = 0.0

    def build(self, dim: int) -> PreNormEncoder:
        return PreNormEncoder(dim, self.depth, self.heads, self.head_dim, self.ff_dim, self.dropout)


# The blocks below create their parameters in MMSA's order (projection, positions, tokens, then
# the encoder), so that under one torch seed a model starts from MMSA's initial weights.


class TokenEmbedding(nn.Module):
    """MMSA's per-modality embedding (`embedding_l/a/v`: Linear, then its `Transformer` with
    `token_len`): N learned tokens (zeros) before the projected steps, learned positions (randn,
    N + max_steps rows, the first N for the tokens), a self-attention encoder; the N token
    states are the modality's embedding. x (B, T, D_in) with T <= max_steps, mask (B, T) bool
    or None (padding attended, as MMSA) -> (B, N, D)."""

    def __init__(
        self, in_size: int, dim: int, num_tokens: int, max_steps: int, size: EncoderSize
    ) -> None:
        super().__init__()
        self.projection = nn.Linear(in_size, dim)
        self.positions = nn.Parameter(torch.randn(1, num_tokens + max_steps, dim))
        self.tokens = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.encoder = size.build(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, count = x.shape[0], self.tokens.shape[1]
        steps = torch.cat([self.tokens.expand(batch, -1, -1), self.projection(x)], dim=1)
        steps = steps + self.positions[:, : steps.shape[1]]
        if mask is not None:
            real = torch.ones(batch, count, dtype=torch.bool, device=mask.device)
            mask = torch.cat([real, mask], dim=1)
        return self.encoder(steps, mask)[-1][:, :count]


class LanguageEncoder(nn.Module):
    """MMSA's `l_encoder`: learned positions (randn, N rows) added to the language tokens, then
    size.depth (MMSA: ahl_depth - 1) self-attention layers; every state is kept (`save_hidden`),
    one per AHL layer. (B, N, D) -> depth + 1 tensors (B, N, D), the first the tokens plus
    positions."""

    def __init__(self, dim: int, num_tokens: int, size: EncoderSize) -> None:
        super().__init__()
        self.positions = nn.Parameter(torch.randn(1, num_tokens, dim))
        self.encoder = size.build(dim)

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(tokens + self.positions[:, : tokens.shape[1]])


class HyperModalityLayer(nn.Module):
    """One AHL layer (MMSA's PreNormAHL + HhyperLearningLayer). With every input normalised by
    its own LayerNorm, the language queries attend separately to audio and to vision:
        h_hyper' = LN(h_hyper) + W_o (softmax(q k_a^T / sqrt(d)) v_a
                                      + softmax(q k_v^T / sqrt(d)) v_v)
    q = W_q LN(h_t), k_a = W_ka LN(h_a), v_a = W_va LN(h_a), likewise vision; the residual is
    added to the normalised h_hyper, as MMSA's in-place `h_hyper += shift` after its norm.
    h_t, h_a, h_v, h_hyper (B, N, D) (the queries' count sets the output's) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.norm_t, self.norm_a, self.norm_v, self.norm_hyper = (
            nn.LayerNorm(dim) for _ in range(4)
        )
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k_ta = nn.Linear(dim, inner, bias=False)
        self.to_k_tv = nn.Linear(dim, inner, bias=False)
        self.to_v_ta = nn.Linear(dim, inner, bias=False)
        self.to_v_tv = nn.Linear(dim, inner, bias=False)
        self.to_out = output_projection(inner, dim, heads, head_dim, dropout)

    def forward(self, h_t, h_a, h_v, h_hyper) -> torch.Tensor:
        h_a, h_v = self.norm_a(h_a), self.norm_v(h_v)
        heads = self.heads
        q = split_heads(self.to_q(self.norm_t(h_t)), heads)
        k_a, v_a = split_heads(self.to_k_ta(h_a), heads), split_heads(self.to_v_ta(h_a), heads)
        k_v, v_v = split_heads(self.to_k_tv(h_v), heads), split_heads(self.to_v_tv(h_v), heads)
        from_audio, from_vision = attend(q, k_a, v_a), attend(q, k_v, v_v)
        return self.norm_hyper(h_hyper) + self.to_out(merge_heads(from_audio + from_vision))


class HyperModalityLearning(nn.Module):
    """MMSA's HhyperLearningEncoder: `depth` AHL layers, layer i queried by the i-th language
    state. language: depth tensors (B, N, D); audio, vision, hyper (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, depth: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        head_dim = dim // heads  # MMSA: int(dim / heads)
        self.layers = nn.ModuleList(
            HyperModalityLayer(dim, heads, head_dim, dropout) for _ in range(depth)
        )

    def forward(self, language, audio, vision, hyper) -> torch.Tensor:
        for layer, h_t in zip(self.layers, language, strict=True):
            hyper = layer(h_t, audio, vision, hyper)
        return hyper


class ClsCrossTransformer(nn.Module):
    """MMSA's fusion `CrossTransformer`: one learned [CLS] token (zeros) before both the source
    and the target, learned positions (randn) for each, then cross-attention layers from the
    target to the fixed source. source (B, S, D), target (B, T, D) -> (B, T + 1, D); row 0 is
    the fused [CLS] state."""

    def __init__(self, dim: int, source_steps: int, target_steps: int, size: EncoderSize) -> None:
        super().__init__()
        self.source_positions = nn.Parameter(torch.randn(1, source_steps + 1, dim))
        self.target_positions = nn.Parameter(torch.randn(1, target_steps + 1, dim))
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = size.build(dim)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cls = self.cls.expand(source.shape[0], -1, -1)
        source = torch.cat([cls, source], dim=1)
        source = source + self.source_positions[:, : source.shape[1]]
        target = torch.cat([cls, target], dim=1)
        target = target + self.target_positions[:, : target.shape[1]]
        return self.encoder(target, source=source)[-1]
