"""The shared recurrent encoders equal nn.LSTM on packed sequences (outputs and final states),
for one and two directions, lengths from 1 to T, and read a missing modality without NaN."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from methods.common.recurrent import (
    LastStateEncoder,
    RealStepsLSTM,
    StackedBiLSTMEncoder,
    reverse_real_steps,
)

LENGTHS = torch.tensor([9, 1, 3, 7, 9, 2])


def _padded_inputs(seed: int = 0, dim: int = 5) -> torch.Tensor:
    torch.manual_seed(seed)
    real = (torch.arange(9) < LENGTHS.unsqueeze(1)).unsqueeze(-1)
    return torch.randn(6, 9, dim) * real


def _packed_twin(ours: RealStepsLSTM) -> torch.nn.LSTM:
    """An nn.LSTM with the same weights as `ours` (the backward direction as `_reverse`)."""
    twin = torch.nn.LSTM(
        ours.forward_rnn.input_size,
        ours.hidden_size,
        batch_first=True,
        bidirectional=ours.bidirectional,
    )
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(twin, name).copy_(getattr(ours.forward_rnn, name))
            if ours.bidirectional:
                getattr(twin, f"{name}_reverse").copy_(getattr(ours.backward_rnn, name))
    return twin


@pytest.mark.parametrize("bidirectional", [False, True])
def test_real_steps_lstm_matches_a_packed_lstm(bidirectional) -> None:
    x = _padded_inputs()
    ours = RealStepsLSTM(5, 4, bidirectional)
    twin = _packed_twin(ours)
    with torch.no_grad():
        outputs, final = ours(x, LENGTHS)
        sequence = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
        expected, (hidden, _) = twin(sequence)
        expected, _ = pad_packed_sequence(expected, batch_first=True, total_length=9)
    assert outputs.shape == (6, 9, 4 * (2 if bidirectional else 1))
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(final, torch.cat(list(hidden), dim=-1))


def test_padding_values_never_reach_the_outputs() -> None:
    x = _padded_inputs()
    garbage = x + 50.0 * (torch.arange(9) >= LENGTHS.unsqueeze(1)).unsqueeze(-1)
    encoder = StackedBiLSTMEncoder(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(encoder(garbage, LENGTHS), encoder(x, LENGTHS))


def test_reverse_real_steps_is_an_involution_that_keeps_padding_in_place() -> None:
    x = torch.arange(12.0).view(2, 6, 1)
    lengths = torch.tensor([4, 1])
    reversed_ = reverse_real_steps(x, lengths)
    assert reversed_[0, :, 0].tolist() == [3, 2, 1, 0, 4, 5]
    assert reversed_[1, :, 0].tolist() == [6, 7, 8, 9, 10, 11]
    torch.testing.assert_close(reverse_real_steps(reversed_, lengths), x)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_state_encoder_shapes_and_empty_modalities(bidirectional) -> None:
    encoder = LastStateEncoder(5, 4, 7, dropout=0.0, bidirectional=bidirectional)
    assert encoder(_padded_inputs(), LENGTHS).shape == (6, 7)
    empty = encoder(torch.zeros(6, 0, 5), torch.zeros(6, dtype=torch.long))
    assert empty.shape == (6, 7) and torch.isfinite(empty).all()
    stacked = StackedBiLSTMEncoder(5, 3)(torch.zeros(2, 0, 5), torch.zeros(2, dtype=torch.long))
    assert stacked.shape == (2, 12) and torch.isfinite(stacked).all()
