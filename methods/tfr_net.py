"""TFR-Net: Transformer-based Feature Reconstruction Network (Yuan, Li, Xu & Yu, "Transformer-based
Feature Reconstruction Network for Robust Multimodal Sentiment Analysis", ACM Multimedia 2021), as
MMSA has it: models/missingTask/TFR_NET/{model,alignment,generator,fusion}.py, its trainer
trains/missingTask/TFR_NET.py and the missing view of data_loader.py (`generate_m`); MMSA's
config key "tfr_net" (alignmentModule crossmodal_attn, generatorModule linear, fusionModule
c_gate, recloss_type combine). Checked against MMSA's own model: with its state dict loaded, the
eval predictions and the reconstruction loss agree to 1e-7 (docs/fidelity.md).

B = batch, T_m = the dataset's padded steps of modality m (every sequence is padded to them), D_m
= the width of modality m (the text model's hidden size on token ids), d = model_dim.

1. Incomplete view (training only). Each real step of each modality is dropped where its uniform
   number is not above <m>_missing_rate (MMSA: 0.2 each, `uniform > rate` kept): audio and vision
   frames are zeroed; on token ids the token becomes [UNK] (the vocabulary's; 100 in BERT's),
   never [CLS] or [SEP]; on text features the step is zeroed. `missing_view` "per_sample"
   (default; MMSA draws the view once per sample for the whole run) fixes each training row's
   numbers by (seed, batch.index), numpy's default_rng([seed, index]); "per_batch" draws afresh
   for every batch from a torch generator. The seed comes from torch's global RNG when the model
   is built, so the run seed fixes the view (MMSA: missing_seed 1111 in every run; `missing_seed`
   >= 0 fixes it across runs). Not in the state dict. In eval mode forward reads the batch as
   given (the robustness stage applies its masks); MMSA validates and tests on an incomplete view.
2. Alignment (common/feature_reconstruction.py, MMSA's CM_ATTN): text dropout, Conv1d
   projections to d (kernels 1/5/3, padding (k - 1) / 2, no bias; none where D_m = d); per target
   modality a memory Transformer (max(levels, memory_levels) layers) and two cross-modal ones
   (levels layers, the source's attention dropout): MulT's pre-norm encoder with sinusoidal
   positions, separate key/value dropout, MMSA's future mask: aligned_m (B, T_m, 3d).
3. Fusion (common/gated_fusion.py, MMSA's GATE_F): per modality a BiGRU (3 layers), a Conv1d
   gate, tanh(Linear), a max over time and dropout (hidden 36/20/48), then BatchNorm1d, Linear(104,
   128), LeakyReLU, dropout and the output head: "prediction" (B,).
4. Reconstruction (training, `use_generator`): a temporal Transformer per modality (width T_m,
   max(levels, memory_levels) layers, num_temporal_heads heads, no positions) over aligned_m and
   a Linear(3d, D_m) generator rebuild the complete input (on token ids: the text model's states
   of the complete tokens, with their gradient, as MMSA's) at the dropped steps. Per modality m:
     rec_<m> [weight_gen_<m>]                   SmoothL1 sum over the dropped steps / (their
                                                element count + 1e-4) (MMSA's RECLoss)
     sim_<m> [weight_gen_<m> * weight_sim_loss] CMD (3 moments) of the masked tensors / count
   Both are 0 in the first `generator_warmup_epochs` epochs (MMSA adds them from epoch 2);
   task = L1. A zero weight removes its term.
Outputs: prediction (B,), fused (B, H_t + H_a + H_v); in training with the incomplete view
dropped_<m> (B, T_m) bool, and after the warm-up generated_<m> and target_<m> (B, T_m, D_m).

Recipe (MMSA's trainer): Adam; lr 1e-3 (MOSEI, SIMS 2e-3) and weight decay 1e-3 outside BERT;
BERT lr 2e-6 (1e-5), weight decay 1e-4, its biases and LayerNorm weights without decay; batch 24
(SIMS 16); gradients zeroed every update_epochs = 4 batches but a step after every batch on the
running sum and one more at the 4th (5 Adam steps per 4 batches: `grad_accumulation` 4,
`grad_accumulation_mode` "running"); each gradient entry clipped to 0.8 after every backward;
ReduceLROnPlateau (0.1, patience 5, SIMS 10) on the validation loss; a linear output layer.

Departures (each a switch unless stated; docs/fidelity.md):
  * `temporal_attention` "batch" is MMSA's code: its (T, B, 3d) -> (B, 3d, T) permute makes the
    batch the temporal Transformer's sequence axis (a sample's reconstruction attends to the
    batch's earlier samples); "channels" attends over each sample's 3d channels. Predictions
    never read it.
  * A temporal Transformer has the largest divisor of T_m not above num_temporal_heads heads
    (MMSA asserts that 25 divides T_m: it fails on SIMS's 39 tokens and on 5-step features).
  * `attention_masking` "future" and `fusion_pooling` "all_steps" (MMSA's) read padding;
    "padding" / "real_steps" do not. `positions_skip_zero_steps` is MMSA's fairseq rule (no
    position at a step whose first channel is exactly 0). `memory_levels` is MMSA's fixed 3.
  * Not switches: empty sequences read as one step (MMSA's packed GRU fails on them); the BiGRU
    runs unpacked (the same function); padded token states are zero (MMSA: BERT's states at
    [PAD]); early stopping on the harness's metric (validation MAE: MMSA's L1 "Loss").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.data.types import MODALITIES, Batch, DataSpec, TokenBatch
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, check_choice, register_method
from methods.common.encoders import pad_steps
from methods.common.feature_reconstruction import (
    MISSING_VIEWS,
    RECONSTRUCTION_LOSSES,
    TEMPORAL_AXES,
    AlignmentConfig,
    CrossModalAlignment,
    MissingView,
    dropped_steps,
    dropped_tokens,
    reconstruction_terms,
    with_unknown_tokens,
)
from methods.common.gated_fusion import FUSION_POOLINGS, GatedFusion, real_mask
from methods.common.losses import task_loss
from methods.common.transformer import MASKINGS
from methods.search_space import Choice, FloatRange


@dataclass(frozen=True)
class TFRNetHparams(OptimHparams):
    model_dim: int = 30
    num_heads: int = 6
    levels: int = 3  # cross-modal Transformer layers
    # memory and temporal Transformers: max(levels, memory_levels) layers (MMSA: max(nlevels, 3))
    memory_levels: int = 3
    text_kernel: int = 1
    audio_kernel: int = 5
    vision_kernel: int = 3
    text_dropout: float = 0.2
    attn_dropout_text: float = 0.2
    attn_dropout_audio: float = 0.1
    attn_dropout_vision: float = 0.0
    relu_dropout: float = 0.2
    res_dropout: float = 0.2
    embed_dropout: float = 0.2
    num_temporal_heads: int = 25
    fusion_text_hidden: int = 36
    fusion_audio_hidden: int = 20
    fusion_vision_hidden: int = 48
    fusion_gru_layers: int = 3
    fusion_dropout: float = 0.2
    classifier_hidden: int = 128
    classifier_dropout: float = 0.0
    use_generator: bool = True  # MMSA's without_generator: false
    reconstruction_loss: str = "combine"  # RECONSTRUCTION_LOSSES (MMSA's recloss_type)
    weight_gen_text: float = 5.0
    weight_gen_audio: float = 2.0
    weight_gen_vision: float = 20.0
    weight_sim_loss: float = 5.0
    cmd_moments: int = 3
    generator_warmup_epochs: int = 1  # reconstruction terms from epoch warmup + 1 on
    text_missing_rate: float = 0.2
    audio_missing_rate: float = 0.2
    vision_missing_rate: float = 0.2
    missing_view: str = "per_sample"  # MISSING_VIEWS
    missing_seed: int = -1  # < 0: drawn from the run seed; MMSA: 1111 for every run
    # the reference's reading of padding (module docstring): MMSA's by default
    attention_masking: str = "future"
    positions_skip_zero_steps: bool = True
    fusion_pooling: str = "all_steps"
    temporal_attention: str = "batch"  # TEMPORAL_AXES
    task_loss: str = "l1"
    learning_rate: float = 1e-3  # learning_rate_other
    weight_decay: float = 1e-3  # weight_decay_other
    batch_size: int = 24
    grad_clip: float = 0.8
    grad_clip_mode: str = "value"
    # MMSA's trainer: zero_grad every update_epochs = 4 batches, a step after every batch on the
    # running sum and one more at the 4th
    grad_accumulation: int = 4
    grad_accumulation_mode: str = "running"
    lr_scheduler: str = "plateau"
    scheduler_factor: float = 0.1
    scheduler_patience: int = 5
    output_head: str = "linear"
    learning_rate_bert: float = 2e-6
    weight_decay_bert: float = 1e-4
    bert_no_decay_norms: bool = True


GEN_WEIGHTS = {m: f"weight_gen_{m}" for m in MODALITIES}
CHOICES = {
    "missing_view": MISSING_VIEWS,
    "reconstruction_loss": RECONSTRUCTION_LOSSES,
    "attention_masking": MASKINGS,
    "fusion_pooling": FUSION_POOLINGS,
    "temporal_attention": TEMPORAL_AXES,
}
POSITIVE = (
    "levels", "memory_levels", "num_temporal_heads", "fusion_text_hidden", "fusion_audio_hidden",
    "fusion_vision_hidden", "fusion_gru_layers", "classifier_hidden", "cmd_moments",
)  # fmt: skip


def _check(hp: TFRNetHparams, where: str = "hparams") -> None:
    """Raise ConfigError for hyperparameters that cannot build or train the model."""
    if hp.model_dim < 1 or hp.num_heads < 1 or hp.model_dim % hp.num_heads:
        raise ConfigError(
            f"{where}.num_heads: expected a positive divisor of model_dim={hp.model_dim}, "
            f"got {hp.num_heads}"
        )
    for key in POSITIVE:
        if getattr(hp, key) < 1:
            raise ConfigError(f"{where}.{key}: expected a positive integer, got {getattr(hp, key)}")
    for m in MODALITIES:
        kernel = getattr(hp, f"{m}_kernel")
        if kernel < 1 or kernel % 2 == 0:
            raise ConfigError(
                f"{where}.{m}_kernel: expected an odd positive size (MMSA's padding (k - 1) / 2 "
                f"keeps the length only then), got {kernel}"
            )
        rate = getattr(hp, f"{m}_missing_rate")
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"{where}.{m}_missing_rate: expected a number in [0, 1], got {rate}")
    for key in (*GEN_WEIGHTS.values(), "weight_sim_loss", "generator_warmup_epochs"):
        if getattr(hp, key) < 0:
            raise ConfigError(f"{where}.{key}: expected >= 0, got {getattr(hp, key)}")
    for key, choices in CHOICES.items():
        check_choice(hp, key, choices, where)


def _alignment_config(hp: TFRNetHparams) -> AlignmentConfig:
    """The alignment block's settings from the hyperparameters."""
    return AlignmentConfig(
        model_dim=hp.model_dim,
        num_heads=hp.num_heads,
        levels=hp.levels,
        memory_levels=hp.memory_levels,
        kernels={m: getattr(hp, f"{m}_kernel") for m in MODALITIES},
        attn_dropout={m: getattr(hp, f"attn_dropout_{m}") for m in MODALITIES},
        text_dropout=hp.text_dropout,
        relu_dropout=hp.relu_dropout,
        res_dropout=hp.res_dropout,
        embed_dropout=hp.embed_dropout,
        temporal_heads=hp.num_temporal_heads,
        masking=hp.attention_masking,
        skip_zero_steps=hp.positions_skip_zero_steps,
        temporal_axis=hp.temporal_attention,
    )


