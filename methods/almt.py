"""ALMT: Adaptive Language-guided Multimodal Transformer (Zhang, Wang, Yin, Liu, Liu & Yu, EMNLP
2023), following MMSA's port of the authors' code (Haoyu-ha/ALMT).

Paper: "Learning Language-guided Adaptive Hyper-modality Representation for Multimodal Sentiment
Analysis". Reference code: MMSA master (thuiar/MMSA a94e65d) models/singleTask/ALMT.py and
trains/singleTask/ALMT.py, config key "almt" of config/config_regression.json. The blocks live in
`methods/common/hyper_modality.py`.

Model. Each modality m is projected (Linear to D = embedding_dim) and N = embedding_length
learned tokens (zeros) go before its steps; with learned positions (randn) a pre-norm
Transformer (embedding_depth_m layers, embedding_heads_m heads of attention_head_dim channels,
feed-forward embedding_hidden_dim, GELU) mixes them, and the N token states are the modality's
embedding h_m (B, N, D). The language encoder adds learned positions to h_t and runs
ahl_depth - 1 layers (text_encoder_heads, feed-forward D), keeping all ahl_depth states. AHL
(Adaptive Hyper-modality Learning): a learned h_hyper (ones, (1, N, D)) passes ahl_depth layers;
layer i normalises the i-th language state, h_a, h_v and h_hyper (a LayerNorm each), lets the
language queries attend to audio and, separately, to vision (ahl_heads heads of D / ahl_heads
channels, bias-free projections), and adds the output projection of the sum to LN(h_hyper).
Fusion: a learned [CLS] token (zeros) before h_hyper (source) and before the last language state
(target), learned positions for each, fusion_depth cross-attention layers from the target to the
source (fusion_heads, feed-forward fusion_hidden_dim); the [CLS] state (B, D) goes through
Linear(D, 1) (`output_head` linear). Every dropout is 0 in MMSA (`dropout`).

Loss: "task" = MSE (MMSA's ALMT trainer: nn.MSELoss). No auxiliary terms.

Recipe (MMSA's ALMT trainer): AdamW (decoupled weight decay, `optimizer: adamw`) over every
parameter, BERT included; MMSA's warm-up and cosine schedule (`lr_scheduler: warmup_cosine`,
harness/training/optimisers.py, tested against MMSA's scheduler): the rate rises linearly from 0
over 0.1 n epochs (the first epoch trains at rate 0), then follows a cosine over 0.9 n, with n =
MMSA's max_epochs 200 (`scheduler_epochs`; 0 spans the run's own max_epochs instead, as the
default budget in params.yaml sets it); stepped once per epoch.

Reference settings (config_regression.json, mosi): D 128, embedding feed-forward 128, N 8,
embedding depth 1/1/1 and heads 8/8/8, language encoder heads 8, AHL depth 3 with 8 heads,
fusion feed-forward 128, 8 heads, depth 2 (mosei and sims: 4); batch 64, lr 1e-4, weight decay
1e-4, BERT fine-tuned in the same optimiser group (learning_rate_bert = 1e-4, weight_decay_bert
= 1e-4); attention heads of 64 channels (code: the `dim_head` default of MMSA's Transformer and
CrossTransformer; AHL uses D / heads).

Checked against MMSA's code (issue 22): with MMSA's weights copied in, the predictions equal
MMSA's ALMT at its mosi, mosei and sims configs (max difference 0; a test pins this at reduced
sizes), and the parameters are created in MMSA's order, so under one torch seed the non-BERT
weights start as MMSA's do (2,603,649 non-BERT parameters at the mosi config with 768-wide text
and lengths 50/375/500, as MMSA's).

Text: as MMSA, a pretrained Transformer over the dataset's token ids, fine-tuned, every token's
final state (B, L', H) the text sequence (`TEXT_POOLING` "tokens", zeros at padding), whenever
the dataset has tokens (`text_encoder: auto`). Without tokens, or with `text_encoder: features`,
the text features (B, L, D_t) enter the same text embedding in its place.

Departures (docs/fidelity.md):
  * Positions: MMSA sizes each embedding's position table by the config's `feature_length`
    (50/375/500 on MOSI) and slices it to the input; here the table has N + T_m rows, T_m the
    dataset's padded length (the text model's max_length for token ids), so any dataset fits.
  * Padding (`mask_padding`): masked out of every attention by default, so a padded row gives
    the same prediction as the unpadded one. `mask_padding: false` is MMSA's: no masks, every
    sequence zero-padded to T_m (MMSA's arrays are padded to fixed lengths) and attended. On
    token ids MMSA then also reads BERT's states at [PAD] positions; ours are zeros there.
  * Clipping: the config's `max_grad_norm` 2 is never read by MMSA's ALMT trainer, which does
    not clip; so none here (`grad_clip: 2.0` gives the config's value, by global norm).
  * Early stopping watches the harness's selection metric (validation MAE by default); MMSA's
    watches its validation MSE (KeyEval "Loss").
  * The output Linear reads D channels and each embedding keeps its N tokens; MMSA hard-codes
    Linear(128, 1) and `[:, :8]` (the same at MMSA's D = 128, N = 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.data.types import MODALITIES, Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.encoders import pad_steps
from methods.common.heads import RegressionHead
from methods.common.hyper_modality import (
    ClsCrossTransformer,
    EncoderSize,
    HyperModalityLearning,
    LanguageEncoder,
    TokenEmbedding,
)
from methods.common.losses import task_loss
from methods.search_space import Choice, FloatRange, IntRange


@dataclass(frozen=True)
class ALMTHparams(OptimHparams):
    embedding_dim: int = 128  # D (dst_feature_dims): every token's width
    embedding_hidden_dim: int = 128  # dst_feature_hidden_dims: embedding feed-forward width
    embedding_length: int = 8  # N (dst_embedding_length): learned tokens per modality
    embedding_depth_text: int = 1
    embedding_depth_audio: int = 1
    embedding_depth_vision: int = 1
    embedding_heads_text: int = 8
    embedding_heads_audio: int = 8
    embedding_heads_vision: int = 8
    text_encoder_heads: int = 8  # l_encoder_heads
    ahl_depth: int = 3  # AHL_depth: AHL layers (the language encoder has one fewer)
    ahl_heads: int = 8  # h_hyper_layer_heads
    fusion_hidden_dim: int = 128  # fusion_hidden_d
    fusion_heads: int = 8
    fusion_depth: int = 2  # fusion_layer_depth
    attention_head_dim: int = 64  # MMSA's dim_head default (embedding, language, fusion)
    dropout: float = 0.0  # attention-output and feed-forward dropout (0 everywhere in MMSA)
    mask_padding: bool = True  # False: MMSA's (padding attended; module docstring)
    task_loss: str = "mse"
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 64
    # MMSA's ALMT trainer: one AdamW over everything, BERT included; no clipping (the config's
    # max_grad_norm is unread); its warm-up + cosine schedule over max_epochs 200 epochs
    optimizer: str = "adamw"
    lr_scheduler: str = "warmup_cosine"
    scheduler_epochs: int = 200
    output_head: str = "linear"  # MMSA's ALMT: regression_head = Linear(128, 1)
    learning_rate_bert: float = 1e-4
    weight_decay_bert: float = 1e-4


def _embedding_size(hp: ALMTHparams, m: str) -> EncoderSize:
    """The self-attention encoder of modality m's embedding."""
    return EncoderSize(
        getattr(hp, f"embedding_depth_{m}"),
        getattr(hp, f"embedding_heads_{m}"),
        hp.attention_head_dim,
        hp.embedding_hidden_dim,
        hp.dropout,
    )


