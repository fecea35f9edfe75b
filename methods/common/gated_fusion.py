"""TFR-Net's fusion (MMSA's TFR_NET `GATE_F` with its `C_GATE` encoders,
models/missingTask/TFR_NET/fusion.py).

Per modality a context gate reads the aligned sequence x (B, T, D_in): a bidirectional GRU
(`layers` layers) over the real steps gives c (B, T, 2H), zero at padding (MMSA packs the
sequence); a Conv1d(2H -> 1, kernel 3, padding 1) over time and a sigmoid give the gate g (B, T,
1); the step representation is tanh(Linear([x; tanh(c) * g])) (B, T, H), max-pooled over time
and dropped out: (B, H). The three are concatenated and classified: BatchNorm1d -> Linear ->
LeakyReLU -> Dropout -> the output head.

`pooling`: "all_steps" is MMSA's max over every step of the padded sequence (padding included:
there c is 0, so a padded step reads tanh(Linear([x_t; 0]))); "real_steps" takes the max over
real steps only. An empty sequence (length 0) reads as one step (MMSA cannot pack it).
B = batch, T = padded steps, H = hidden size.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.common.heads import RegressionHead
from methods.common.recurrent import native_cpu_rnn, reverse_real_steps

FUSION_POOLINGS = ("all_steps", "real_steps")


def real_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps) bool, True at steps t < lengths (lengths (B,))."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class RealStepsBiGRU(nn.Module):
    """A stacked bidirectional GRU over the real steps of padded sequences: `nn.GRU(in_size,
    hidden_size, layers, bidirectional=True)` on a PackedSequence (same parameters per layer and
    direction), without packing: each direction is a one-layer GRU, the backward one over the
    rows reversed within their length. x (B, T, D), lengths (B,) in [1, T] -> (B, T, 2H), zero
    at padding."""

    def __init__(self, in_size: int, hidden_size: int, layers: int) -> None:
        super().__init__()
        sizes = [in_size] + [2 * hidden_size] * (layers - 1)
        self.forward_layers = nn.ModuleList(nn.GRU(s, hidden_size, batch_first=True) for s in sizes)
        self.backward_layers = nn.ModuleList(
            nn.GRU(s, hidden_size, batch_first=True) for s in sizes
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = real_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
        for forward_gru, backward_gru in zip(
            self.forward_layers, self.backward_layers, strict=True
        ):
            with native_cpu_rnn(x):
                ahead, _ = forward_gru(x)
                behind, _ = backward_gru(reverse_real_steps(x, lengths))
            x = torch.cat([ahead, reverse_real_steps(behind, lengths)], dim=-1) * real
        return x


class ContextGate(nn.Module):
    """MMSA's C_GATE: x (B, T, D_in), lengths (B,) -> (B, H) (module docstring)."""

    def __init__(self, in_size: int, hidden: int, layers: int, dropout: float, pooling: str):
        super().__init__()
        if pooling not in FUSION_POOLINGS:
            raise ValueError(f"fusion pooling: expected one of {FUSION_POOLINGS}, got {pooling!r}")
        self.gru = RealStepsBiGRU(in_size, hidden, layers)
        self.gate = nn.Conv1d(2 * hidden, 1, kernel_size=3, stride=1, padding=1)
        self.project = nn.Linear(2 * hidden + in_size, hidden)
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(x.device).clamp(1, x.shape[1])
        context = self.gru(x, lengths)  # (B, T, 2H)
        gate = torch.sigmoid(self.gate(context.transpose(1, 2)).transpose(1, 2))  # (B, T, 1)
        steps = torch.tanh(self.project(torch.cat([x, torch.tanh(context) * gate], dim=-1)))
        if self.pooling == "real_steps":
            padding = ~real_mask(lengths, x.shape[1]).unsqueeze(-1)
            steps = steps.masked_fill(padding, float("-inf"))
        return self.dropout(steps.max(dim=1).values)


class GatedFusion(nn.Module):
    """MMSA's GATE_F over the aligned sequences. forward(sequences {m: (B, T_m, D_in)},
    lengths {m: (B,)}) -> (fused (B, sum H_m), prediction (B,))."""

    def __init__(
        self,
        in_size: int,
        hidden: dict[str, int],
        layers: int,
        dropout: float,
        classifier_hidden: int,
        classifier_dropout: float,
        label_range: tuple[float, float],
        output_head: str,
        pooling: str = "all_steps",
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(
            {m: ContextGate(in_size, h, layers, dropout, pooling) for m, h in hidden.items()}
        )
        total = sum(hidden.values())
        self.classifier = nn.Sequential(
            nn.BatchNorm1d(total),
            nn.Linear(total, classifier_hidden),
            nn.LeakyReLU(),
            nn.Dropout(classifier_dropout),
        )
        self.head = RegressionHead(classifier_hidden, label_range, output_head)

    def forward(
        self, sequences: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        fused = torch.cat([enc(sequences[m], lengths[m]) for m, enc in self.encoders.items()], -1)
        return fused, self.head(self.classifier(fused))
