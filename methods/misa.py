"""MISA: Modality-Invariant and -Specific representations (Hazarika et al., ACM MM 2020).

Following declare-lab/MISA and MMSA's port of it. Each modality's sequence is encoded by a
two-layer bidirectional LSTM (layer norm between the layers) over its real time steps; the final
hidden states of both layers are projected (Linear, ReLU, LayerNorm) to a common size H, the
"utterance" vector u_m. One shared encoder (Linear + Sigmoid, the same weights for every modality)
gives the modality-invariant h^s_m; one private encoder per modality (Linear + Sigmoid) gives the
modality-specific h^p_m. A decoder per modality rebuilds u_m from h^s_m + h^p_m. The six vectors
(private t, v, a, shared t, v, a) pass through a one-layer Transformer encoder (2 heads; feed-
forward 2048 and dropout 0.1, PyTorch's defaults, as in MISA), are concatenated (6H), and a fusion
MLP (Linear 6H -> 3H, dropout, ReLU) predicts the score.

Loss = task (MSE, as MISA's regression trainer) + diff_weight * diff + sim_weight * cmd
+ recon_weight * recon, with
    diff  = sum of the difference loss over (shared_m, private_m) for the three modalities and
            over the three pairs of private vectors (MISA sums these six);
    cmd   = mean over the three modality pairs of CMD(h^s_i, h^s_j) with 5 moments;
    recon = mean over modalities of MSE(decoder_m(h^s_m + h^p_m), u_m).
A weight of 0 removes its term. The shared functions live in `methods/common/similarity.py`.

MMSA defaults (MOSI, regression): hidden 128, dropout 0.2, batch 16, lr 1e-4, diff 0.1, sim 0.3,
recon 1.0. MOSEI (the `mosei` kind): batch 64, dropout 0.5, diff 0.3, sim 0.8. SIMS: batch 64,
dropout 0.0, diff 0.3, sim 1.0, recon 0.8, gradient clip 1.0. MMSA's config names weight
decays (5e-5 on MOSEI and SIMS), but its MISA trainer never passes them to Adam: weight decay 0
everywhere, as trained. Training (MMSA's
trainer): one Adam over everything, gradients of 2 batches summed per step (`update_epochs`),
each entry clipped to 0.8 after every backward (`grad_clip_mode: value`).

Text: as MISA and MMSA, a pretrained Transformer over the dataset's token ids, fine-tuned, the
masked mean of its final states the text utterance vector (one Adam, BERT included, at lr 1e-4:
learning_rate_bert = learning_rate), whenever the dataset has tokens (`text_encoder: auto`).
Without tokens, or with `text_encoder: features`, the text features go through the same LSTM
encoder as audio and vision (MISA's GloVe version), or with `feature_text_encoder: mean` their
masked mean (MISA-BERT's pooling over frozen features).

Departures
  * LSTM hidden size: MISA uses each modality's feature size D_m; here min(D_m, rnn_hidden_cap), so
    768-d text features do not make an LSTM of 23M weights (no effect when D_m <= the cap).
  * Audio and vision lengths (`av_lengths`): MMSA packs the audio and vision sequences with the
    text's lengths (its token count: the aligned-data convention, kept on unaligned data), so it
    reads the first L_text steps of each, padding included; that is the default ("text"; a
    sequence shorter than a row's text length is zero-padded to it, where MMSA would fail).
    "own" reads each modality's own real steps (msabench's form before issue 20).
    Each BiLSTM is two unidirectional LSTMs on the padded tensor, the backward one on rows reversed
    within their length: the same function as MISA's packed BiLSTM (a test checks this), about 8x
    faster to train on CPU, where the backward pass of a packed LSTM is not fused.
  * Early stopping watches the harness's selection metric (validation MAE by default); MMSA's
    MISA watches its validation MSE.
  * The adversarial domain discriminator (MISA's alternative to CMD) and the unused shared/private
    discriminator of MMSA's code are not built: MISA's reported setting uses CMD.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import torch
from torch import nn

from harness.data.types import MODALITIES, Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.encoders import masked_mean, pad_steps
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.recurrent import StackedBiLSTMEncoder
from methods.common.similarity import cmd, difference_loss, reconstruction_loss
from methods.search_space import Choice, FloatRange

FEATURE_TEXT_ENCODERS = ("lstm", "mean")
AV_LENGTHS = ("text", "own")  # MISAHparams.av_lengths: MMSA's, msabench's


@dataclass(frozen=True)
class MISAHparams(OptimHparams):
    hidden_size: int = 128  # H: the common size of utterance, shared and private vectors
    dropout: float = 0.2  # in the fusion MLP
    diff_weight: float = 0.1
    sim_weight: float = 0.3  # weight of the CMD term
    recon_weight: float = 1.0
    cmd_moments: int = 5
    fusion_heads: int = 2
    fusion_ff_dim: int = 2048  # feed-forward size of the fusion Transformer (PyTorch's default)
    rnn_hidden_cap: int = 256
    # the lengths the audio and vision BiLSTMs read: "text" (MMSA's: the text's) or "own"
    av_lengths: str = "text"
    feature_text_encoder: str = "lstm"  # over text features: "lstm" or "mean" (module docstring)
    task_loss: str = "mse"
    learning_rate: float = 1e-4
    batch_size: int = 16
    # MMSA's MISA trainer: one Adam over everything (BERT included, no weight decay), gradients
    # of 2 batches summed per step, each entry clipped to 0.8 (SIMS: 1.0) after every backward
    grad_clip: float = 0.8
    grad_clip_mode: str = "value"
    grad_accumulation: int = 2
    output_head: str = "linear"  # MMSA's MISA: the fusion's last Linear layer
    learning_rate_bert: float = 1e-4  # MMSA's MISA: one Adam over everything, BERT included


class MaskedMeanEncoder(nn.Module):
    """Masked mean over real steps (MISA-BERT's text pooling).
    x (B, T, D), lengths (B,) -> (B, D)."""

    def __init__(self, in_size: int) -> None:
        super().__init__()
        self.out_size = in_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(x.shape[1], device=x.device)
        return masked_mean(x, steps.unsqueeze(0) < lengths.unsqueeze(1))


def _projection(in_size: int, out_size: int) -> nn.Sequential:
    """MISA's mapping to the common space: Linear -> ReLU -> LayerNorm, (B, in) -> (B, out)."""
    return nn.Sequential(nn.Linear(in_size, out_size), nn.ReLU(), nn.LayerNorm(out_size))


def _sigmoid_layer(size: int) -> nn.Sequential:
    """MISA's shared/private encoder: Linear -> Sigmoid, (B, H) -> (B, H)."""
    return nn.Sequential(nn.Linear(size, size), nn.Sigmoid())


@register_method("misa")
class MISA(MsaMethod):
    """MISA. Outputs: prediction (B,); utterance, shared, private, reconstructed (B, 3, H), with
    modalities in MODALITIES order (text, audio, vision); fused (B, 6H)."""

    Hparams = MISAHparams
    TEXT_POOLING = "mean"
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {
            "batch_size": 64,
            "dropout": 0.5,
            "diff_weight": 0.3,
            "sim_weight": 0.8,
        },
        "sims": {
            "batch_size": 64,
            "dropout": 0.0,
            "diff_weight": 0.3,
            "sim_weight": 1.0,
            "recon_weight": 0.8,
            "grad_clip": 1.0,
        },
    }
    SEARCH_SPACE = {
        "learning_rate": FloatRange(5e-5, 3e-3, log=True),
        "dropout": FloatRange(0.0, 0.5),
        "hidden_size": Choice((64, 128)),
        "batch_size": Choice((16, 32, 64)),
        "diff_weight": FloatRange(0.05, 0.5),
        "sim_weight": FloatRange(0.1, 1.0),
        "recon_weight": FloatRange(0.2, 1.0),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
        # above ~1e-3 training can stall at the mean prediction for epochs; clipping helps
        "grad_clip": Choice((0.0, 1.0)),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check_hparams(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: MISAHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check_hparams(hparams)
        size = hparams.hidden_size
        encoders, projections = {}, {}
        for m in MODALITIES:
            dim = spec.feature_dims[m]
            if m == "text" and self.text_mode == "pretrained":
                encoders[m] = self.build_text_encoder("mean")
            elif m == "text" and hparams.feature_text_encoder == "mean":
                encoders[m] = MaskedMeanEncoder(dim)
            else:
                encoders[m] = StackedBiLSTMEncoder(dim, min(dim, hparams.rnn_hidden_cap))
            projections[m] = _projection(encoders[m].out_size, size)
        self.sequence_encoders = nn.ModuleDict(encoders)
        self.projections = nn.ModuleDict(projections)
        self.shared_encoder = _sigmoid_layer(size)
        self.private_encoders = nn.ModuleDict({m: _sigmoid_layer(size) for m in MODALITIES})
        self.decoders = nn.ModuleDict({m: nn.Linear(size, size) for m in MODALITIES})
        self.fusion_transformer = nn.TransformerEncoderLayer(
            size, hparams.fusion_heads, hparams.fusion_ff_dim, dropout=0.1, batch_first=True
        )
        self.fusion = nn.Sequential(
            nn.Linear(6 * size, 3 * size), nn.Dropout(hparams.dropout), nn.ReLU()
        )
        self.head = RegressionHead(3 * size, spec.label_range, hparams.output_head)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        utterance = torch.stack(
            [self.projections[m](self._encode(m, batch)) for m in MODALITIES], dim=1
        )  # (B, 3, H)
        shared = self.shared_encoder(utterance)
        private = torch.stack(
            [self.private_encoders[m](utterance[:, i]) for i, m in enumerate(MODALITIES)], dim=1
        )
        combined = shared + private
        reconstructed = torch.stack(
            [self.decoders[m](combined[:, i]) for i, m in enumerate(MODALITIES)], dim=1
        )
        tokens = self.fusion_transformer(torch.cat([private, shared], dim=1))  # (B, 6, H)
        fused = tokens.flatten(start_dim=1)
        return {
            "prediction": self.head(self.fusion(fused)),
            "utterance": utterance,
            "shared": shared,
            "private": private,
            "reconstructed": reconstructed,
            "fused": fused,
        }

    def _encode(self, m: str, batch: Batch) -> torch.Tensor:
        """Modality m's utterance vector before projection: (B, encoder out_size). With
        `av_lengths` "text", audio and vision are read over the text's lengths (MMSA)."""
        if m == "text" and self.text_mode == "pretrained":
            return self.sequence_encoders[m](batch.tokens)
        x, lengths = batch.features[m], batch.lengths[m]
        if m != "text" and self.hparams.av_lengths == "text":
            pretrained = self.text_mode == "pretrained"
            lengths = batch.tokens.lengths if pretrained else batch.lengths["text"]
            lengths = lengths.to(x.device)
            x = pad_steps(x, max(x.shape[1], int(lengths.max())))
        return self.sequence_encoders[m](x, lengths)

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp = self.hparams
        terms = {"task": task_loss(hp.task_loss, outputs["prediction"], batch.labels)}
        shared, private = outputs["shared"], outputs["private"]
        pairs = list(combinations(range(len(MODALITIES)), 2))
        if hp.diff_weight > 0:
            diff = sum(difference_loss(shared[:, i], private[:, i]) for i in range(len(MODALITIES)))
            diff = diff + sum(difference_loss(private[:, i], private[:, j]) for i, j in pairs)
            terms["diff"] = hp.diff_weight * diff
        if hp.sim_weight > 0:
            similarity = sum(cmd(shared[:, i], shared[:, j], hp.cmd_moments) for i, j in pairs)
            terms["cmd"] = hp.sim_weight * similarity / len(pairs)
        if hp.recon_weight > 0:
            recon = reconstruction_loss(outputs["reconstructed"], outputs["utterance"])
            terms["recon"] = hp.recon_weight * recon
        return terms

    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        return {
            "task": 1.0,
            "diff": hp.diff_weight,
            "cmd": hp.sim_weight,
            "recon": hp.recon_weight,
        }


def _check_hparams(hp: MISAHparams, where: str = "hparams") -> None:
    """Raise ConfigError for values the model cannot be built with."""
    if hp.av_lengths not in AV_LENGTHS:
        raise ConfigError(
            f"{where}.av_lengths: expected one of {', '.join(AV_LENGTHS)}, got {hp.av_lengths!r}"
        )
    if hp.feature_text_encoder not in FEATURE_TEXT_ENCODERS:
        raise ConfigError(
            f"{where}.feature_text_encoder: expected one of {FEATURE_TEXT_ENCODERS}, "
            f"got {hp.feature_text_encoder!r}"
        )
    if hp.hidden_size < 1 or hp.fusion_heads < 1 or hp.hidden_size % hp.fusion_heads:
        raise ConfigError(
            f"{where}.hidden_size: expected a positive multiple of fusion_heads "
            f"({hp.fusion_heads}), got {hp.hidden_size}"
        )
    for name in ("diff_weight", "sim_weight", "recon_weight"):
        if getattr(hp, name) < 0:
            raise ConfigError(f"{where}.{name}: expected a weight >= 0, got {getattr(hp, name)}")
    for name in ("cmd_moments", "rnn_hidden_cap"):
        if getattr(hp, name) < 1:
            raise ConfigError(
                f"{where}.{name}: expected a positive integer, got {getattr(hp, name)}"
            )