def _check(hp: ALMTHparams, where: str = "hparams") -> None:
    """ConfigError naming `where`.<key> for values the model cannot be built with."""
    positive = [
        "embedding_dim",
        "embedding_hidden_dim",
        "embedding_length",
        "ahl_depth",
        "fusion_hidden_dim",
        "attention_head_dim",
        *(f"embedding_heads_{m}" for m in MODALITIES),
        "text_encoder_heads",
        "fusion_heads",
    ]
    for key in positive:
        if getattr(hp, key) < 1:
            raise ConfigError(f"{where}.{key}: expected a positive integer, got {getattr(hp, key)}")
    for key in ("fusion_depth", *(f"embedding_depth_{m}" for m in MODALITIES)):
        if getattr(hp, key) < 0:
            raise ConfigError(f"{where}.{key}: expected >= 0 layers, got {getattr(hp, key)}")
    if not 1 <= hp.ahl_heads <= hp.embedding_dim:
        raise ConfigError(
            f"{where}.ahl_heads: expected 1..embedding_dim ({hp.embedding_dim}) heads of "
            f"embedding_dim // ahl_heads channels, got {hp.ahl_heads}"
        )
    if not 0.0 <= hp.dropout < 1.0:
        raise ConfigError(f"{where}.dropout: expected a rate in [0, 1), got {hp.dropout}")


