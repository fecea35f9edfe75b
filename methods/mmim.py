"""MMIM: MultiModal InfoMax (Han, Chen & Poria, EMNLP 2021), following the authors' code
(declare-lab/Multimodal-Infomax) and MMSA's configuration.

Text, audio and vision are encoded to vectors (audio and vision: an LSTM over the real steps, its
final hidden states of both directions, dropout and a Linear layer, d_ah = d_vh = 16 hidden and
16 out). A fusion network (dropout, Linear + tanh, Linear + tanh: the fused vector, d_prjh 128)
feeds the prediction. Hierarchical mutual-information maximisation:
  * MMILB, the input-level bound I(x; y) >= E[log q(y|x)] + H(y) with a Gaussian q, between text
    and vision and text and audio (and vision and audio with add_va): q's networks are trained in
    their own step (`extra_step`, own Adam, lr 1e-3, weight decay 1e-4, excluded from the main
    optimiser by `parameter_groups`); in the main step the encoders maximise the bound with q
    held fixed: term "mmilb" = -mmilb_weight * sum of log-likelihoods;
  * H(y) from label-split memories of recent batches (`LabelSplitMemory`; MMIM: mem_size 1):
    term "entropy" = -entropy_weight * sum of entropy estimates (MMIM subtracts it with the same
    weight as the likelihood, beta; here its own weight, 0.1 by default);
  * CPC between the fused vector and each unimodal vector (a linear prediction of the unimodal
    vector from the fused one, scored against the batch): term "cpc" = cpc_weight * sum of NCE.
Total: task (L1) + mmilb + entropy + cpc. The paper and code call cpc_weight alpha and
mmilb_weight beta (alpha = beta = 0.1); batch 32, lr 1e-3, weight decay 1e-4, gradient norm clip
1.0, xavier-normal initialisation of every matrix. A weight of 0 removes its term (and a zero
mmilb_weight skips the estimator step).

Text: as MMIM and MMSA, a pretrained Transformer over the dataset's token ids, fine-tuned, its
[CLS] state the text vector (d_tout = its hidden size; BERT group lr 5e-5, weight decay 1e-4),
whenever the dataset has tokens (`text_encoder: auto`); without tokens, or with `text_encoder:
features`, a (bidirectional) LSTM over the text features takes its place.

As MMSA's trainer (the defaults): each epoch a whole pass fitting q with its own optimiser
(`mmilb_schedule: passes`; its gradients flow through the encoders and are clipped, by global
norm 1.0, with every other parameter's), then the main pass; ReduceLROnPlateau (factor 0.5,
patience 20) on the validation loss; q in MMSA's form (`mmilb_reference_form: true`: no
activation on the log-variance and no -logvar/2 term, so q's own step can only inflate the
variance; false bounds the log-variance by tanh and keeps the term); a plain Linear output.
`mmilb_schedule: per_batch` is msabench's earlier form: one estimator step before every main
step on the same batch, on representations computed without gradient, clipping q's gradients
alone.

The entropy memories as MMSA's trainer keeps them (`entropy_memory: epoch`): cleared at each
epoch's start (the loop's `start_epoch`), the entropy counted from batch index memory_size + 1
of the epoch, no jitter on the covariance (`entropy_jitter: 0`; a sign with no more samples than
dimensions adds 0 where MMSA's logdet is -inf). msabench's earlier form, `entropy_memory:
rolling` with `entropy_jitter: 1e-3`, keeps them across epochs and counts from the first batch.

On the `mosei` kind the estimator pass reads the first half of each epoch's batches
(`mmilb_pass_fraction: 0.5`), as MMSA's trainer does on MOSEI.

Departures (docs/fidelity.md): inputs are the harness's standardised features unless the
dataset says `standardize: false`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from harness.data.spec import is_classification
from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import (
    MsaMethod,
    OptimHparams,
    TrainingPass,
    check_choice,
    register_method,
)
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.mi_estimators import CPC, MMILB, estimator_step
from methods.common.recurrent import LastStateEncoder
from methods.search_space import Choice, FloatRange

MODALITIES = ("text", "audio", "vision")
# (x, y) of each MMILB: q(y | x)
PAIRS = {"tv": ("text", "vision"), "ta": ("text", "audio"), "va": ("vision", "audio")}


@dataclass(frozen=True)
class MMIMHparams(OptimHparams):
    text_hidden: int = 64
    text_out: int = 64
    audio_hidden: int = 16  # d_ah
    vision_hidden: int = 16  # d_vh
    audio_out: int = 16  # d_aout
    vision_out: int = 16  # d_vout
    bidirectional: bool = True
    text_dropout: float = 0.1
    rnn_dropout: float = 0.0  # MMIM applies dropout_a/v only with several LSTM layers: 0 here
    fusion_hidden: int = 128  # d_prjh
    fusion_dropout: float = 0.1  # dropout_prj
    cpc_weight: float = 0.1  # alpha
    mmilb_weight: float = 0.1  # beta
    entropy_weight: float = 0.1  # beta in MMIM
    add_va: bool = False
    memory_size: int = 1  # batches per label sign (mem_size)
    # ENTROPY_MEMORIES: "epoch" (MMSA's trainer: the memories are cleared at each epoch's start
    # and the entropy counts from batch index memory_size + 1 of the epoch); "rolling"
    # (msabench's earlier form: kept across epochs, counted from the first batch)
    entropy_memory: str = "epoch"
    # added to the covariance's diagonal before logdet: 0 is MMSA's (a sign with no more samples
    # than dimensions then adds 0, where MMSA's logdet is -inf); msabench's earlier form: 1e-3
    entropy_jitter: float = 0.0
    mmilb_learning_rate: float = 1e-3
    mmilb_weight_decay: float = 1e-4
    mmilb_reference_form: bool = True  # MMSA's form (module docstring); False: bounded
    # MMILB_SCHEDULES: "passes" (MMSA's trainer: each epoch a whole pass fitting q by its own
    # optimiser, gradients through the encoders, clipped with all of them, then the main pass);
    # "per_batch" (msabench's earlier form: one step of q before every main step, on the same
    # batch's representations computed without gradient, clipping q's gradients alone)
    mmilb_schedule: str = "passes"
    # the share of each epoch's batches the estimator pass reads (MMSA's trainer: half on MOSEI,
    # all elsewhere; the `mosei` kind's default)
    mmilb_pass_fraction: float = 1.0
    task_loss: str = "l1"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    grad_clip: float = 1.0  # by global norm over every parameter, before each step
    # MMSA's MMIM trainer: ReduceLROnPlateau (factor 0.5, patience `when` = 20) on the main
    # optimiser, on the validation L1 loss
    lr_scheduler: str = "plateau"
    scheduler_factor: float = 0.5
    scheduler_patience: int = 20
    output_head: str = "linear"  # MMSA's MMIM ends in a plain Linear layer
    learning_rate_bert: float = 5e-5  # lr_bert
    weight_decay_bert: float = 1e-4


MMILB_SCHEDULES = ("passes", "per_batch")
ENTROPY_MEMORIES = ("epoch", "rolling")


def _check(hp: MMIMHparams, where: str = "hparams") -> None:
    check_choice(hp, "mmilb_schedule", MMILB_SCHEDULES, where)
    for key in ("cpc_weight", "mmilb_weight", "entropy_weight"):
        if getattr(hp, key) < 0:
            raise ConfigError(
                f"{where}.{key}: expected a non-negative weight, got {getattr(hp, key)}"
            )
    if hp.memory_size < 0:
        raise ConfigError(f"{where}.memory_size: expected >= 0 batches, got {hp.memory_size}")
    if not 0.0 < hp.mmilb_pass_fraction <= 1.0:
        raise ConfigError(
            f"{where}.mmilb_pass_fraction: expected a share in (0, 1], got {hp.mmilb_pass_fraction}"
        )
    check_choice(hp, "entropy_memory", ENTROPY_MEMORIES, where)
    if hp.entropy_jitter < 0:
        raise ConfigError(
            f"{where}.entropy_jitter: expected a non-negative number, got {hp.entropy_jitter}"
        )


@register_method("mmim")
class MMIM(MsaMethod):
    """MultiModal InfoMax. Outputs: prediction (B,), fusion (B, fusion_hidden), and the unimodal
    vectors text (B, text_out), audio (B, audio_out), vision (B, vision_out)."""

    Hparams = MMIMHparams
    TEXT_POOLING = "cls"
    # MMSA uses the same MMIM settings for MOSI, MOSEI and SIMS
    # MMSA uses the same MMIM settings for MOSI, MOSEI and SIMS; its trainer's estimator pass
    # reads half the batches on MOSEI
    KIND_DEFAULTS = {"mosi": {}, "mosei": {"mmilb_pass_fraction": 0.5}, "sims": {}}
    SEARCH_SPACE = {
        "learning_rate": FloatRange(3e-4, 3e-3, log=True),
        "cpc_weight": FloatRange(0.01, 1.0, log=True),
        "mmilb_weight": FloatRange(0.01, 1.0, log=True),
        "entropy_weight": FloatRange(0.01, 1.0, log=True),
        "fusion_hidden": Choice((64, 128)),
        "fusion_dropout": FloatRange(0.0, 0.5),
        "weight_decay": FloatRange(1e-6, 1e-3, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: MMIMHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        hp, dims = hparams, spec.feature_dims
        if self.text_mode == "pretrained":
            text_encoder: nn.Module = self.build_text_encoder("cls")
            text_out = text_encoder.out_size
        else:
            text_encoder = LastStateEncoder(
                dims["text"], hp.text_hidden, hp.text_out, hp.text_dropout, hp.bidirectional
            )
            text_out = hp.text_out
        self.out_dims = {"text": text_out, "audio": hp.audio_out, "vision": hp.vision_out}
        self.encoders = nn.ModuleDict(
            {
                "text": text_encoder,
                "audio": LastStateEncoder(
                    dims["audio"], hp.audio_hidden, hp.audio_out, hp.rnn_dropout, hp.bidirectional
                ),
                "vision": LastStateEncoder(
                    dims["vision"],
                    hp.vision_hidden,
                    hp.vision_out,
                    hp.rnn_dropout,
                    hp.bidirectional,
                ),
            }
        )
        self.fusion = nn.Sequential(
            nn.Dropout(hp.fusion_dropout),
            nn.Linear(sum(self.out_dims.values()), hp.fusion_hidden),
            nn.Tanh(),
            nn.Linear(hp.fusion_hidden, hp.fusion_hidden),
            nn.Tanh(),
        )
        self.head = RegressionHead(hp.fusion_hidden, spec.label_range, hp.output_head)
        self.cpc = nn.ModuleDict({m: CPC(hp.fusion_hidden, self.out_dims[m]) for m in MODALITIES})
        pairs = ("tv", "ta", "va") if hp.add_va else ("tv", "ta")
        self.mmilb = nn.ModuleDict(
            {
                pair: MMILB(
                    self.out_dims[PAIRS[pair][0]],
                    self.out_dims[PAIRS[pair][1]],
                    hp.memory_size,
                    hp.mmilb_reference_form,
                    jitter=hp.entropy_jitter,
                    memory_warmup=hp.memory_size + 1 if hp.entropy_memory == "epoch" else 0,
                )
                for pair in pairs
            }
        )
        pretrained = (
            {id(p) for p in text_encoder.parameters()} if self.text_mode == "pretrained" else set()
        )
        for parameter in self.parameters():  # MMIM: xavier_normal_ on every matrix but BERT's
            if parameter.dim() > 1 and id(parameter) not in pretrained:
                nn.init.xavier_normal_(parameter)
        # the per-batch schedule's own optimiser (with passes, the loop builds the pass's)
        self._estimator_optimizer = (
            torch.optim.Adam(
                self.estimator_parameters(),
                lr=hp.mmilb_learning_rate,
                weight_decay=hp.mmilb_weight_decay,
            )
            if hp.mmilb_schedule == "per_batch"
            else None
        )

    # -- parameters ------------------------------------------------------------------------------
    def estimator_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters of the MMILB networks (trained only in extra_step)."""
        return [p for p in self.mmilb.parameters() if p.requires_grad]

    def parameter_groups(self) -> list[dict]:
        estimator = {id(p) for p in self.estimator_parameters()}
        main = [p for p in self.parameters() if p.requires_grad and id(p) not in estimator]
        return [{"params": main}]

    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        return {
            "task": 1.0,
            "mmilb": hp.mmilb_weight,
            "entropy": hp.entropy_weight,
            "cpc": hp.cpc_weight,
        }

    def start_epoch(self, epoch: int) -> None:
        """With `entropy_memory: epoch` (MMSA's), forget the entropy memories of the last epoch."""
        if self.hparams.entropy_memory == "epoch":
            for estimator in self.mmilb.values():
                estimator.memory.clear()

    # -- model -----------------------------------------------------------------------------------
    def encode(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Unimodal vectors {m: (B, out_m)}."""
        encoded = {
            m: self.encoders[m](batch.features[m], batch.lengths[m])
            for m in MODALITIES
            if m != "text" or self.text_mode != "pretrained"
        }
        if self.text_mode == "pretrained":
            encoded["text"] = self.encoders["text"](batch.tokens)
        return encoded

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        encoded = self.encode(batch)
        fusion = self.fusion(torch.cat([encoded[m] for m in ("text", "audio", "vision")], dim=-1))
        return {"prediction": self.head(fusion), "fusion": fusion, **encoded}

    def _likelihoods(self, encoded: dict[str, torch.Tensor], frozen: bool) -> torch.Tensor:
        """Sum over pairs of mean log q(y|x): scalar; `frozen` lets no gradient reach q."""
        total = encoded["text"].new_zeros(())
        for pair, estimator in self.mmilb.items():
            x, y = (encoded[m] for m in PAIRS[pair])
            if frozen:
                params = {name: p.detach() for name, p in estimator.named_parameters()}
                total = total + functional_call(estimator, params, (x, y))
            else:
                total = total + estimator(x, y)
        return total

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp = self.hparams
        terms = {"task": task_loss(hp.task_loss, outputs["prediction"], batch.labels)}
        if hp.mmilb_weight > 0:
            # with whole passes q stays in the graph (MMSA: its gradients count in the clipped
            # norm, and its own optimiser is not stepped here); per batch it is held fixed
            frozen = hp.mmilb_schedule == "per_batch"
            terms["mmilb"] = -hp.mmilb_weight * self._likelihoods(outputs, frozen=frozen)
        if hp.entropy_weight > 0:
            entropy = sum(
                estimator.entropy(
                    outputs[PAIRS[pair][1]], self._signed(batch.labels), remember=self.training
                )
                for pair, estimator in self.mmilb.items()
            )
            terms["entropy"] = -hp.entropy_weight * entropy
        if hp.cpc_weight > 0:
            nce = sum(self.cpc[m](outputs["fusion"], outputs[m]) for m in MODALITIES)
            terms["cpc"] = hp.cpc_weight * nce
        return terms

    def _signed(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels (B,) whose sign splits the entropy memories: the score itself on the regression
        kinds (MMSA's labels > 0 and < 0), the class minus 0.5 on the binary kind (class 1
        positive, class 0 negative)."""
        return labels - 0.5 if is_classification(self.spec.kind) else labels

    def training_passes(self) -> list[TrainingPass]:
        """MMSA's schedule (`mmilb_schedule: passes`): before each main pass, a whole pass that
        fits q(y|x) by maximum likelihood with q's own Adam (term "mmilb_nll" = -sum of mean
        log-likelihoods); gradients flow through the encoders too (unused, but clipped with the
        rest), as in MMSA's `train_mmilb`."""
        hp = self.hparams
        if hp.mmilb_schedule != "passes" or hp.mmilb_weight == 0:
            return []
        group = {
            "params": self.estimator_parameters(),
            "lr": hp.mmilb_learning_rate,
            "weight_decay": hp.mmilb_weight_decay,
        }

        def terms(batch: Batch) -> dict[str, torch.Tensor]:
            return {"mmilb_nll": -self._likelihoods(self.encode(batch), frozen=False)}

        return [TrainingPass("mmilb", [group], terms, hp.mmilb_pass_fraction)]

    def extra_step(self, batch: Batch) -> dict[str, float]:
        """The per-batch estimator step (`mmilb_schedule: per_batch`): fit q(y|x) by maximum
        likelihood on detached representations."""
        if self.hparams.mmilb_weight == 0 or self._estimator_optimizer is None:
            return {}
        with torch.no_grad():
            encoded = self.encode(batch)
        loss = -self._likelihoods(encoded, frozen=False)
        return {
            "mmilb_lld": -estimator_step(self._estimator_optimizer, loss, self.hparams.grad_clip)
        }