@register_method("tfr_net")
class TFRNet(MsaMethod):
    """TFR-Net; outputs as in the module docstring."""

    Hparams = TFRNetHparams
    TEXT_POOLING = "tokens"
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {
            "learning_rate": 2e-3,
            "learning_rate_bert": 1e-5,
            "weight_gen_text": 5e-6,
            "weight_gen_audio": 2e-6,
            "weight_gen_vision": 2e-5,
        },
        "sims": {
            "levels": 2,
            "relu_dropout": 0.0,
            "embed_dropout": 0.1,
            "classifier_dropout": 0.1,
            "batch_size": 16,
            "learning_rate": 2e-3,
            "learning_rate_bert": 1e-5,
            "scheduler_patience": 10,
            "weight_gen_text": 1.0,
            "weight_gen_audio": 0.01,
            "weight_gen_vision": 1e-4,
        },
    }
    # centred on MMSA's MOSI values; 3 and 6 heads divide every model_dim choice
    SEARCH_SPACE = {
        "learning_rate": FloatRange(3e-4, 3e-3, log=True),
        "model_dim": Choice((24, 30, 36)),
        "levels": Choice((2, 3)),
        "fusion_dropout": FloatRange(0.0, 0.4),
        "weight_gen_text": FloatRange(0.5, 20.0, log=True),
        "weight_gen_audio": FloatRange(0.2, 10.0, log=True),
        "weight_gen_vision": FloatRange(2.0, 50.0, log=True),
        "weight_sim_loss": FloatRange(1.0, 10.0, log=True),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: TFRNetHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        hp = hparams
        self.dims = dict(spec.feature_dims)
        self.steps = {m: max(spec.max_lengths[m], 1) for m in MODALITIES}
        self.text_encoder = None
        if self.text_mode == "pretrained":
            assert spec.tokens is not None
            self.text_encoder = self.build_text_encoder("tokens")
            self.dims["text"] = self.text_encoder.out_size
            self.steps["text"] = spec.tokens.max_length
        self.alignment = CrossModalAlignment(self.dims, self.steps, _alignment_config(hp))
        width = 3 * hp.model_dim
        if hp.use_generator:
            self.generators = nn.ModuleDict({m: nn.Linear(width, self.dims[m]) for m in MODALITIES})
        self.fusion = GatedFusion(
            width,
            {m: getattr(hp, f"fusion_{m}_hidden") for m in MODALITIES},
            hp.fusion_gru_layers,
            hp.fusion_dropout,
            hp.classifier_hidden,
            hp.classifier_dropout,
            spec.label_range,
            hp.output_head,
            hp.fusion_pooling,
        )
        seed = hp.missing_seed
        if seed < 0:  # from the run seed (the global RNG after the weights are drawn)
            seed = int(torch.randint(2**31 - 1, (1,)).item())
        rates = {m: getattr(hp, f"{m}_missing_rate") for m in MODALITIES}
        self.missing = MissingView(seed, self.steps, rates, hp.missing_view)
        self.epoch = 1

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def has_missing_view(self) -> bool:
        return any(getattr(self.hparams, f"{m}_missing_rate") > 0 for m in MODALITIES)

    @property
    def generator_active(self) -> bool:
        hp = self.hparams
        return hp.use_generator and self.epoch > hp.generator_warmup_epochs

    # -- inputs ----------------------------------------------------------------------------------
    def encode_tokens(self, views: list[TokenBatch]) -> list[torch.Tensor]:
        """The text model's states of token batches of the same shape, in one pass:
        each (B, T_text, H), zero at padding."""
        assert self.text_encoder is not None
        joined = TokenBatch(
            *(torch.cat([getattr(v, f) for v in views]) for f in ("ids", "mask", "segments")),
            views[0].unk_id,
        )
        states = pad_steps(self.text_encoder(joined), self.steps["text"])
        return list(states.split(views[0].ids.shape[0]))

    def read(self, batch: Batch, keep: dict[str, torch.Tensor] | None) -> dict[str, dict]:
        """The model's inputs: {"inputs", "lengths", and with `keep` (the incomplete view's
        keep-masks {m: (B, T_m)}) "targets" (complete) and "dropped" ({m: (B, T_m) bool})}."""
        read: dict[str, dict] = {"inputs": {}, "lengths": {}, "targets": {}, "dropped": {}}
        for m in MODALITIES:
            if m == "text" and self.text_encoder is not None:
                self._read_tokens(batch, keep, read)
                continue
            x, lengths = pad_steps(batch.features[m], self.steps[m]), batch.lengths[m]
            read["lengths"][m] = lengths
            read["inputs"][m] = x
            if keep is not None:
                dropped = dropped_steps(keep[m], lengths, self.steps[m])
                read["inputs"][m] = x * (~dropped).unsqueeze(-1).to(x.dtype)
                read["targets"][m], read["dropped"][m] = x, dropped
        return read

    def _read_tokens(self, batch: Batch, keep: dict | None, read: dict) -> None:
        tokens = batch.tokens
        if tokens is None:
            raise ConfigError(f"method {self.name}: the pretrained text encoder needs tokens")
        read["lengths"]["text"] = tokens.lengths
        if keep is None:
            read["inputs"]["text"] = self.encode_tokens([tokens])[0]
            return
        dropped = dropped_tokens(keep["text"], tokens)
        incomplete, complete = self.encode_tokens([with_unknown_tokens(tokens, dropped), tokens])
        read["inputs"]["text"], read["targets"]["text"] = incomplete, complete
        extra = self.steps["text"] - dropped.shape[1]
        read["dropped"]["text"] = nn.functional.pad(dropped, (0, extra), value=False)

    # -- model -----------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        view = self.training and self.has_missing_view
        keep = self.missing.keep(batch.index.cpu()) if view else None
        read = self.read(batch, keep)
        masks = {m: real_mask(n, self.steps[m]) for m, n in read["lengths"].items()}
        generate = view and self.generator_active
        aligned, temporal = self.alignment(read["inputs"], masks, temporal=generate)
        fused, prediction = self.fusion(aligned, read["lengths"])
        outputs = {"prediction": prediction, "fused": fused}
        if view:
            outputs.update({f"dropped_{m}": d for m, d in read["dropped"].items()})
        if generate:
            assert temporal is not None
            for m in MODALITIES:
                outputs[f"generated_{m}"] = self.generators[m](temporal[m])
                outputs[f"target_{m}"] = read["targets"][m]
        return outputs

    # -- losses ----------------------------------------------------------------------------------
    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        weights = {"task": 1.0}
        if not hp.use_generator:
            return weights
        for m, key in GEN_WEIGHTS.items():
            weights[f"rec_{m}"] = float(getattr(hp, key))
            if hp.reconstruction_loss == "combine":
                weights[f"sim_{m}"] = float(getattr(hp, key)) * hp.weight_sim_loss
        return weights

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """task always; in training with the incomplete view also rec_<m> and sim_<m> (zero in
        the warm-up epochs); a term of weight 0 is left out."""
        hp = self.hparams
        terms = {"task": task_loss(hp.task_loss, outputs["prediction"], batch.labels)}
        if not (hp.use_generator and "dropped_text" in outputs):
            return terms
        weights = self.loss_weights()
        for m in MODALITIES:
            if f"generated_{m}" in outputs:
                parts = reconstruction_terms(
                    outputs[f"generated_{m}"],
                    outputs[f"target_{m}"],
                    outputs[f"dropped_{m}"],
                    hp.reconstruction_loss,
                    hp.cmd_moments,
                )
            else:  # warm-up: MMSA adds no reconstruction loss in its first epoch
                zero = outputs["prediction"].new_zeros(())
                parts = {p.split("_")[0]: zero for p in weights if p.endswith(f"_{m}")}
            for part, value in parts.items():
                name = f"{part}_{m}"
                if weights[name] > 0:
                    terms[name] = weights[name] * value
        return terms
