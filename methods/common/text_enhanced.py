"""TETFN's building blocks (Wang et al., Pattern Recognition 2023; MMSA's models/multiTask/
TETFN.py): the text-enhanced cross-modal Transformer, the audio/vision sub-network (an LSTM
followed by a temporal convolution) and a max over real steps.

B = batch, T = target steps, S = source steps, L = text steps, D = model dimension, H = LSTM
hidden size; masks are (B, steps) bool, True at real steps.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.common.recurrent import native_cpu_rnn
from methods.common.transformer import CrossModalTransformer


class TextEnhancedTransformer(nn.Module):
    """TETFN's text-enhanced Transformer (MMSA's `TextEnhancedTransformer`): the source sequence
    first attends to the text (`enhancer`, MMSA's `lower_mha`, 1 layer), then the target attends
    to that text-enhanced source (`crossmodal`, MMSA's `upper_mha`, 2 layers); both add
    sinusoidal positions, as MMSA builds them (`position_embedding=True`).

    forward(target (B, T, D), target_mask (B, T), source (B, S, D), source_mask (B, S),
    text (B, L, D), text_mask (B, L)) -> (B, T, D). `options` are CrossModalTransformer's
    (the other dropouts, masking, separate_kv_dropout)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        enhancer_layers: int,
        layers: int,
        attn_dropout: float,
        **options,
    ) -> None:
        super().__init__()
        self.enhancer = CrossModalTransformer(
            dim, num_heads, enhancer_layers, attn_dropout, positions=True, **options
        )
        self.crossmodal = CrossModalTransformer(
            dim, num_heads, layers, attn_dropout, positions=True, **options
        )

    def forward(
        self,
        target: torch.Tensor,
        target_mask: torch.Tensor,
        source: torch.Tensor,
        source_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> torch.Tensor:
        enhanced = self.enhancer(source, source_mask, text, text_mask)  # (B, S, D)
        return self.crossmodal(target, target_mask, enhanced, source_mask)


class RecurrentProjection(nn.Module):
    """MMSA's TETFN `AuViSubNet`: a one-layer LSTM over the padded sequence (every step, as
    MMSA runs it; an LSTM is causal, so its outputs at real steps do not depend on the padding
    after them), then Conv1d(H, D, kernel, no padding, no bias) over time.
    x (B, T, in_size) -> (LSTM outputs (B, T, H), projection (B, T - kernel + 1, D)); the
    projection of `outputs` given back by `project` (callers may zero the padding first)."""

    def __init__(self, in_size: int, hidden_size: int, dim: int, kernel: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(in_size, hidden_size, batch_first=True)
        self.conv = nn.Conv1d(hidden_size, dim, kernel, bias=False)

    def recur(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, in_size) -> (B, T, H)."""
        with native_cpu_rnn(x):
            outputs, _ = self.rnn(x)
        return outputs

    def project(self, outputs: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T - kernel + 1, D)."""
        return self.conv(outputs.transpose(1, 2)).transpose(1, 2)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over real steps: x (B, T, D), mask (B, T) bool -> (B, D); a row without a real step
    gives zeros."""
    filled = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), filled, torch.zeros_like(filled))
