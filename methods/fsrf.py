"""FSRF: Factorization-guided Semantic Recovery Framework for multimodal sentiment analysis with
missing modalities (Liu, Chu, Dong, Zhang, Li & Wang, ICME 2025, arXiv 2510.16086). No public code
or numbers; built from the abstract and ../shared/reference/methods.md. Every detail the paper
leaves open is filled from MISA (the factorisation), LNLN/CorrKD (the missing protocol) and deep
mutual learning (the two-way distillation), and listed in methods/README.md ("FSRF: choices").

B = batch, T_m = steps of modality m, D_m = its features, d = model_dim, M = 3 modalities
(text, audio, vision), K = fusion tokens (2M = 6 with the factorisation, M without).

1. Encoders, per modality: Linear(D_m, d) + LayerNorm on every step, an LSTM over the real steps,
   LayerNorm of its final state: the utterance vector u_m (B, d) ("utterance", stacked (B, M, d)).
   (The final LayerNorm, as in MISA's utterance projection, keeps the sigmoid factor encoders out
   of their flat region: without it 3 of 4 seeds were within 5% of the mean predictor's MAE
   after 8 epochs on synth, d 32, batch 64.)
2. De-redundant homo-heterogeneous factorisation (DHF), `use_factorization`: from u_m a
   homogeneous part hom_m (one encoder shared by all modalities, as MISA's shared encoder), a
   heterogeneous part het_m and a noise part n_m (one encoder each per modality); each encoder is
   Linear + Sigmoid (MISA's). A decoder per modality rebuilds u_m from [hom_m; het_m; n_m].
   Constraints (computed on the complete view, weights in brackets; 0 removes the term):
     homo_align    [align_weight]         mean over modality pairs of CMD(hom_i, hom_j) (5 moments)
     decorrelation [decorrelation_weight] sum of MISA's difference loss over (hom_m, het_m),
                   (hom_m, n_m), (het_m, n_m) per modality and (het_i, het_j) per pair
     noise_task    [noise_task_weight]    MSE of an adversarial regressor per modality that reads
                   n_m through gradient reversal: the regressor learns to predict y from the noise,
                   the encoders learn to defeat it, so n_m keeps no task information (DANN)
     recon         [recon_weight]         mean over modalities of MSE(decoder_m([hom; het; n]), u_m)
   `use_noise_factor: false` drops the noise part (and noise_task): a MISA-style two-way split.
3. Fusion: the K tokens [hom_t, hom_a, hom_v, het_t, het_a, het_v] (or [u_t, u_a, u_v] without
   DHF; the noise parts never reach the prediction) plus a learned embedding per token go through
   a pre-norm Transformer encoder layer with a final LayerNorm: "fused_tokens" (B, K, d); their
   concatenation "fused" (B, K d) feeds Dropout -> Linear(K d, d) -> ReLU -> a head squashed into
   the label range: "prediction" (B,). task = task loss (L1) of the complete view.
4. Distribution-aligned self-distillation (DAS). In training mode the same network (one set of
   weights) also sees a student view of the batch with frames and modalities missing: LNLN's
   intra-modal protocol (`harness.data.missing.augment`, per sample and modality a rate
   ~ U(0, intra_missing_max_rate), steps zero-filled, padding untouched), then with probability
   `inter_missing_probability` one of the six inter-modal patterns (`augment_inter`). Both views
   go through one batched pass (2B rows). The masks come from a torch generator owned by the model,
   seeded in __init__ from the global torch RNG (so the harness's seed fixes them; it is not in
   the state dict). Terms (0 removes a term):
     task_student [student_task_weight] task loss of the student view's prediction
     distill_pred [distill_pred_weight] KL between the views' predictions read as unit-variance
                  Gaussians (half the squared difference)
     distill_repr [distill_repr_weight] per sample and token, KL between the softmax (over the d
                  channels, temperature distill_temperature, times tau^2) of fused_tokens
     distill_cmd  [distill_cmd_weight]  per token, CMD between the two views' batches of
                  fused_tokens (mean, then central moments up to distill_cmd_moments), mean over
                  tokens: batch-level moment matching
   sg = stop-gradient. Every term sends teacher -> student, D(sg(teacher), student). The
   per-sample terms (distill_pred; distill_repr unless `reverse_representations: false`) also send
   student -> teacher, D(sg(student), teacher) (deep mutual learning), weighted per sample by
   `distillation`: "bidirectional" (default) on the samples whose student prediction is closer to
   the label than the teacher's (the incomplete view teaches the complete one where it is the
   better estimate), "symmetric" on every sample, "teacher_to_student" on none. Why the gate:
   on synth, ungated mutual learning of the representations (distill_repr_weight 1.0, lr 2e-3,
   batch 64, d 32) settled on both views agreeing about input-free features (validation MAE stayed
   at the mean predictor's for 10 epochs); the gated form learned in every setting tried (d 32/64,
   lr 1e-3/2e-3, batch 32/64, 4 seeds: best validation MAE 0.48-0.68 of the mean predictor's).
   distill_cmd compares whole batches, so it cannot be gated per sample: it is teacher -> student
   in every mode (pulling the complete view's moments towards a degraded view's shrinks them).
   `use_self_distillation: false` keeps the student view and task_student (the same
   training data) and drops the three distill terms, so the ablation isolates distillation.
   Without any missing augmentation (both rates 0) there is no student view and no student term.
   In eval mode forward is one pass over the batch as given (the harness applies its masks).
Outputs: prediction (B,); fused_tokens (B, K, d); fused (B, K d); utterance (B, M, d); with DHF
homogeneous, heterogeneous, noise (without use_noise_factor: absent), reconstructed (B, M, d); in
training with a student view also student_prediction (B,) and student_fused_tokens (B, K, d).

Departures and open choices: pre-extracted text features through the same LSTM as audio and
vision instead of a fine-tuned BERT; encoder, fusion, sizes, weights and estimators are ours
(the paper names the ideas, not the layers); the DHF constraints apply to the complete view only
(on the student view a dropped modality's u_m is a constant, which cannot be aligned or
decorrelated; the student learns its factors through the distillation instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import torch
from torch import nn

from harness.data.missing import augment, augment_inter
from harness.data.types import MODALITIES, Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.distillation import (
    DIRECTIONS,
    distill,
    gaussian_kl,
    moment_matching,
    reverse_weights,
    softmax_kl,
)
from methods.common.gradient_reversal import reverse_gradient
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.recurrent import RealStepsLSTM
from methods.common.similarity import cmd, difference_loss, reconstruction_loss
from methods.search_space import Choice, FloatRange

PAIRS = tuple(combinations(range(len(MODALITIES)), 2))
DHF_TERMS = ("homo_align", "decorrelation", "noise_task", "recon")
DISTILL_TERMS = ("distill_pred", "distill_repr", "distill_cmd")


@dataclass(frozen=True)
class FSRFHparams(OptimHparams):
    model_dim: int = 64  # d
    fusion_heads: int = 2
    dropout: float = 0.1
    use_factorization: bool = True  # DHF
    use_noise_factor: bool = True  # the noise part of DHF (with noise_task)
    use_self_distillation: bool = True  # DAS
    distillation: str = "bidirectional"  # or "symmetric", "teacher_to_student"
    reverse_representations: bool = True  # distill_repr also student -> teacher
    intra_missing_max_rate: float = 1.0  # student view: per-sample frame rate ~ U(0, this)
    inter_missing_probability: float = 0.2  # student view: chance a sample loses modalities
    student_task_weight: float = 1.0
    align_weight: float = 0.3
    decorrelation_weight: float = 0.1
    noise_task_weight: float = 0.1
    recon_weight: float = 1.0
    distill_pred_weight: float = 1.0
    distill_repr_weight: float = 0.3
    distill_cmd_weight: float = 0.03
    cmd_moments: int = 5  # homo_align (on sigmoid outputs, MISA's)
    distill_cmd_moments: int = 2  # distill_cmd (on LayerNorm outputs: mean and variance)
    distill_temperature: float = 1.0
    task_loss: str = "l1"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    grad_clip: float = 1.0


WEIGHTS = {
    "task_student": "student_task_weight",
    "homo_align": "align_weight",
    "decorrelation": "decorrelation_weight",
    "noise_task": "noise_task_weight",
    "recon": "recon_weight",
    "distill_pred": "distill_pred_weight",
    "distill_repr": "distill_repr_weight",
    "distill_cmd": "distill_cmd_weight",
}


def _check(hp: FSRFHparams, where: str = "hparams") -> None:
    if hp.model_dim < 1 or hp.fusion_heads < 1 or hp.model_dim % hp.fusion_heads:
        raise ConfigError(
            f"{where}.fusion_heads: expected a positive divisor of model_dim={hp.model_dim}, "
            f"got {hp.fusion_heads}"
        )
    if hp.distillation not in DIRECTIONS:
        raise ConfigError(
            f"{where}.distillation: expected one of {DIRECTIONS}, got {hp.distillation!r}"
        )
    for key in ("intra_missing_max_rate", "inter_missing_probability", "dropout"):
        if not 0.0 <= getattr(hp, key) <= 1.0:
            raise ConfigError(f"{where}.{key}: expected a number in [0, 1], got {getattr(hp, key)}")
    for key in WEIGHTS.values():
        if getattr(hp, key) < 0:
            raise ConfigError(f"{where}.{key}: expected a weight >= 0, got {getattr(hp, key)}")
    if hp.distill_temperature <= 0:
        raise ConfigError(
            f"{where}.distill_temperature: expected > 0, got {hp.distill_temperature}"
        )
    for key in ("cmd_moments", "distill_cmd_moments"):
        if getattr(hp, key) < 1:
            raise ConfigError(f"{where}.{key}: expected a positive integer, got {getattr(hp, key)}")


def _sigmoid_layer(size: int) -> nn.Sequential:
    """MISA's factor encoder: Linear -> Sigmoid, (..., d) -> (..., d)."""
    return nn.Sequential(nn.Linear(size, size), nn.Sigmoid())


