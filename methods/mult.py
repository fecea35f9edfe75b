"""MulT: Multimodal Transformer for unaligned sequences (Tsai et al., ACL 2019), as MMSA has it.

Each modality is projected to a common dimension d by a temporal Conv1d (no bias). For every
target modality, two cross-modal Transformers let the target attend to each of the other two
(source) modalities (six in all, `methods.common.transformer.CrossModalTransformer`); the two
outputs are concatenated (2d) and a self-attention "memory" Transformer runs over them. The last
step of each memory output is taken, the three are concatenated (6d) and passed through
MulT's residual block (Linear, ReLU, dropout, Linear, + input) and an output layer. No CTC
(unaligned input, as in MMSA). Loss: L1 on y (MMSA's regression trainer).

MMSA defaults (MOSI): d 50, 10 heads, 4 levels (memory Transformers: max(levels, 3) layers),
conv kernels 5/5/5, dropouts: text input 0.5, attention 0.3 (text) / 0.2 (audio) / 0.0 (vision),
relu 0.0, residual 0.0, embedding 0.2, output 0.5; batch 16, lr 2e-3. SIMS: 2 levels (memory 3),
kernels 5/1/1, text 0.3, attention 0.2/0.1/0.0, residual 0.2, embedding 0.1, output 0.1. As in
MulT, a cross-modal Transformer uses the attention dropout of its *source* modality, the memory
Transformers that of text.

Reference (docs/fidelity.md has every difference). Defaults follow MMSA's MulT (its model and
its MULT trainer); where MMSA and the original MulT (yaohungt/Multimodal-Transformer) differ,
the switch says which is which:
  * `positional_embeddings` False: MMSA's encoder is built without them; the original adds
    sinusoidal positions (True);
  * `attention_masking` "future" with `pooling` "last_padded": MMSA's causal future mask, padding
    attended, the last step of the sequence padded to the dataset's length read (h[-1], as the
    original MulT reads it too); msabench's "padding" masks with pooling "last" (the last
    real step) or "mean" make predictions independent of padding;
  * `conv_padding` "valid": MMSA's and MulT's Conv1d without padding (kernel 5 shortens a
    sequence by 4) and no projection where a modality already has model_dim features; "same"
    keeps every length (a sequence shorter than the kernel, e.g. utterance-level features, is
    zero-padded to the kernel's length: MMSA's code would fail on it);
  * `separate_kv_dropout` True: MMSA and MulT drop out keys and values with separate masks;
  * training (MMSA's trainer): Adam without weight decay, 8 batches per step, each gradient
    entry clipped to 0.6 after every backward, ReduceLROnPlateau (factor 0.1, patience 5; SIMS
    10) on the validation loss; output a plain Linear layer (`output_head` "linear").
Not switchable: inputs are the harness's standardised features (MMSA reads raw ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, register_method
from methods.common.encoders import masked_mean
from methods.common.heads import RegressionHead
from methods.common.losses import task_loss
from methods.common.transformer import MASKINGS, CrossModalTransformer, last_real_step
from methods.search_space import Choice, FloatRange

MODALITIES = ("text", "audio", "vision")
POOLINGS = ("last_padded", "last", "mean")
CONV_PADDINGS = ("valid", "same")


@dataclass(frozen=True)
class MulTHparams(OptimHparams):
    model_dim: int = 50
    num_heads: int = 10
    levels: int = 4  # layers of each cross-modal Transformer
    memory_levels: int = 4  # layers of each memory Transformer (MulT: max(levels, 3))
    text_kernel: int = 5
    audio_kernel: int = 5
    vision_kernel: int = 5
    text_dropout: float = 0.5  # on the text input features
    attn_dropout_text: float = 0.3
    attn_dropout_audio: float = 0.2
    attn_dropout_vision: float = 0.0
    relu_dropout: float = 0.0
    res_dropout: float = 0.0
    embed_dropout: float = 0.2
    output_dropout: float = 0.5
    # The reference's architecture (module docstring): each switch says whose default it takes.
    # MMSA and MulT read h[-1], the last step of the sequence padded to the dataset's length
    # ("last_padded"); "last": the last real step; "mean": the mean over real steps
    pooling: str = "last_padded"
    positional_embeddings: bool = False  # MMSA: none; the original MulT: sinusoidal (True)
    # "future": MMSA's attn_mask (causal future mask, padding attended); "padding": key padding
    # masks from the lengths, padded rows zeroed
    attention_masking: str = "future"
    # "valid": MMSA's and MulT's Conv1d (no padding: kernel k shortens a sequence by k - 1, and
    # no projection where the width already is model_dim); "same": every length kept
    conv_padding: str = "valid"
    separate_kv_dropout: bool = True  # MMSA and MulT: keys and values get their own dropout
    task_loss: str = "l1"
    learning_rate: float = 2e-3
    batch_size: int = 16
    # MMSA's MULT trainer: Adam without weight decay, gradients of 8 batches summed per step,
    # each entry clipped to 0.6 after every backward, ReduceLROnPlateau (factor 0.1, patience 5
    # on MOSI, 10 on SIMS) on the validation L1 loss
    grad_clip: float = 0.6
    grad_clip_mode: str = "value"
    grad_accumulation: int = 8
    lr_scheduler: str = "plateau"
    scheduler_factor: float = 0.1
    scheduler_patience: int = 5
    output_head: str = "linear"  # MMSA's MULT: out_layer, a plain Linear layer


def _check(hp: MulTHparams, where: str = "hparams") -> None:
    """Raise ConfigError for hyperparameters that cannot build a model."""
    if hp.model_dim < 1 or hp.num_heads < 1 or hp.model_dim % hp.num_heads != 0:
        raise ConfigError(
            f"{where}.num_heads: expected a positive divisor of model_dim={hp.model_dim}, "
            f"got {hp.num_heads}"
        )
    for key in ("levels", "memory_levels", "text_kernel", "audio_kernel", "vision_kernel"):
        if getattr(hp, key) < 1:
            raise ConfigError(f"{where}.{key}: expected a positive integer, got {getattr(hp, key)}")
    if hp.pooling not in POOLINGS:
        raise ConfigError(f"{where}.pooling: expected one of {list(POOLINGS)}, got {hp.pooling!r}")
    if hp.conv_padding not in CONV_PADDINGS:
        raise ConfigError(
            f"{where}.conv_padding: expected one of {list(CONV_PADDINGS)}, got {hp.conv_padding!r}"
        )
    if hp.attention_masking not in MASKINGS:
        raise ConfigError(
            f"{where}.attention_masking: expected one of {list(MASKINGS)}, "
            f"got {hp.attention_masking!r}"
        )
    if (hp.pooling == "last_padded") != (hp.attention_masking == "future"):
        raise ConfigError(
            f"{where}.pooling/attention_masking: 'last_padded' reads the last padded step, which "
            "only the 'future' masking computes (padding masks zero it): set both (MMSA's) or "
            f"neither, got pooling {hp.pooling!r} with attention_masking {hp.attention_masking!r}"
        )


def _sources(target: str) -> tuple[str, str]:
    return tuple(m for m in MODALITIES if m != target)  # type: ignore[return-value]


@register_method("mult")
class MulT(MsaMethod):
    """Multimodal Transformer. Outputs: prediction (B,), fused (B, 6 * model_dim)."""

    Hparams = MulTHparams
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {
            "model_dim": 30,
            "num_heads": 6,
            "audio_kernel": 1,
            "vision_kernel": 3,
            "text_dropout": 0.3,
            "attn_dropout_text": 0.4,
            "attn_dropout_audio": 0.0,
            "embed_dropout": 0.0,
            "batch_size": 4,
            "learning_rate": 5e-4,
            "scheduler_patience": 20,
        },
        "sims": {
            "levels": 2,
            "memory_levels": 3,
            "audio_kernel": 1,
            "vision_kernel": 1,
            "text_dropout": 0.3,
            "attn_dropout_text": 0.2,
            "attn_dropout_audio": 0.1,
            "res_dropout": 0.2,
            "embed_dropout": 0.1,
            "output_dropout": 0.1,
            "scheduler_patience": 10,
        },
    }
    # centred on the reference sizes (d 50, 10 heads, 4 + 4 levels); 5 and 10 heads divide every
    # model_dim choice. The default-budget params.yaml fixes small sizes instead (not tuned).
    SEARCH_SPACE = {
        "learning_rate": FloatRange(5e-4, 3e-3, log=True),
        "model_dim": Choice((30, 40, 50)),
        "num_heads": Choice((5, 10)),
        "levels": Choice((2, 3, 4)),
        "memory_levels": Choice((3, 4)),
        "embed_dropout": FloatRange(0.0, 0.3),
        "output_dropout": FloatRange(0.0, 0.5),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: MulTHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        d = hparams.model_dim
        kernels = {
            "text": hparams.text_kernel,
            "audio": hparams.audio_kernel,
            "vision": hparams.vision_kernel,
        }
        self.kernels = kernels
        valid = hparams.conv_padding == "valid"
        # MMSA and MulT project only a modality whose width is not already d
        self.projections = nn.ModuleDict(
            {
                m: nn.Conv1d(
                    spec.feature_dims[m],
                    d,
                    kernels[m],
                    padding="valid" if valid else "same",
                    bias=False,
                )
                for m in MODALITIES
                if not (valid and spec.feature_dims[m] == d)
            }
        )
        attn_dropout = {
            "text": hparams.attn_dropout_text,
            "audio": hparams.attn_dropout_audio,
            "vision": hparams.attn_dropout_vision,
        }
        common = {
            "relu_dropout": hparams.relu_dropout,
            "res_dropout": hparams.res_dropout,
            "embed_dropout": hparams.embed_dropout,
            "positions": hparams.positional_embeddings,
            "masking": hparams.attention_masking,
            "separate_kv_dropout": hparams.separate_kv_dropout,
        }
        self.crossmodal = nn.ModuleDict(
            {
                f"{target}_from_{source}": CrossModalTransformer(
                    d, hparams.num_heads, hparams.levels, attn_dropout[source], **common
                )
                for target in MODALITIES
                for source in _sources(target)
            }
        )
        self.memory = nn.ModuleDict(
            {
                m: CrossModalTransformer(
                    2 * d, hparams.num_heads, hparams.memory_levels, attn_dropout["text"], **common
                )
                for m in MODALITIES
            }
        )
        combined = 2 * d * len(MODALITIES)
        self.proj1 = nn.Linear(combined, combined)
        self.proj2 = nn.Linear(combined, combined)
        self.head = RegressionHead(combined, spec.label_range, hparams.output_head)

    def project(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Conv1d projections with their masks and lengths: {m: ((B, T'_m, d), (B, T'_m),
        (B,))}. With pooling "last_padded" every sequence is first padded to the dataset's
        length, as MMSA's pickles are; a "valid" convolution shortens it by kernel - 1 (a
        sequence shorter than the kernel, e.g. utterance-level features, is zero-padded to the
        kernel's length first); an empty modality (T_m = 0) becomes one zero step. With
        "padding" masking the projections are zero at padding."""
        hp = self.hparams
        projected = {}
        for m in MODALITIES:
            x, mask, lengths = batch.features[m], batch.mask(m), batch.lengths[m]
            steps = self.spec.max_lengths[m] if hp.pooling == "last_padded" else x.shape[1]
            if hp.conv_padding == "valid" and m in self.projections:
                steps = max(steps, self.kernels[m])  # shorter than the kernel (MMSA would fail)
            if x.shape[1] < steps:
                extra = steps - x.shape[1]
                x, mask = F.pad(x, (0, 0, 0, extra)), F.pad(mask, (0, extra), value=False)
            elif hp.pooling == "last_padded":  # beyond the dataset's length there is only padding
                x, mask = x[:, :steps], mask[:, :steps]
            if x.shape[1] == 0:
                x, mask = x.new_zeros(x.shape[0], 1, x.shape[2]), mask.new_zeros(x.shape[0], 1)
            if m == "text":
                x = F.dropout(x, hp.text_dropout, self.training)
            if m in self.projections:
                x = self.projections[m](x.transpose(1, 2)).transpose(1, 2)
            if hp.conv_padding == "valid" and m in self.projections:
                shorter = self.kernels[m] - 1  # output t covers inputs t .. t + k - 1
                lengths = (lengths - shorter).clamp(min=1)
                mask = torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1).to(x.device)
            if hp.attention_masking == "padding":
                x = x * mask.unsqueeze(-1).to(x.dtype)
            projected[m] = (x, mask, lengths)
        return projected

    def summarise(self, target: str, projected: dict) -> torch.Tensor:
        """Both cross-modal views of `target`, its memory Transformer, pooling: (B, 2 d)."""
        x, mask, lengths = projected[target]
        views = [
            self.crossmodal[f"{target}_from_{source}"](x, mask, *projected[source][:2])
            for source in _sources(target)
        ]
        memory = self.memory[target](torch.cat(views, dim=-1), mask)
        if self.hparams.pooling == "last_padded":
            return memory[:, -1]
        if self.hparams.pooling == "mean":
            return masked_mean(memory, mask)
        return last_real_step(memory, lengths)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        projected = self.project(batch)
        fused = torch.cat([self.summarise(m, projected) for m in MODALITIES], dim=-1)
        hidden = F.dropout(F.relu(self.proj1(fused)), self.hparams.output_dropout, self.training)
        return {"prediction": self.head(self.proj2(hidden) + fused), "fused": fused}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}