@register_method("almt")
class ALMT(MsaMethod):
    """ALMT. Outputs: prediction (B,); fused (B, D), the [CLS] state; hyper (B, N, D), the
    hyper-modality tokens after AHL; tokens_<m> (B, N, D), each modality's embedding."""

    Hparams = ALMTHparams
    TEXT_POOLING = "tokens"
    KIND_DEFAULTS = {"mosi": {}, "mosei": {"fusion_depth": 4}, "sims": {"fusion_depth": 4}}
    SEARCH_SPACE = {
        "learning_rate": FloatRange(3e-5, 1e-3, log=True),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
        "batch_size": Choice((32, 64)),
        "embedding_length": Choice((4, 8, 16)),
        "ahl_depth": IntRange(1, 4),
        "fusion_depth": IntRange(1, 4),
        "dropout": FloatRange(0.0, 0.3),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: ALMTHparams, spec: DataSpec) -> None:
        """Parameters are created in MMSA's order (BERT, h_hyper, the text, audio and vision
        embeddings, the language encoder, AHL, fusion, head): under one seed the non-BERT
        weights start as MMSA's do."""
        super().__init__(hparams, spec)
        _check(hparams)
        hp, dim, count = hparams, hparams.embedding_dim, hparams.embedding_length
        in_sizes, self.max_steps = dict(spec.feature_dims), dict(spec.max_lengths)
        if self.text_mode == "pretrained":
            assert spec.tokens is not None
            self.text_encoder = self.build_text_encoder("tokens")
            in_sizes["text"] = self.text_encoder.out_size
            self.max_steps["text"] = spec.tokens.max_length
        self.hyper = nn.Parameter(torch.ones(1, count, dim))
        self.embeddings = nn.ModuleDict(
            {
                m: TokenEmbedding(
                    in_sizes[m], dim, count, self.max_steps[m], _embedding_size(hp, m)
                )
                for m in MODALITIES
            }
        )
        head_dim = hp.attention_head_dim
        language = EncoderSize(hp.ahl_depth - 1, hp.text_encoder_heads, head_dim, dim, hp.dropout)
        self.language_encoder = LanguageEncoder(dim, count, language)
        self.hyper_modality = HyperModalityLearning(dim, hp.ahl_depth, hp.ahl_heads, hp.dropout)
        fusion = EncoderSize(
            hp.fusion_depth, hp.fusion_heads, head_dim, hp.fusion_hidden_dim, hp.dropout
        )
        self.fusion = ClsCrossTransformer(dim, count, count, fusion)
        self.head = RegressionHead(dim, spec.label_range, hp.output_head)

    def _sequence(self, m: str, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Modality m as its embedding reads it: x (B, T, D_m) with T <= T_m, and the mask (B, T)
        of real steps, or (mask_padding false) x zero-padded to T_m and no mask."""
        if m == "text" and self.text_mode == "pretrained":
            x, lengths = self.text_encoder(batch.tokens), batch.tokens.lengths
        else:
            x, lengths = batch.features[m], batch.lengths[m]
        steps = self.max_steps[m]
        if not self.hparams.mask_padding:
            return pad_steps(x, steps), None
        x = x[:, :steps]  # past T_m there is only padding
        positions = torch.arange(x.shape[1], device=x.device)
        return x, positions.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        tokens = {m: self.embeddings[m](*self._sequence(m, batch)) for m in MODALITIES}
        language = self.language_encoder(tokens["text"])  # ahl_depth states (B, N, D)
        hyper = self.hyper.expand(tokens["text"].shape[0], -1, -1)
        hyper = self.hyper_modality(language, tokens["audio"], tokens["vision"], hyper)
        fused = self.fusion(hyper, language[-1])[:, 0]
        outputs = {"prediction": self.head(fused), "fused": fused, "hyper": hyper}
        outputs.update({f"tokens_{m}": tokens[m] for m in MODALITIES})
        return outputs

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}

    def loss_weights(self) -> dict[str, float]:
        return {"task": 1.0}
