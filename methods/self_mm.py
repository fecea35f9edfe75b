"""Self-MM: self-supervised multi-task learning (Yu et al., AAAI 2021), following MMSA's SELF_MM.

Paper: "Learning Modality-Specific Representations with Self-Supervised Multi-Task Learning for
Multimodal Sentiment Analysis"; reference code thuiar/Self-MM, re-implemented in MMSA
(models/multiTask/SELF_MM.py, trains/multiTask/SELF_MM.py). Each modality is encoded by an LSTM
over its real time steps (hidden state at the last real step, dropout, linear). The concatenation
[t; a; v] feeds the fused head (M) and each unimodal vector its own head (T, A, V); every head is
dropout -> Linear+ReLU (its "representation" F_s) -> Linear+ReLU -> Linear(1).

ULGM (unimodal label generation module). For every training sample i the module keeps the
self-generated labels y_t, y_a, y_v (initialised to the multimodal label y_m at the sample's first
visit) and the latest representations F_s(i) of the fused and unimodal heads. Class centres C_s^p,
C_s^n are the means of the stored F_s over all visited samples whose label (y_m for the fused
head, y_s for modality s) is > 0, resp. < 0 (MMSA's excludeZero), recomputed at every training
batch from that memory as in the paper and MMSA (not a momentum average of batch means). For the
current batch, with
d^p = ||F_s - C_s^p||, d^n = ||F_s - C_s^n||:

    alpha_s = (d_s^n - d_s^p) / (d_s^p + eps)           (the same for the fused head: alpha_m)
    y_s'    = clamp(y_m alpha_s / (2 alpha_m) + (y_m + alpha_s - alpha_m) / 2, label range)
    y_s    <- (n - 1) / (n + 1) y_s + 2 / (n + 1) y_s'    (the paper's momentum, n = epoch)

Loss (named terms): "task" = |y_hat_m - y_m| (mean over the batch); for s in text/audio/vision,
"s" = unimodal_weight * mean_i tanh(|y_s(i) - y_m(i)|) |y_hat_s(i) - y_s(i)|.

Reference settings (MMSA config_regression.json, MOSI): batch 16, lr 5e-3 for the audio and video
encoders and 1e-3 for the rest (BERT 5e-5), weight decay 1e-3 everywhere, LSTM hidden a/v 16/32,
audio_out 16, video_out 32, post dims fusion/text/audio/video 128/32/16/32, post dropouts
0.0/0.1/0.1/0.0; SIMS: batch 32, v_lstm_hidden 64, post_text_dim 64, a/v weight decay 0.01.

Text: as MMSA, a pretrained Transformer over the dataset's token ids, fine-tuned, its [CLS] state
the text vector (text_out = its hidden size; BERT group lr 5e-5, weight decay 1e-3), whenever the
dataset has tokens (`text_encoder: auto`). Without tokens, or with `text_encoder: features`, an
LSTM over the text features (hidden 64, out 64) takes its place.

Departures:
  * "Over epochs" is a per-sample visit counter: n = the number of training batches that have held
    sample i, which equals MMSA's epoch count when each epoch visits each sample once. Labels are
    updated from visit label_warmup_visits + 1 on (MMSA: from epoch 2). The memory grows lazily to
    the largest batch.index seen; it is not part of the state dict (early stopping restores the
    weights, not the labels) and is touched only in training mode, never by eval batches.
  * In eval mode loss_terms returns "task" only: self-generated labels exist for training rows only.
  * A zero denominator alpha_m + eps is replaced by eps (MMSA can divide by zero there); the
    label range is the dataset's (MMSA's H: 3 for MOSI, 1 for SIMS).
  * The LSTMs run over the padded batch and the output at the last real step is taken (the same
    value as MMSA's packed final state; several times faster on CPU).

As MMSA's trainer (the defaults): gradients of update_epochs = 4 batches summed per step, no
clipping, no schedule; BERT's biases and LayerNorm weights without weight decay (their own
group, `bert_no_decay_norms`); the fused prediction a plain Linear output (`output_head`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.data.spec import REGRESSION_KINDS
from harness.data.types import Batch, DataSpec
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.heads import bound_scores
from methods.common.label_generation import (
    HEADS,
    UNIMODAL,
    PredictionHead,
    UnimodalLabelMemory,
    audio_vision_groups,
    unimodal_label_terms,
)
from methods.common.losses import task_loss
from methods.common.recurrent import LastStateEncoder
from methods.search_space import Choice, FloatRange


@dataclass(frozen=True)
class SelfMMHparams(OptimHparams):
    text_hidden: int = 64
    text_out: int = 64
    audio_lstm_hidden: int = 16
    vision_lstm_hidden: int = 32
    audio_out: int = 16
    vision_out: int = 32
    text_encoder_dropout: float = 0.1
    av_encoder_dropout: float = 0.0
    post_fusion_dim: int = 128
    post_text_dim: int = 32
    post_audio_dim: int = 16
    post_vision_dim: int = 32
    post_fusion_dropout: float = 0.0
    post_text_dropout: float = 0.1
    post_audio_dropout: float = 0.1
    post_vision_dropout: float = 0.0
    unimodal_weight: float = 1.0
    label_warmup_visits: int = 1
    exclude_zero: bool = True
    task_loss: str = "l1"
    learning_rate: float = 1e-3  # learning_rate_other: the text LSTM and the four heads
    weight_decay: float = 1e-3  # weight_decay_other
    # the audio and the vision encoder, each its own optimiser group (MMSA: learning_rate_audio,
    # learning_rate_video, weight_decay_audio, weight_decay_video)
    audio_learning_rate: float = 5e-3
    video_learning_rate: float = 5e-3
    audio_weight_decay: float = 1e-3
    video_weight_decay: float = 1e-3
    batch_size: int = 16
    # MMSA's SELF_MM trainer: gradients of 4 batches summed per step, no clipping, no schedule;
    # BERT's biases and LayerNorm weights without weight decay (its own optimiser group)
    grad_accumulation: int = 4
    bert_no_decay_norms: bool = True
    output_head: str = "linear"  # MMSA's SELF_MM: post_fusion_layer_3, a plain Linear layer
    learning_rate_bert: float = 5e-5
    weight_decay_bert: float = 1e-3


@register_method("self_mm")
class SelfMM(MsaMethod):
    """Self-MM. Outputs: prediction (B,) (fused head, in the label range), prediction_<s> (B,)
    for s in text/audio/vision, representation_<head> (B, post_<head>_dim) for the four heads."""

    Hparams = SelfMMHparams
    TEXT_POOLING = "cls"
    KINDS = REGRESSION_KINDS
    UNSUPPORTED_KINDS_REASON = (
        "its unimodal label generation (ULGM) moves each modality's label by the feature's "
        "distance to the positive and negative centres, a shift of a continuous score that a "
        "0/1 class does not have"
    )
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {
            "batch_size": 32,
            "video_learning_rate": 1e-4,
            "audio_weight_decay": 0.0,
            "video_weight_decay": 0.0,
            "weight_decay": 0.01,
            "post_fusion_dropout": 0.1,
            "post_text_dropout": 0.0,
            "post_audio_dropout": 0.0,
        },
        "sims": {
            "batch_size": 32,
            "vision_lstm_hidden": 64,
            "post_text_dim": 64,
            "audio_weight_decay": 1e-2,
            "video_weight_decay": 1e-2,
        },
    }
    SEARCH_SPACE = {
        "learning_rate": FloatRange(3e-4, 3e-3, log=True),
        "audio_learning_rate": FloatRange(1e-3, 1e-2, log=True),
        "video_learning_rate": FloatRange(1e-4, 1e-2, log=True),
        "weight_decay": FloatRange(1e-5, 1e-2, log=True),
        "unimodal_weight": FloatRange(0.1, 2.0),
        "post_fusion_dropout": FloatRange(0.0, 0.5),
        "post_fusion_dim": Choice((64, 128)),
    }

    def __init__(self, hparams: SelfMMHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        hp, dims = hparams, spec.feature_dims
        if self.text_mode == "pretrained":
            self.text_encoder = self.build_text_encoder("cls")
            text_out = self.text_encoder.out_size
        else:
            self.text_encoder = LastStateEncoder(
                dims["text"], hp.text_hidden, hp.text_out, hp.text_encoder_dropout
            )
            text_out = hp.text_out
        self.audio_encoder = LastStateEncoder(
            dims["audio"], hp.audio_lstm_hidden, hp.audio_out, hp.av_encoder_dropout
        )
        self.vision_encoder = LastStateEncoder(
            dims["vision"], hp.vision_lstm_hidden, hp.vision_out, hp.av_encoder_dropout
        )
        fused_in = text_out + hp.audio_out + hp.vision_out
        self.heads = nn.ModuleDict(
            {
                "fusion": PredictionHead(fused_in, hp.post_fusion_dim, hp.post_fusion_dropout),
                "text": PredictionHead(text_out, hp.post_text_dim, hp.post_text_dropout),
                "audio": PredictionHead(hp.audio_out, hp.post_audio_dim, hp.post_audio_dropout),
                "vision": PredictionHead(hp.vision_out, hp.post_vision_dim, hp.post_vision_dropout),
            }
        )
        head_dims = {
            "fusion": hp.post_fusion_dim,
            "text": hp.post_text_dim,
            "audio": hp.post_audio_dim,
            "vision": hp.post_vision_dim,
        }
        self.label_range = tuple(float(v) for v in spec.label_range)
        self.label_memory = UnimodalLabelMemory(
            head_dims, spec.label_range, hp.label_warmup_visits, hp.exclude_zero
        )

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.text_mode == "pretrained":
            text = self.text_encoder(batch.tokens)
        else:
            text = self.text_encoder(batch.features["text"], batch.lengths["text"])
        encoded = {
            "text": text,
            "audio": self.audio_encoder(batch.features["audio"], batch.lengths["audio"]),
            "vision": self.vision_encoder(batch.features["vision"], batch.lengths["vision"]),
        }
        encoded["fusion"] = torch.cat([encoded[m] for m in UNIMODAL], dim=-1)
        outputs: dict[str, torch.Tensor] = {}
        for head in HEADS:
            representation, score = self.heads[head](encoded[head])
            outputs[f"representation_{head}"] = representation
            outputs[f"prediction_{head}"] = score
        fused = outputs.pop("prediction_fusion")
        outputs["prediction"] = bound_scores(fused, self.hparams.output_head, self.label_range)
        return outputs

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Always "task"; in training mode with unimodal_weight > 0 also "text", "audio" and
        "vision", computed from the label memory at batch.index, which is then updated."""
        terms = {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}
        weight = self.hparams.unimodal_weight
        if not self.training or weight == 0:
            return terms
        memory_terms = unimodal_label_terms(
            self.label_memory, batch.index, batch.labels, outputs, weight
        )
        return {**terms, **memory_terms}

    def loss_weights(self) -> dict[str, float]:
        return {"task": 1.0, **dict.fromkeys(UNIMODAL, self.hparams.unimodal_weight)}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The audio encoder at audio_learning_rate / audio_weight_decay, the vision encoder at
        video_learning_rate / video_weight_decay, the text encoder and the four heads at the
        default learning rate and weight decay (MMSA's grouping)."""
        return audio_vision_groups(self, self.audio_encoder, self.vision_encoder, self.hparams)
