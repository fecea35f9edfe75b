"""LMF: Low-rank Multimodal Fusion (Liu et al., ACL 2018), following MMSA's implementation.

Paper: "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors"; reference code
Justin1904/Low-rank-Multimodal-Fusion, re-implemented in MMSA (models/singleTask/LMF.py). The
pre-fusion encoders are TFN's: audio and vision are mean pooled over their real time steps and
encoded by SubNets, text by an LSTM (TextSubNet). Each vector is extended with a constant 1,
z_m = [1; h_m], and TFN's weight tensor W over the outer product z_a x z_v x z_t is replaced by a
rank-r decomposition with modality-specific factors w_m^(i), i = 1..r:

    f_m^(i) = z_m . w_m^(i)                    (B,) per modality and rank
    y = sum_i lambda_i prod_m f_m^(i) + b        (fusion weights lambda (r,), bias b)

so the (H_a+1)(H_v+1)(H_t+1) tensor is never built. Output dimension 1 (regression); loss L1 on y
(MMSA's regression trainer).

Reference settings (MMSA config_regression.json, MOSI): hidden_dims (text, audio, video) =
128/16/128, text_out = text_hidden // 2 = 64, dropouts 0.3, rank 3, batch 64, lr 1e-3, factor lr
1e-3, weight decay 5e-3; SIMS: hidden 64/16/64, dropouts 0.2, rank 4, batch 64, lr 2e-3, factor lr
5e-4, weight decay 5e-3. methods.md's "hidden 128/16/128" is MMSA's (text, audio, video) order, so
audio gets 16 and vision 128 here, as in MMSA.

As MMSA: its optimiser takes `list(model.parameters())[:3]` (the factors, at factor_lr) and
`[5:]` (the encoders), so the fusion weights and bias (positions 3 and 4) are never trained
(`train_fusion_weights: false`; true trains them at the encoders' rate); the output is linear
(`output_head`); the text dropout is 0 (MMSA's one-layer TextSubNet zeroes it); MMSA declares a
fourth (post-fusion) dropout that its forward never applies, so there is none.

Departures (docs/fidelity.md): real-step means and the last real LSTM step (`feature_steps:
padded` is MMSA's: the padded length and its last step); inputs are the harness's standardised
features (the dataset's `standardize: false` feeds them raw).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.data.types import Batch, DataSpec
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.encoders import PooledUnimodalEncoders, check_feature_steps
from methods.common.heads import bound_scores
from methods.common.losses import task_loss
from methods.search_space import Choice, FloatRange, IntRange

FUSION_ORDER: tuple[str, ...] = ("audio", "vision", "text")


@dataclass(frozen=True)
class LMFHparams(OptimHparams):
    audio_hidden: int = 16
    vision_hidden: int = 128
    text_hidden: int = 128
    text_out: int = 64  # MMSA: text_hidden // 2
    dropout: float = 0.3  # of the audio and vision subnetworks
    # MMSA's dropouts[2] names 0.3, but its one-layer TextSubNet sets its dropout to 0
    text_dropout: float = 0.0
    # MMSA's optimiser takes parameters [:3] and [5:]: the fusion weights and bias keep their
    # initial values (False, the reference); True trains them at learning_rate
    train_fusion_weights: bool = False
    rank: int = 3
    factor_learning_rate: float = 1e-3
    task_loss: str = "l1"
    learning_rate: float = 1e-3
    weight_decay: float = 5e-3
    batch_size: int = 64
    output_head: str = "linear"  # MMSA's LMF: the fusion's linear output
    # "real": audio/vision averaged over real steps, text LSTM read at the last real step
    # (msabench's); "padded": over the dataset's padded lengths (MMSA's; methods/common/encoders)
    feature_steps: str = "real"


class LowRankFusion(nn.Module):
    """Rank-r modality-specific factors over [1; h_m] for each modality m, summed over rank with
    learned fusion weights plus a bias. vectors: list of (B, H_m) -> (prediction (B,),
    per-rank products (B, r))."""

    def __init__(self, sizes: list[int], rank: int) -> None:
        super().__init__()
        # factor m: (r, H_m + 1); MMSA's (r, H_m + 1, 1) with output_dim 1, same Xavier fans
        self.factors = nn.ParameterList(
            nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, size + 1))) for size in sizes
        )
        self.fusion_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))
        self.fusion_bias = nn.Parameter(torch.zeros(1))

    def forward(self, vectors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        product = None
        for vector, factor in zip(vectors, self.factors, strict=True):
            extended = torch.cat([vector.new_ones(vector.shape[0], 1), vector], dim=-1)
            projected = extended @ factor.T  # (B, r)
            product = projected if product is None else product * projected
        assert product is not None
        prediction = (product @ self.fusion_weights.T).squeeze(-1) + self.fusion_bias
        return prediction, product


@register_method("lmf")
class LMF(MsaMethod):
    """Low-rank Multimodal Fusion. Outputs: prediction (B,), fused (B, rank) (the per-rank
    products before the fusion weights)."""

    Hparams = LMFHparams
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {
            "dropout": 0.2,
            "rank": 4,
            "batch_size": 32,
            "weight_decay": 0.001,
        },
        "sims": {
            "text_hidden": 64,
            "vision_hidden": 64,
            "text_out": 32,
            "dropout": 0.2,
            "rank": 4,
            "learning_rate": 2e-3,
            "factor_learning_rate": 5e-4,
        },
    }
    SEARCH_SPACE = {
        "rank": IntRange(2, 8),
        "learning_rate": FloatRange(3e-4, 3e-3, log=True),
        "factor_learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "weight_decay": FloatRange(1e-5, 1e-2, log=True),
        "dropout": FloatRange(0.0, 0.5),
        "audio_hidden": Choice((8, 16, 32)),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        check_feature_steps(hparams, where)

    def __init__(self, hparams: LMFHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        rates = {"audio": hparams.dropout, "vision": hparams.dropout}
        self.encoders = PooledUnimodalEncoders.from_hparams(
            spec, hparams, {**rates, "text": hparams.text_dropout}
        )
        sizes = {"audio": hparams.audio_hidden, "vision": hparams.vision_hidden}
        sizes["text"] = hparams.text_out
        self.fusion = LowRankFusion([sizes[m] for m in FUSION_ORDER], hparams.rank)
        for parameter in (self.fusion.fusion_weights, self.fusion.fusion_bias):
            parameter.requires_grad_(hparams.train_fusion_weights)  # MMSA: never trained
        self.label_range = tuple(float(v) for v in spec.label_range)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        encoded = self.encoders(batch)
        raw, fused = self.fusion([encoded[m] for m in FUSION_ORDER])
        prediction = bound_scores(raw, self.hparams.output_head, self.label_range)
        return {"prediction": prediction, "fused": fused}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The modality-specific factors at `factor_learning_rate`; the encoders (and with
        `train_fusion_weights` the fusion weights and bias) at the default learning rate; the
        same weight decay for both groups, as MMSA's LMF trainer."""
        factors = list(self.fusion.factors)
        factor_ids = {id(p) for p in factors}
        others = [p for p in self.parameters() if p.requires_grad and id(p) not in factor_ids]
        return [
            {"params": factors, "lr": self.hparams.factor_learning_rate},
            {"params": others},
        ]
