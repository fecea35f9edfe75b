"""LF-DNN: late fusion with per-modality DNN encoders (MMSA's LF_DNN).

Reference: Williams et al., "Recognizing Emotions in Video Using Multimodal DNN Feature Fusion"
(ACL 2018 Challenge-HML) as re-implemented in MMSA (Yu et al., 2021). Audio and vision are mean
pooled over their real time steps and encoded by a SubNet; text goes through an LSTM (TextSubNet);
the three vectors are concatenated and a post-fusion MLP predicts the score. Loss: L1 on y.

Reference settings (MMSA's config_regression.json; methods/reference/mmsa_defaults.csv has them
field by field): MOSI hidden (text, audio, video) 128/16/128, text_out 256, post-fusion 128,
dropouts 0.2, batch 128, lr 1e-3, weight decay 0.01; SIMS audio 32, post-fusion 32, dropouts 0.3
and 0.5 after fusion, lr 5e-3, weight decay 5e-3. The text dropout is 0 (`text_dropout`): MMSA's
one-layer TextSubNet zeroes the dropout its config names. Output: a plain Linear layer, as
MMSA's (`output_head: linear`).

Departures, both deliberate harness choices behind switches (docs/fidelity.md): audio and vision
are averaged over their real steps and the text LSTM is read at the last real step
(`feature_steps: padded` is MMSA's: means over the padded length, the last padded step); inputs
are the harness's standardised features (the dataset's `standardize: false` feeds them raw).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.data.types import Batch, DataSpec
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.encoders import PooledUnimodalEncoders, check_feature_steps, post_fusion_mlp
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.search_space import Choice, FloatRange


@dataclass(frozen=True)
class LFDNNHparams(OptimHparams):
    # MMSA's config_regression.json, lf_dnn, mosi: hidden_dims (text, audio, video) 128/16/128
    audio_hidden: int = 16
    vision_hidden: int = 128
    text_hidden: int = 128
    text_out: int = 256
    post_fusion_dim: int = 128
    dropout: float = 0.2  # of the audio and vision subnetworks (MMSA's dropouts[0:2])
    # MMSA's dropouts[2] names 0.2, but its one-layer TextSubNet sets its dropout to 0
    text_dropout: float = 0.0
    post_fusion_dropout: float = 0.2
    task_loss: str = "l1"
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 128
    output_head: str = "linear"  # MMSA's LF_DNN ends in a plain Linear layer
    # "real": audio/vision averaged over real steps, text LSTM read at the last real step
    # (msabench's); "padded": over the dataset's padded lengths (MMSA's; methods/common/encoders)
    feature_steps: str = "real"


@register_method("lf_dnn")
class LFDNN(MsaMethod):
    """Late fusion DNN. Outputs: prediction (B,), fused (B, H_a + H_v + text_out)."""

    Hparams = LFDNNHparams
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {
            "audio_hidden": 32,
            "text_out": 128,
            "batch_size": 64,
            "learning_rate": 0.002,
            "weight_decay": 0.001,
        },
        "sims": {
            "audio_hidden": 32,
            "post_fusion_dim": 32,
            "dropout": 0.3,
            "post_fusion_dropout": 0.5,
            "learning_rate": 5e-3,
            "weight_decay": 5e-3,
        },
    }
    SEARCH_SPACE = {
        "learning_rate": FloatRange(3e-4, 3e-3, log=True),
        "dropout": FloatRange(0.0, 0.5),
        "post_fusion_dim": Choice((32, 64, 128)),
        "weight_decay": FloatRange(1e-6, 1e-2, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        check_feature_steps(hparams, where)

    def __init__(self, hparams: LFDNNHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        rates = {"audio": hparams.dropout, "vision": hparams.dropout}
        self.encoders = PooledUnimodalEncoders.from_hparams(
            spec, hparams, {**rates, "text": hparams.text_dropout}
        )
        fused = hparams.audio_hidden + hparams.vision_hidden + hparams.text_out
        self.post_fusion = post_fusion_mlp(
            fused, hparams.post_fusion_dim, hparams.post_fusion_dropout
        )
        self.head = RegressionHead(hparams.post_fusion_dim, spec.label_range, hparams.output_head)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        encoded = self.encoders(batch)
        fused = torch.cat([encoded["audio"], encoded["vision"], encoded["text"]], dim=-1)
        return {"prediction": self.head(self.post_fusion(fused)), "fused": fused}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}
