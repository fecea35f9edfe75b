"""CENET: Cross-modal Enhancement Network (Wang et al., IEEE Transactions on Multimedia 2023).

Paper: Di Wang, Shuai Liu, Quan Wang, Yumin Tian, Lihuo He and Xinbo Gao, "Cross-modal
Enhancement Network for Multimodal Sentiment Analysis", IEEE TMM 25 (2023), online 2022.
Reference code: MMSA master (thuiar/MMSA a94e65d) models/singleTask/CENET.py (a BERT whose
encoder holds the CE module), models/AMIO.py (builds it with `from_pretrained`) and
trains/singleTask/CENET.py (its trainer); config_regression.json key "cenet".

Model. A fine-tuned BERT reads the text tokens. Before its layer `injection_layer` (MMSA's
`injection_index = 1`: between the first and the second layer) the cross-modal enhancement
module (methods/common/cross_modal_enhancement.py) adds to every token state a nonverbal shift:
audio and vision, each Linear-ReLU-Linear to BERT's width H per step, are attended by the token
states (one head, scores scaled by `ce_score_scale` = 8 as MMSA multiplies them), and
Linear(2H, H) of the two attended vectors is added to the token state. The remaining layers
run on the shifted states; MMSA's classification head reads the final [CLS] state:
dropout -> Linear(H, H) -> tanh -> dropout -> Linear(H, 1) (dropout `head_dropout`, BERT's
hidden_dropout_prob 0.1). BERT's pooler is not used (MMSA computes it and drops it). CE and the
head start from BERT's initialisation (N(0, 0.02^2) weights, zero biases), as MMSA's
`init_weights` sets what `from_pretrained` does not load. Loss: "task" = L1 (the trainer's
nn.L1Loss; MMSA's model-internal MSE is never called), a plain Linear output (`output_head`).

Recipe (MMSA's trainer and config, MOSI): Adam (torch's coupled L2 weight decay, not AdamW),
lr 1e-5 everywhere (BERT: learning_rate_bert = learning_rate), weight decay 1e-4 on the weights
of BERT and the head, none on their biases and LayerNorm weights (`bert_no_decay_norms`), all of
the CE module's parameters (biases too) decayed, epsilon 3e-8 (`adam_epsilon`), global gradient
norm clipped to 2, batch 64, no schedule, no accumulation; early stopping on the validation loss
(msabench: the selection metric, MAE). BERT's embedding layer runs under no_grad in MMSA, so the
word, position and token-type embeddings and their LayerNorm never train
(`freeze_text_embeddings`). MOSEI: epsilon 1e-8. SIMS: lr 2e-6, weight decay 0, epsilon 2e-8,
batch 32.

Departures from MMSA's implementation:
  * Nonverbal padding (`nonverbal_padding`): MMSA's CE attends to every step of the padded
    audio/vision arrays (MMSA's data loader pads them to the dataset's fixed length and ignores
    audio_lengths/vision_lengths); msabench's default "mask" hides the padded steps from the
    attention (a row without a real step sees its first, zero step). "attend" is MMSA's form,
    with the batch's padding (msabench pads to the batch's longest row, MMSA to the dataset's).
  * Audio and vision enter as feature sequences: MMSA's CE is called with visual_ids and
    acoustic_ids (the original CENET's nonverbal vocabulary) but never reads them, so nothing is
    quantised; every step of the (unaligned) sequences is attended, none is aligned to a token.
  * MMSA's BERT embedding layer also holds sentiment, POS-tag and polarity embeddings (AMIO asks
    for them) whose ids are never passed: they add 0 and receive no gradient, so they are not
    built (3 + 5 + 6 rows of H: 10,752 parameters at H = 768).
  * Datasets without token ids (features path, `text_encoder: features`): a BERT of
    `text_layers` layers (width `text_hidden`, `text_heads` heads, feed-forward 4x, GELU,
    dropout `text_dropout`; transformers' BertModel built from scratch) stands in for the
    pretrained one. The text features are projected by a Linear to its width, a learned [CLS]
    vector is put first, BERT's embedding layer adds positions (then LayerNorm and dropout), and
    CE, the layers and the head are as above. The stand-in trains (its embeddings too: nothing
    is pretrained) at `learning_rate` with the head's weight decay rules; at MMSA's lr 1e-5 a
    network trained from scratch barely moves, so the synthetic benchmark raises it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, check_choice, register_method
from methods.common.cross_modal_enhancement import (
    INITIALIZER_RANGE,
    CrossModalEnhancement,
    bert_init_,
    encode_with_injection,
    standin_bert,
)
from methods.common.heads import bound_scores
from methods.common.losses import task_loss
from methods.common.pretrained_text import is_bias_or_norm
from methods.search_space import Choice, FloatRange

NONVERBAL_PADDING = ("mask", "attend")  # CENETHparams.nonverbal_padding: msabench's, MMSA's


@dataclass(frozen=True)
class CENETHparams(OptimHparams):
    injection_layer: int = 1  # CE runs before this BERT layer (MMSA: injection_index = 1)
    ce_score_scale: float = 8.0  # MMSA's SelfAttention: softmax(QK^T * 8)
    nonverbal_padding: str = "mask"  # NONVERBAL_PADDING; MMSA: "attend"
    head_dropout: float = 0.1  # BertClassificationHead: BERT's hidden_dropout_prob
    freeze_text_embeddings: bool = True  # MMSA runs BERT's embedding layer under no_grad
    # the stand-in BERT of the features path (no token ids); not in MMSA
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_dropout: float = 0.1
    task_loss: str = "l1"
    learning_rate: float = 1e-5
    weight_decay: float = 1e-4
    batch_size: int = 64
    grad_clip: float = 2.0  # max_grad_norm: clip_grad_norm_ over every parameter
    adam_epsilon: float = 3e-8  # every group's, the fine-tuned encoder's too
    output_head: str = "linear"  # MMSA's classifier ends in out_proj, a plain Linear
    learning_rate_bert: float = 1e-5  # MMSA: one learning rate for every group
    weight_decay_bert: float = 1e-4
    bert_no_decay_norms: bool = True  # no_decay = ["bias", "LayerNorm.weight"]


class ClassificationHead(nn.Module):
    """MMSA's BertClassificationHead on the [CLS] state: dropout -> Linear(H, H) -> tanh ->
    dropout -> Linear(H, 1); (B, H) -> (B,) raw scores. BERT-initialised."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, 1)
        bert_init_(self)

    def forward(self, cls_state: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.dense(self.dropout(cls_state)))
        return self.out_proj(self.dropout(hidden)).squeeze(-1)