def _concat(first: Batch, second: Batch) -> Batch:
    """Two batches of the same padded shapes stacked along the batch axis (2B rows)."""
    return Batch(
        {m: torch.cat([first.features[m], second.features[m]]) for m in first.features},
        {m: torch.cat([first.lengths[m], second.lengths[m]]) for m in first.lengths},
        torch.cat([first.labels, second.labels]),
        torch.cat([first.index, second.index]),
    )


@register_method("fsrf")
class FSRF(MsaMethod):
    """FSRF; outputs as in the module docstring."""

    Hparams = FSRFHparams
    KIND_DEFAULTS = {"mosi": {}, "sims": {}}
    SEARCH_SPACE = {
        "learning_rate": FloatRange(3e-4, 3e-3, log=True),
        "model_dim": Choice((32, 64, 128)),
        "dropout": FloatRange(0.0, 0.4),
        "align_weight": FloatRange(0.05, 1.0, log=True),
        "decorrelation_weight": FloatRange(0.02, 0.5, log=True),
        "noise_task_weight": FloatRange(0.01, 0.5, log=True),
        "recon_weight": FloatRange(0.1, 1.0, log=True),
        "distill_pred_weight": FloatRange(0.1, 2.0, log=True),
        "distill_repr_weight": FloatRange(0.03, 1.0, log=True),
        "distill_cmd_weight": FloatRange(0.003, 0.3, log=True),
        "inter_missing_probability": FloatRange(0.0, 0.5),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: FSRFHparams, spec: DataSpec) -> None:
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
        self.utterance_norms = nn.ModuleDict({m: nn.LayerNorm(d) for m in MODALITIES})
        self.factor_names = ("homogeneous", "heterogeneous") + (
            ("noise",) if hp.use_noise_factor else ()
        )
        tokens = len(MODALITIES)
        if hp.use_factorization:
            tokens = 2 * len(MODALITIES)
            self.homogeneous = _sigmoid_layer(d)  # shared by all modalities
            self.heterogeneous = nn.ModuleDict({m: _sigmoid_layer(d) for m in MODALITIES})
            if hp.use_noise_factor:
                self.noise = nn.ModuleDict({m: _sigmoid_layer(d) for m in MODALITIES})
                self.noise_adversaries = nn.ModuleDict(
                    {
                        m: nn.Sequential(
                            nn.Linear(d, d),
                            nn.ReLU(),
                            RegressionHead(d, spec.label_range, hparams.output_head),
                        )
                        for m in MODALITIES
                    }
                )
            width = len(self.factor_names) * d
            self.decoders = nn.ModuleDict({m: nn.Linear(width, d) for m in MODALITIES})
        self.token_embeddings = nn.Parameter(torch.randn(tokens, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, hp.fusion_heads, 2 * d, hp.dropout, batch_first=True, norm_first=True
        )
        self.fusion = nn.TransformerEncoder(
            layer, 1, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        self.head_mlp = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(tokens * d, d), nn.ReLU())
        self.head = RegressionHead(d, spec.label_range, hparams.output_head)
        # training-time masks of the student view: a plain attribute, so not in the state dict
        self.mask_generator = torch.Generator().manual_seed(
            int(torch.randint(2**31 - 1, (1,)).item())
        )

    # -- views -----------------------------------------------------------------------------------
    @property
    def has_student_view(self) -> bool:
        hp = self.hparams
        return hp.intra_missing_max_rate > 0 or hp.inter_missing_probability > 0

    def student_view(self, batch: Batch) -> Batch:
        """The incomplete view of a batch (draws from `mask_generator`)."""
        hp = self.hparams
        if hp.intra_missing_max_rate > 0:
            batch = augment(batch, self.mask_generator, hp.intra_missing_max_rate)
        if hp.inter_missing_probability > 0:
            batch = augment_inter(batch, self.mask_generator, hp.inter_missing_probability)
        return batch

    # -- model -----------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if not (self.training and self.has_student_view):
            return self.encode(batch)
        size = batch.size
        both = self.encode(_concat(batch, self.student_view(batch)))  # one pass over 2B rows
        outputs = {name: value[:size] for name, value in both.items()}
        for name in ("prediction", "fused_tokens"):
            outputs[f"student_{name}"] = both[name][size:]
        return outputs

    def encode(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One view: Batch -> the outputs listed in the module docstring (no student_*)."""
        utterance = torch.stack(
            [
                self.utterance_norms[m](
                    self.encoders[m](self.projections[m](batch.features[m]), batch.lengths[m])[1]
                )
                for m in MODALITIES
            ],
            dim=1,
        )  # (B, M, d)
        outputs = {"utterance": utterance}
        if self.hparams.use_factorization:
            outputs["homogeneous"] = self.homogeneous(utterance)
            outputs["heterogeneous"] = torch.stack(
                [self.heterogeneous[m](utterance[:, i]) for i, m in enumerate(MODALITIES)], dim=1
            )
            if self.hparams.use_noise_factor:
                outputs["noise"] = torch.stack(
                    [self.noise[m](utterance[:, i]) for i, m in enumerate(MODALITIES)], dim=1
                )
            factors = torch.cat([outputs[name] for name in self.factor_names], dim=-1)
            outputs["reconstructed"] = torch.stack(
                [self.decoders[m](factors[:, i]) for i, m in enumerate(MODALITIES)], dim=1
            )
            tokens = torch.cat([outputs["homogeneous"], outputs["heterogeneous"]], dim=1)
        else:
            tokens = utterance
        fused_tokens = self.fusion(tokens + self.token_embeddings)  # (B, K, d)
        fused = fused_tokens.flatten(start_dim=1)
        outputs.update(
            prediction=self.head(self.head_mlp(fused)), fused_tokens=fused_tokens, fused=fused
        )
        return outputs

    # -- losses ----------------------------------------------------------------------------------
    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        names = ["task_student"] if self.has_student_view else []
        if hp.use_factorization:
            names += [t for t in DHF_TERMS if t != "noise_task" or hp.use_noise_factor]
        if hp.use_self_distillation and self.has_student_view:
            names += DISTILL_TERMS
        return {"task": 1.0, **{name: float(getattr(hp, WEIGHTS[name])) for name in names}}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp, labels = self.hparams, batch.labels
        weights = self.loss_weights()
        values = {"task": lambda: task_loss(hp.task_loss, outputs["prediction"], labels)}
        if "student_prediction" in outputs:  # training mode, with a student view
            values["task_student"] = lambda: task_loss(
                hp.task_loss, outputs["student_prediction"], labels
            )
            if hp.use_self_distillation:
                values.update(self._distillation(outputs, labels))
        if hp.use_factorization:
            values.update(self._factorization(outputs, labels))
        return {
            name: weights[name] * compute()
            for name, compute in values.items()
            if name == "task" or weights.get(name, 0.0) > 0
        }

    def _factorization(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> dict:
        hp = self.hparams
        hom, het, noise = outputs["homogeneous"], outputs["heterogeneous"], outputs.get("noise")

        def align() -> torch.Tensor:
            return sum(cmd(hom[:, i], hom[:, j], hp.cmd_moments) for i, j in PAIRS) / len(PAIRS)

        def decorrelation() -> torch.Tensor:
            pairs = [(hom[:, m], het[:, m]) for m in range(len(MODALITIES))]
            pairs += [(het[:, i], het[:, j]) for i, j in PAIRS]
            if noise is not None:
                pairs += [
                    (part[:, m], noise[:, m]) for m in range(len(MODALITIES)) for part in (hom, het)
                ]
            return sum(difference_loss(a, b) for a, b in pairs)

        def noise_task() -> torch.Tensor:
            losses = [
                task_loss("mse", self.noise_adversaries[m](reverse_gradient(noise[:, i])), labels)
                for i, m in enumerate(MODALITIES)
            ]
            return sum(losses) / len(losses)

        def recon() -> torch.Tensor:
            return reconstruction_loss(outputs["reconstructed"], outputs["utterance"])

        values = {"homo_align": align, "decorrelation": decorrelation, "recon": recon}
        if noise is not None:
            values["noise_task"] = noise_task
        return values

    def _distillation(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> dict:
        hp = self.hparams
        student, teacher = outputs["student_fused_tokens"], outputs["fused_tokens"]
        reverse = reverse_weights(
            hp.distillation, outputs["student_prediction"], outputs["prediction"], labels
        )
        return {
            "distill_pred": lambda: distill(
                gaussian_kl, outputs["student_prediction"], outputs["prediction"], reverse
            ),
            "distill_repr": lambda: distill(
                softmax_kl(hp.distill_temperature),
                student,
                teacher,
                reverse if hp.reverse_representations else None,
            ),
            # batch-level: the complete view's moments are the target in every mode
            "distill_cmd": lambda: distill(
                moment_matching(hp.distill_cmd_moments), student, teacher
            ),
        }
