"""FINE: Factorized multimodal sentiment analysis via mutual INformation Estimation
(Liu & Wang, AAAI 2026, arXiv 2511.20167). No public code; built from the paper's description
(../shared/reference/methods.md). Every detail the paper leaves out is filled from the closest
published method and listed in methods/README.md ("FINE: choices", component / source / ours).

B = batch, T_m = steps of modality m, d = model_dim, l = num_queries, M = 3 modalities
(text, audio, vision); pairs are (t, a), (t, v), (a, v).

1. Mixture of Q-Formers (MoQ). Each modality's steps are projected to d (Linear, LayerNorm,
   sinusoidal positions). E experts, each a BLIP-2-style Q-Former block (l learnable queries:
   self-attention among the queries, cross-attention from the queries to the padded sequence,
   feed-forward; pre-norm residuals), compress the sequence to l tokens (B, l, d). A router
   (Linear on the masked mean of the sequence) gives expert probabilities; the top-k experts are
   mixed with renormalised weights; the Switch-Transformer load-balancing loss
   L_aux = E * sum_e f_e P_e (f_e: share of top-k assignments, P_e: mean probability; 1 when
   balanced) is averaged over modalities. `use_moq: false` (ablation "w/o MoQ") replaces it by
   the masked mean of the projected sequence (one token).
2. Factorized Task-Relevant Encoder (FTRE), token-wise MLPs per modality: shared x^s, unique x^u,
   task-relevant x^str = T^s(x^s), x^utr = T^u(x^u), a decoder (L_recon) and label encoders used
   only in the loss; L_MI = -I_sha + I_uni + L_recon + I_str - I_utr (InfoNCE lower bounds,
   NCE-CLUB upper bounds whose critics train in `extra_step`). `factorization: misa` (ablation
   "FTRE replaced by MISA") uses MISA's shared/private split instead; `factorization: none`
   ("w/o FTRE") sends the MoQ tokens straight to the fusion (three feature sets, no L_MI).
   Details, shapes and estimators: `methods.common.factorization`.
3. Fusion: the six token sets (x^str, x^utr per modality; l tokens each) with a learned embedding
   per set, behind three learned [CLS] tokens (one per modality), go through a pre-norm
   Transformer encoder. Each modality's [CLS] output feeds a unimodal head (L_UP, mean over
   modalities); their concatenation (B, 3d) feeds the multimodal head (L_MP, the main task loss,
   named "task"). Heads squash into the label range as every method here does.
4. Dynamic Contrastive Queue (DCQ): class-wise FIFO queues (`queue_size` per class) of recent
   projected fused features; classes are Acc-7's rounded classes (Acc-5's bins for SIMS), see
   `methods.common.contrastive`; the supervised contrastive loss of the batch against batch and
   queue is angle-compensated (ACCon) or plain SupCon (`contrastive: supcon`). `use_dcq: false`
   is "w/o DCQ". The queue is filled in training mode only.
Total: L = L_MP + lambda_up L_UP + lambda_cl L_CL + lambda_aux L_aux + beta_mi L_MI, each term
logged by name: task, up, cl, aux, and beta_mi times sha (= -I_sha), uni, recon, str, utr
(= -I_utr); the MISA variant logs cmd, diff, recon.

Departures: pre-extracted text features instead of a fine-tuned BERT/RoBERTa; MSE losses as the
paper; sizes, weights, queue size, temperature and query counts are not in the paper and are
tuned (the defaults below are our starting point, not the paper's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.contrastive import (
    ClassQueue,
    num_sentiment_classes,
    sentiment_classes,
    supervised_contrastive,
)
from methods.common.encoders import masked_mean
from methods.common.factorization import FACTORIZATIONS, MODALITIES, FactorizationMixin
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.qformer import MixtureOfQFormers
from methods.common.transformer import safe_mask, sinusoidal_positions
from methods.search_space import Choice, FloatRange

CONTRASTIVE = ("accon", "supcon")


@dataclass(frozen=True)
class FINEHparams(OptimHparams):
    model_dim: int = 64  # d
    dropout: float = 0.1
    # MoQ
    use_moq: bool = True
    num_queries: int = 4  # l
    num_experts: int = 4  # E
    top_k: int = 2
    qformer_heads: int = 4
    # FTRE
    factorization: str = "ftre"  # "ftre", "misa" (ablation) or "none" (w/o FTRE)
    use_sha: bool = True
    use_task_mi: bool = True  # I_str and I_utr
    critic_hidden: int = 64
    critic_learning_rate: float = 1e-3
    cmd_moments: int = 5  # MISA variant
    # fusion
    fusion_layers: int = 1
    fusion_heads: int = 4
    # DCQ
    use_dcq: bool = True
    contrastive: str = "accon"
    queue_size: int = 32  # entries per class
    temperature: float = 0.1
    # loss weights
    lambda_up: float = 0.5
    lambda_cl: float = 0.1
    lambda_aux: float = 0.01
    beta_mi: float = 0.1
    task_loss: str = "mse"
    learning_rate: float = 1e-3
    batch_size: int = 32
    grad_clip: float = 1.0


def _check(hp: FINEHparams, where: str = "hparams") -> None:
    for key, choices in (("factorization", FACTORIZATIONS), ("contrastive", CONTRASTIVE)):
        if getattr(hp, key) not in choices:
            raise ConfigError(
                f"{where}.{key}: expected one of {list(choices)}, got {getattr(hp, key)!r}"
            )
    for key in ("qformer_heads", "fusion_heads"):
        heads = getattr(hp, key)
        if heads < 1 or hp.model_dim % heads != 0:
            raise ConfigError(
                f"{where}.{key}: expected a positive divisor of model_dim={hp.model_dim}, "
                f"got {heads}"
            )
    if not 1 <= hp.top_k <= hp.num_experts:
        raise ConfigError(
            f"{where}.top_k: expected 1..num_experts={hp.num_experts}, got {hp.top_k}"
        )
    for key in ("num_queries", "num_experts", "fusion_layers", "queue_size", "critic_hidden"):
        if getattr(hp, key) < 1:
            raise ConfigError(f"{where}.{key}: expected a positive integer, got {getattr(hp, key)}")
    if hp.temperature <= 0:
        raise ConfigError(f"{where}.temperature: expected > 0, got {hp.temperature}")


@register_method("fine")
class FINE(FactorizationMixin, MsaMethod):
    """FINE. Outputs: prediction (B,), unimodal predictions pred_<m> (B,), fused (B, 3d),
    tokens_<m> (B, l, d), and per modality the pooled factors shared_<m>, unique_<m>,
    task_shared_<m>, task_unique_<m> (B, d) (FTRE), or shared_<m>/private_<m> (MISA variant)."""

    Hparams = FINEHparams
    KIND_DEFAULTS = {"mosi": {}, "sims": {}}
    SEARCH_SPACE = {
        "learning_rate": FloatRange(2e-4, 3e-3, log=True),
        "model_dim": Choice((32, 64, 128)),
        "num_queries": Choice((2, 4, 8)),
        "num_experts": Choice((2, 4)),
        "dropout": FloatRange(0.0, 0.4),
        "lambda_up": FloatRange(0.1, 1.0, log=True),
        "lambda_cl": FloatRange(0.01, 0.5, log=True),
        "lambda_aux": FloatRange(1e-3, 0.1, log=True),
        "beta_mi": FloatRange(0.01, 0.5, log=True),
        "temperature": FloatRange(0.05, 0.5, log=True),
        "queue_size": Choice((16, 32, 64)),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: FINEHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        hp, d = hparams, hparams.model_dim
        self.kind = spec.kind
        low, high = spec.label_range
        self.label_span = float(high - low)
        self.input_projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(spec.feature_dims[m], d), nn.LayerNorm(d))
                for m in MODALITIES
            }
        )
        if hp.use_moq:
            self.moq = nn.ModuleDict(
                {
                    m: MixtureOfQFormers(
                        d, hp.num_queries, hp.num_experts, hp.top_k, hp.qformer_heads, hp.dropout
                    )
                    for m in MODALITIES
                }
            )
        self.pooled_norm = nn.LayerNorm(d)
        self._build_factorization(hp, d)
        n_sets = 3 if hp.factorization == "none" else 6
        self.set_embeddings = nn.Parameter(torch.randn(n_sets, d) * 0.02)
        self.cls_tokens = nn.Parameter(torch.randn(len(MODALITIES), d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, hp.fusion_heads, 2 * d, hp.dropout, batch_first=True, norm_first=True
        )
        self.fusion = nn.TransformerEncoder(
            layer, hp.fusion_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        self.unimodal_heads = nn.ModuleDict(
            {m: RegressionHead(d, spec.label_range, hparams.output_head) for m in MODALITIES}
        )
        self.fusion_mlp = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(3 * d, d), nn.ReLU())
        self.head = RegressionHead(d, spec.label_range, hparams.output_head)
        if hp.use_dcq:
            self.contrast_projection = nn.Linear(3 * d, d)
            self.queue = ClassQueue(num_sentiment_classes(spec.kind), hp.queue_size, d)
        self._estimator_optimizer = self._build_estimator_optimizer()

    # -- parameters ------------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        excluded = {id(p) for p in self.estimator_parameters()}
        main = [p for p in self.parameters() if p.requires_grad and id(p) not in excluded]
        return [{"params": main}]

    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        weights = {"task": 1.0, "up": hp.lambda_up}
        if hp.use_dcq:
            weights["cl"] = hp.lambda_cl
        if hp.use_moq:
            weights["aux"] = hp.lambda_aux
        return weights | self.factorization_weights()

    # -- model -----------------------------------------------------------------------------------
    def compress(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """MoQ (or masked mean): ({m: tokens (B, l, d)}, mean load-balancing loss)."""
        tokens, balance = {}, []
        for m in MODALITIES:
            x, mask = batch.features[m], batch.mask(m)
            if x.shape[1] == 0:
                x, mask = x.new_zeros(x.shape[0], 1, x.shape[2]), mask.new_zeros(x.shape[0], 1)
            h = self.input_projections[m](x)
            h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device).to(h.dtype)
            h = h * mask.unsqueeze(-1).to(h.dtype)
            if self.hparams.use_moq:
                tokens[m], aux = self.moq[m](h, mask)
                balance.append(aux)
            else:
                tokens[m] = self.pooled_norm(masked_mean(h, safe_mask(mask))).unsqueeze(1)
        aux = torch.stack(balance).mean() if balance else tokens["text"].new_zeros(())
        return tokens, aux

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        tokens, aux = self.compress(batch)
        factors = self.factorize(tokens)
        sets = self.feature_sets(tokens, factors)
        embedded = [s + self.set_embeddings[i] for i, s in enumerate(sets)]
        cls = self.cls_tokens.unsqueeze(0).expand(batch.labels.shape[0], -1, -1)
        encoded = self.fusion(torch.cat([cls, *embedded], dim=1))
        cls_out = encoded[:, : len(MODALITIES)]  # (B, 3, d)
        fused = cls_out.flatten(start_dim=1)  # (B, 3d)
        outputs = {
            "prediction": self.head(self.fusion_mlp(fused)),
            "fused": fused,
            "aux": aux,
            "recon": self._reconstruction(tokens, factors),
        }
        for i, m in enumerate(MODALITIES):
            outputs[f"pred_{m}"] = self.unimodal_heads[m](cls_out[:, i])
        # pooled factors (B, d): what the MI terms, the probes and the analyses read
        outputs.update({name: value.mean(dim=1) for name, value in factors.items()})
        return outputs

    def _contrastive(self, batch: Batch, outputs: dict) -> torch.Tensor:
        """DCQ: the batch's projected fused features against batch and queue; the queue then
        takes the batch (training mode only)."""
        hp = self.hparams
        features = self.contrast_projection(outputs["fused"])
        classes = sentiment_classes(batch.labels, self.kind)
        bank = self.queue.contents()
        span = self.label_span if hp.contrastive == "accon" else None
        loss = supervised_contrastive(
            features, batch.labels, classes, bank, hp.temperature, label_span=span
        )
        if self.training:
            self.queue.push(features, batch.labels, classes)
        return loss

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp = self.hparams
        weights = self.loss_weights()
        terms = {"task": task_loss(hp.task_loss, outputs["prediction"], batch.labels)}
        if hp.lambda_up > 0:
            unimodal = torch.stack(
                [task_loss(hp.task_loss, outputs[f"pred_{m}"], batch.labels) for m in MODALITIES]
            ).mean()
            terms["up"] = hp.lambda_up * unimodal
        if "cl" in weights and hp.lambda_cl > 0:
            terms["cl"] = hp.lambda_cl * self._contrastive(batch, outputs)
        if "aux" in weights and hp.lambda_aux > 0:
            terms["aux"] = hp.lambda_aux * outputs["aux"]
        if hp.beta_mi > 0:
            terms.update(self.factorization_terms(batch, outputs))
        return terms

    def extra_step(self, batch: Batch) -> dict[str, float]:
        """Train the NCE-CLUB critics (I_uni, and I_str when on) with the InfoNCE objective on
        detached features, with their own optimiser (FactorCL's estimator step)."""
        if self._estimator_optimizer is None or self.hparams.beta_mi == 0:
            return {}
        with torch.no_grad():
            tokens = self.compress(batch)[0]
        return self.critic_step(self._estimator_optimizer, tokens, batch.labels)