@register_method("cenet")
class CENET(MsaMethod):
    """CENET. Outputs: prediction (B,), text_cls (B, H) the final [CLS] state."""

    Hparams = CENETHparams
    TEXT_POOLING = "tokens"  # BERT's token states, with CE between its layers
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {"adam_epsilon": 1e-8},
        "sims": {
            "learning_rate": 2e-6,
            "learning_rate_bert": 2e-6,
            "weight_decay": 0.0,
            "weight_decay_bert": 0.0,
            "adam_epsilon": 2e-8,
            "batch_size": 32,
        },
    }
    SEARCH_SPACE = {
        # CE and the head (and the features path's stand-in): wide enough for a model trained
        # from scratch; BERT's own rate around MMSA's 1e-5
        "learning_rate": FloatRange(3e-6, 1e-3, log=True),
        "learning_rate_bert": FloatRange(3e-6, 5e-5, log=True),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
        "head_dropout": FloatRange(0.0, 0.3),
        "batch_size": Choice((32, 64)),
        "grad_clip": FloatRange(0.5, 4.0),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        hp: CENETHparams = hparams  # type: ignore[assignment]
        check_choice(hp, "nonverbal_padding", NONVERBAL_PADDING, where)
        checks = {
            "injection_layer": hp.injection_layer >= 0,
            "head_dropout": 0.0 <= hp.head_dropout < 1.0,
            "text_dropout": 0.0 <= hp.text_dropout < 1.0,
            "text_heads": hp.text_heads > 0 and hp.text_hidden % hp.text_heads == 0,
            "text_layers": hp.text_layers >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"{where}.{key}: invalid value {getattr(hp, key)!r}")

    def __init__(self, hparams: CENETHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        self.check_hparams(hparams)
        hp, dims = hparams, spec.feature_dims
        hidden = self._build_text_network(hp, spec)
        layers = len(self._bert().encoder.layer)
        if hp.injection_layer > layers:
            raise ConfigError(
                f"hparams.injection_layer: {hp.injection_layer} is past the text encoder's "
                f"{layers} layers (0..{layers})"
            )
        self.enhancement = CrossModalEnhancement(
            hidden,
            dims["audio"],
            dims["vision"],
            hp.ce_score_scale,
            mask_padding=hp.nonverbal_padding == "mask",
        )
        self.head = ClassificationHead(hidden, hp.head_dropout)
        self.label_range = (float(spec.label_range[0]), float(spec.label_range[1]))

    def _build_text_network(self, hp: CENETHparams, spec: DataSpec) -> int:
        """The Transformer CE is injected into; returns its width H. Token path: the dataset's
        pretrained model (pooler and, as MMSA, embeddings frozen); features path: Linear(D_t, H),
        a learned [CLS] vector and the stand-in BERT."""
        if self.text_mode == "pretrained":
            self.text_encoder = self.build_text_encoder("tokens")
            bert = self.text_encoder.model
            if getattr(bert, "pooler", None) is not None:
                bert.pooler.requires_grad_(False)  # never read (MMSA: computed, dropped)
            if hp.freeze_text_embeddings:
                bert.embeddings.requires_grad_(False)
            return self.text_encoder.out_size
        hidden = hp.text_hidden
        self.max_text_steps = max(int(spec.max_lengths["text"]), 1)
        self.text_projection = bert_init_(nn.Linear(spec.feature_dims["text"], hidden))
        self.cls_embedding = nn.Parameter(torch.randn(1, 1, hidden) * INITIALIZER_RANGE)
        self.standin = standin_bert(
            hidden, hp.text_layers, hp.text_heads, hp.text_dropout, self.max_text_steps + 1
        )
        return hidden

    def _bert(self) -> nn.Module:
        """The Transformer CE is injected into: the pretrained model or the stand-in."""
        return self.text_encoder.model if self.text_mode == "pretrained" else self.standin

    def _embed_tokens(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """BERT's embedding layer over the batch's tokens: ((B, L', H), token mask (B, L'))."""
        if batch.tokens is None:
            raise ConfigError(f"method {self.name}: a pretrained text encoder needs batch tokens")
        tokens = batch.tokens
        bert = self.text_encoder.model
        frozen = self.hparams.freeze_text_embeddings or not self.hparams.text_finetune
        with torch.no_grad() if frozen else nullcontext():
            embedded = bert.embeddings(input_ids=tokens.ids, token_type_ids=tokens.segments)
        return embedded, tokens.mask

    def _embed_features(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The stand-in's embedding layer over [CLS; Linear(text features)], the features cut
        to the batch's longest real row: ((B, 1 + L, H), token mask (B, 1 + L))."""
        lengths = batch.lengths["text"]
        steps = int(lengths.max()) if lengths.numel() else 0
        if steps > self.max_text_steps:
            raise ConfigError(
                f"method {self.name}: a text row of {steps} steps is longer than the dataset's "
                f"{self.max_text_steps} the stand-in BERT has positions for"
            )
        projected = self.text_projection(batch.features["text"][:, :steps])
        size = projected.shape[0]
        inputs = torch.cat([self.cls_embedding.expand(size, 1, -1), projected], dim=1)
        positions = torch.arange(steps + 1, device=lengths.device)
        token_mask = positions.unsqueeze(0) < (lengths.unsqueeze(1) + 1)
        return self.standin.embeddings(inputs_embeds=inputs), token_mask

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.text_mode == "pretrained":
            embedded, token_mask = self._embed_tokens(batch)
        else:
            embedded, token_mask = self._embed_features(batch)
        nonverbal = {}
        for modality in ("audio", "vision"):
            nonverbal[modality] = batch.features[modality]
            nonverbal[f"{modality}_mask"] = batch.mask(modality)

        def inject(states: torch.Tensor) -> torch.Tensor:
            return self.enhancement(states, **nonverbal)

        states = encode_with_injection(
            self._bert().encoder.layer, embedded, token_mask, inject, self.hparams.injection_layer
        )
        cls_state = states[:, 0]
        score = self.head(cls_state)
        prediction = bound_scores(score, self.hparams.output_head, self.label_range)
        return {"prediction": prediction, "text_cls": cls_state}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """ "task": the task loss (L1, MMSA's nn.L1Loss) of the prediction."""
        return {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}

    def loss_weights(self) -> dict[str, float]:
        return {"task": 1.0}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """MMSA's three groups (Adam's epsilon is `adam_epsilon` for all): the weights outside CE
        (weight_decay), every CE parameter (weight_decay), the biases and LayerNorm weights outside
        CE (no decay). The fine-tuned encoder's parameters leave them for the harness's
        `text_encoder` groups (learning_rate_bert, weight_decay_bert, bert_no_decay_norms)."""
        enhancement = [p for p in self.enhancement.parameters() if p.requires_grad]
        in_enhancement = {id(p) for p in enhancement}
        rest = [
            (name, p)
            for name, p in self.named_parameters()
            if p.requires_grad and id(p) not in in_enhancement
        ]
        groups = [
            {"params": [p for n, p in rest if not is_bias_or_norm(n)]},
            {"params": enhancement},
            {"params": [p for n, p in rest if is_bias_or_norm(n)], "weight_decay": 0.0},
        ]
        return [group for group in groups if group["params"]]
