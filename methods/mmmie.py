"""MMMIE: Mutual information Maximization and Minimization + Identity Embedding for multimodal
sentiment analysis (Zheng, Zhang, Wang & Zeng, arXiv 2201.03969). No public code or numbers; built
from the abstract and ../shared/reference/methods.md; where the paper is silent we take MMIM (its
closest published relative) and list each choice in methods/README.md ("MMMIE: choices").

B = batch, T_m = steps of modality m, d = model_dim, M = 3 modalities (text, audio, vision).

1. Unimodal encoders: per modality Linear(D_m, d) + LayerNorm on every step, then an LSTM over
   the real steps (MMIM's encoder family): token features (B, T_m, d) and the modality's
   representation h_m = the LSTM's final state (B, d).
2. MI maximisation between modality pairs (t-a, t-v, a-v): the InfoNCE lower bound with an MLP
   critic on [h_i; h_j] (trained with the model, maximised): term "mi_max" = -alpha * mean over
   pairs. Mines modality-invariant information.
3. MI minimisation between each modality's input and its feature: the CLUB upper bound between
   the input (masked mean of the raw features, (B, D_m)) and h_m, with a Gaussian q(h|x) fitted by
   maximum likelihood in `extra_step` under its own optimiser and read with frozen parameters in
   the main loss: term "mi_min" = beta * mean over modalities (an information bottleneck).
4. Identity embedding: a learned modality embedding and sinusoidal position embeddings are added
   to every token before the fusion network, so the fusion Transformer knows which modality and
   which step each token comes from.
5. Fusion: a [CLS] token followed by the tokens of all three modalities (padding masked) goes
   through a pre-norm Transformer encoder; the [CLS] output and the three h_m feed an MLP head
   whose output is squashed into the label range. Task loss: L1 on y (MMIM's).
Switches: `use_mi_max`, `use_mi_min`, `use_identity` (each part's ablation); alpha = 0 or
beta = 0 also removes its term.

Departures: pre-extracted text features instead of a fine-tuned BERT; estimator choices (InfoNCE,
CLUB), sizes and weights are ours (the paper names the ideas, not the estimators), tuned.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import torch
from torch import nn

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.encoders import masked_mean
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.mi_estimators import CLUB, InfoNCE, estimator_step, frozen_call
from methods.common.recurrent import RealStepsLSTM
from methods.common.transformer import safe_mask, sinusoidal_positions
from methods.search_space import Choice, FloatRange

MODALITIES = ("text", "audio", "vision")
PAIRS = tuple(combinations(MODALITIES, 2))


@dataclass(frozen=True)
class MMMIEHparams(OptimHparams):
    model_dim: int = 64  # d
    fusion_layers: int = 1
    fusion_heads: int = 4
    dropout: float = 0.1
    use_mi_max: bool = True
    use_mi_min: bool = True
    use_identity: bool = True
    alpha: float = 0.1  # weight of the pairwise MI maximisation
    beta: float = 0.05  # weight of the input-feature MI minimisation
    critic_hidden: int = 64
    club_learning_rate: float = 1e-3
    task_loss: str = "l1"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    grad_clip: float = 1.0


def _check(hp: MMMIEHparams, where: str = "hparams") -> None:
    if hp.fusion_heads < 1 or hp.model_dim % hp.fusion_heads != 0:
        raise ConfigError(
            f"{where}.fusion_heads: expected a positive divisor of model_dim={hp.model_dim}, "
            f"got {hp.fusion_heads}"
        )
    for key in ("alpha", "beta"):
        if getattr(hp, key) < 0:
            raise ConfigError(
                f"{where}.{key}: expected a non-negative weight, got {getattr(hp, key)}"
            )


@register_method("mmmie")
class MMMIE(MsaMethod):
    """MMMIE. Outputs: prediction (B,), fused (B, d), and per modality h_<m> (B, d) and the pooled
    input x_<m> (B, D_m)."""

    Hparams = MMMIEHparams
    KIND_DEFAULTS = {"mosi": {}, "sims": {}}
    SEARCH_SPACE = {
        "learning_rate": FloatRange(3e-4, 3e-3, log=True),
        "model_dim": Choice((32, 64, 128)),
        "fusion_layers": Choice((1, 2)),
        "dropout": FloatRange(0.0, 0.4),
        "alpha": FloatRange(0.01, 1.0, log=True),
        "beta": FloatRange(0.005, 0.5, log=True),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: MMMIEHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        hp, d = hparams, hparams.model_dim
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(spec.feature_dims[m], d), nn.LayerNorm(d))
                for m in MODALITIES
            }
        )
        self.encoders = nn.ModuleDict({m: RealStepsLSTM(d, d) for m in MODALITIES})
        self.modality_embeddings = nn.Parameter(torch.randn(len(MODALITIES), d) * 0.02)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, hp.fusion_heads, 2 * d, hp.dropout, batch_first=True, norm_first=True
        )
        self.fusion = nn.TransformerEncoder(
            layer, hp.fusion_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        self.head_mlp = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(4 * d, d), nn.ReLU())
        self.head = RegressionHead(d, spec.label_range, hparams.output_head)
        if hp.use_mi_max:
            self.pair_critics = nn.ModuleDict(
                {f"{a}_{b}": InfoNCE(d, d, hp.critic_hidden) for a, b in PAIRS}
            )
        if hp.use_mi_min:
            self.clubs = nn.ModuleDict(
                {m: CLUB(spec.feature_dims[m], d, hp.critic_hidden) for m in MODALITIES}
            )
            self._club_optimizer = torch.optim.Adam(
                self.clubs.parameters(), lr=hp.club_learning_rate
            )

    # -- parameters ------------------------------------------------------------------------------
    def estimator_parameters(self) -> list[nn.Parameter]:
        """CLUB's q networks: trained only in extra_step."""
        return list(self.clubs.parameters()) if self.hparams.use_mi_min else []

    def parameter_groups(self) -> list[dict]:
        excluded = {id(p) for p in self.estimator_parameters()}
        main = [p for p in self.parameters() if p.requires_grad and id(p) not in excluded]
        return [{"params": main}]

    def loss_weights(self) -> dict[str, float]:
        weights = {"task": 1.0}
        if self.hparams.use_mi_max:
            weights["mi_max"] = self.hparams.alpha
        if self.hparams.use_mi_min:
            weights["mi_min"] = self.hparams.beta
        return weights

    # -- model -----------------------------------------------------------------------------------
    def encode(
        self, batch: Batch
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """({m: tokens (B, T_m, d) zero at padding}, {m: h_m (B, d)}, {m: masks (B, T_m)})."""
        tokens, states, masks = {}, {}, {}
        for m in MODALITIES:
            x, mask = batch.features[m], batch.mask(m)
            if x.shape[1] == 0:
                x, mask = x.new_zeros(x.shape[0], 1, x.shape[2]), mask.new_zeros(x.shape[0], 1)
            outputs, final = self.encoders[m](self.projections[m](x), batch.lengths[m])
            tokens[m], states[m], masks[m] = outputs, final, safe_mask(mask)
        return tokens, states, masks

    def pooled_inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Masked mean of each modality's raw features: {m: (B, D_m)}."""
        return {m: masked_mean(batch.features[m], batch.mask(m)) for m in MODALITIES}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        tokens, states, masks = self.encode(batch)
        sequence, real = [], []
        for i, m in enumerate(MODALITIES):
            x = tokens[m]
            if self.hparams.use_identity:
                positions = sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype)
                x = x + self.modality_embeddings[i] + positions
            sequence.append(x)
            real.append(masks[m])
        b = batch.labels.shape[0]
        cls = self.cls_token.expand(b, -1, -1)
        real_cls = torch.ones(b, 1, dtype=torch.bool, device=cls.device)
        encoded = self.fusion(
            torch.cat([cls, *sequence], dim=1),
            src_key_padding_mask=~torch.cat([real_cls, *real], dim=1),
        )
        fused = encoded[:, 0]
        joint = torch.cat([fused, *(states[m] for m in MODALITIES)], dim=-1)
        outputs = {"prediction": self.head(self.head_mlp(joint)), "fused": fused}
        outputs.update({f"h_{m}": states[m] for m in MODALITIES})
        outputs.update({f"x_{m}": x for m, x in self.pooled_inputs(batch).items()})
        return outputs

    # -- losses ----------------------------------------------------------------------------------
    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp = self.hparams
        terms = {"task": task_loss(hp.task_loss, outputs["prediction"], batch.labels)}
        if hp.use_mi_max and hp.alpha > 0:
            lower = torch.stack(
                [
                    self.pair_critics[f"{a}_{b}"](outputs[f"h_{a}"], outputs[f"h_{b}"])
                    for a, b in PAIRS
                ]
            ).mean()
            terms["mi_max"] = -hp.alpha * lower
        if hp.use_mi_min and hp.beta > 0:
            upper = torch.stack(
                [
                    frozen_call(self.clubs[m], outputs[f"x_{m}"], outputs[f"h_{m}"])
                    for m in MODALITIES
                ]
            ).mean()
            terms["mi_min"] = hp.beta * upper
        return terms

    def extra_step(self, batch: Batch) -> dict[str, float]:
        """Fit CLUB's q(h_m | x_m) by maximum likelihood on detached features (own optimiser)."""
        if not self.hparams.use_mi_min or self.hparams.beta == 0:
            return {}
        with torch.no_grad():
            _, states, _ = self.encode(batch)
            inputs = self.pooled_inputs(batch)
        loss = torch.stack(
            [self.clubs[m].learning_loss(inputs[m], states[m]) for m in MODALITIES]
        ).mean()
        return {"club_nll": estimator_step(self._club_optimizer, loss)}
