"""BLIP-2-style Q-Former blocks and a top-k routed mixture of them (FINE's Mixture of Q-Formers).

A Q-Former expert compresses a padded sequence (B, T, d) into l learned query tokens (B, l, d);
the mixture routes each sample to its top-k experts (renormalised gates, every expert computed)
and returns the Switch-Transformer load-balancing loss E * sum_e f_e P_e (1 when balanced).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from methods.common.encoders import masked_mean
from methods.common.transformer import safe_mask


class QFormerExpert(nn.Module):
    """One Q-Former block: l learnable queries attend to each other, then to the sequence, then
    a feed-forward layer (pre-norm residuals). x (B, T, d), padding (B, T) bool (True at padding)
    -> (B, l, d)."""

    def __init__(self, dim: int, num_queries: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.self_norm = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attention = nn.MultiheadAttention(dim, heads, dropout, batch_first=True)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        h = self.self_norm(q)
        q = q + self.self_attention(h, h, h, need_weights=False)[0]
        h = self.cross_norm(q)
        q = q + self.cross_attention(h, x, x, key_padding_mask=padding, need_weights=False)[0]
        return q + self.ffn(self.ffn_norm(q))


class MixtureOfQFormers(nn.Module):
    """Top-k routed mixture of Q-Former experts. x (B, T, d), mask (B, T) bool (True at real
    steps) -> (tokens (B, l, d) layer-normalised, load-balancing loss (scalar, 1 when balanced))."""

    def __init__(
        self, dim: int, num_queries: int, num_experts: int, top_k: int, heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.experts = nn.ModuleList(
            QFormerExpert(dim, num_queries, heads, dropout) for _ in range(num_experts)
        )
        self.router = nn.Linear(dim, num_experts)
        self.top_k = top_k
        self.norm = nn.LayerNorm(dim)

    def route(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gates (B, E): renormalised top-k probabilities, 0 elsewhere; probabilities (B, E))."""
        probabilities = F.softmax(self.router(masked_mean(x, mask)), dim=-1)
        top, index = probabilities.topk(self.top_k, dim=-1)
        gates = torch.zeros_like(probabilities).scatter(1, index, top / top.sum(-1, keepdim=True))
        return gates, probabilities

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = safe_mask(mask)
        gates, probabilities = self.route(x, mask)
        outputs = torch.stack([expert(x, ~mask) for expert in self.experts], dim=1)
        tokens = (gates[:, :, None, None] * outputs).sum(dim=1)
        assigned = (gates > 0).to(x.dtype).mean(dim=0) / self.top_k  # f_e, sums to 1
        balance = len(self.experts) * (assigned * probabilities.mean(dim=0)).sum()
        return self.norm(tokens), balance
