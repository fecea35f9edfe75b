"""TETFN: text enhanced Transformer fusion network (Wang et al., Pattern Recognition 2023).

Paper: Di Wang, Xutong Guo, Yumin Tian, Jinhui Liu, LiHuo He, Xuemei Luo, "TETFN: A text
enhanced transformer fusion network for multimodal sentiment analysis", Pattern Recognition 136
(2023) 109259. Reference code: MMSA master (thuiar/MMSA a94e65d) models/multiTask/TETFN.py and
trains/multiTask/TETFN.py, config key "tetfn" of config/config_regression.json.

Network (MMSA's). Text: the token states of a fine-tuned pretrained Transformer (BERT), projected
by Conv1d(H, d, text_kernel, no padding, no bias). Audio and vision: an LSTM over the padded
sequence, then Conv1d(hidden, d, kernel, no bias). Six cross-modal Transformers (MulT's encoder,
methods/common/transformer.py): text attends to audio and to vision, audio and vision attend to
text, and two text-enhanced ones (methods/common/text_enhanced.py): vision first attends to text,
then audio attends to that text-enhanced vision (and the same with audio and vision swapped).
Each target's two outputs are concatenated (2d) into a self-attention memory Transformer whose
last step is read; [text; audio; vision] (6d) feeds the fused head. Each unimodal head reads the
max over time of its modality's projection (d); every head is Self-MM's (dropout -> Linear+ReLU,
its representation -> Linear+ReLU -> Linear(1)). Self-MM's unimodal label generation (ULGM,
methods/common/label_generation.py): MMSA's TETFN trainer is its SELF_MM trainer (same label
update, same loss), so the shared module runs with Self-MM's defaults.

Loss (named terms): "task" = |y_hat_m - y_m| (mean over the batch); for s in text/audio/vision,
"s" = unimodal_weight * mean_i tanh(|y_s(i) - y_m(i)|) |y_hat_s(i) - y_s(i)|.

Reference settings (MMSA config_regression.json, MOSI): d 50, 5 heads, Conv1d kernels text 1,
audio 1, vision 1; LSTM hidden audio 16, vision 64; attention dropout 0.1 (text) / 0.0 (audio) /
0.1 (vision), relu 0.0, residual 0.1, embedding 0.0; heads fusion/text/audio/vision 64/32/32/16,
dropouts 0; batch 64; Adam with groups: BERT lr 3e-5 (weight decay 1e-3, none on its biases and
LayerNorm weights), audio sub-network lr 5e-4 (decay 0.01), vision sub-network lr 3e-4 (decay
0), everything else lr 3e-4 (decay 0.01); gradients of update_epochs = 4 batches summed per
step, no clipping, no schedule; the fused prediction a plain Linear output. Every cross-modal
and memory Transformer has 2 layers (MMSA's get_network ignores its `layers` argument), the
text enhancer 1; a cross-modal Transformer uses its source modality's attention dropout, the
text-enhanced and memory ones that of text.

Departures from MMSA's implementation:
  * Unaligned input (`attention_masking: padding`, the default). MMSA runs TETFN on word-aligned
    data (need_data_aligned; every modality at the text's 50 steps) and attends to every step
    under MulT's causal future mask. msabench's datasets are unaligned: attention uses key
    padding masks from each modality's lengths, the memories are read at their last real step
    and the unimodal maxima run over real steps. `attention_masking: future` is MMSA's form on
    our data: sequences padded to the dataset's lengths, padding attended under the future mask,
    h[-1] and maxima over every step (text padding is zeros, MMSA's BERT gives [PAD] states).
  * A valid convolution shortens a sequence by kernel - 1: the lengths follow, and a sequence
    shorter than the kernel is zero-padded to it (MMSA would fail); an empty modality (length 0,
    the robustness stage) reads as one step.
  * Vision's convolution kernel is `vision_kernel`, by default the audio kernel: MMSA builds its
    video sub-network with conv1d_kernel_size_a (its config's conv1d_kernel_size_v is unused).
  * Sinusoidal positions at every real step (MMSA's fairseq positions skip a step whose first
    channel is exactly 0).
  * The paper extracts vision features with a ViT; MMSA (and msabench) read the dataset's
    features. Without token ids (or with `text_encoder: features`) the dataset's text features
    enter where BERT's token states would (the same Conv1d projection and network downstream).
  * ULGM as Self-MM's (methods/self_mm.py): a per-sample visit count stands for MMSA's epoch,
    the memory is not in the state dict, eval batches give "task" only; the label range is the
    dataset's (MMSA's H is 3 for every dataset, SIMS included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from harness.data.spec import REGRESSION_KINDS
from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from methods.base import MsaMethod, OptimHparams, check_choice, register_method
from methods.common.heads import bound_scores
from methods.common.label_generation import (
    HEADS,
    UNIMODAL,
    PredictionHead,
    UnimodalLabelMemory,
    audio_vision_groups,
    unimodal_label_terms,
)
from methods.common.losses import task_loss
from methods.common.text_enhanced import RecurrentProjection, TextEnhancedTransformer, masked_max
from methods.common.transformer import MASKINGS, CrossModalTransformer, last_real_step
from methods.search_space import Choice, FloatRange

# target -> the source it attends to through the text enhancer (the other target attends to
# text directly); text attends to both, directly
ENHANCED: dict[str, str] = {"audio": "vision", "vision": "audio"}


@dataclass(frozen=True)
class TETFNHparams(OptimHparams):
    model_dim: int = 50  # MMSA's dst_feature_dims
    num_heads: int = 5
    text_kernel: int = 1
    audio_kernel: int = 1
    vision_kernel: int = 1  # MMSA's video sub-network reads conv1d_kernel_size_a
    audio_lstm_hidden: int = 16
    vision_lstm_hidden: int = 64
    crossmodal_layers: int = 2  # the four pairwise and the two text-enhanced (upper) ones
    enhancer_layers: int = 1  # the text enhancer (lower) of each text-enhanced Transformer
    memory_layers: int = 2
    attn_dropout_text: float = 0.1
    attn_dropout_audio: float = 0.0
    attn_dropout_vision: float = 0.1
    relu_dropout: float = 0.0
    res_dropout: float = 0.1
    embed_dropout: float = 0.0
    # "padding": key padding masks, last real step, maxima over real steps (msabench's, for
    # unaligned data); "future": MMSA's (padding attended under the causal future mask, h[-1])
    attention_masking: str = "padding"
    separate_kv_dropout: bool = True  # MMSA: keys and values get their own dropout
    post_fusion_dim: int = 64
    post_text_dim: int = 32
    post_audio_dim: int = 32
    post_vision_dim: int = 16
    post_fusion_dropout: float = 0.0
    post_text_dropout: float = 0.0
    post_audio_dropout: float = 0.0
    post_vision_dropout: float = 0.0
    unimodal_weight: float = 1.0
    label_warmup_visits: int = 1
    exclude_zero: bool = True
    task_loss: str = "l1"
    learning_rate: float = 3e-4  # learning_rate_other: text projection, Transformers, heads
    weight_decay: float = 1e-2  # weight_decay_other
    audio_learning_rate: float = 5e-4  # the audio sub-network (LSTM + Conv1d)
    video_learning_rate: float = 3e-4  # the vision sub-network
    audio_weight_decay: float = 1e-2
    video_weight_decay: float = 0.0
    batch_size: int = 64
    # MMSA's TETFN trainer (its SELF_MM trainer): gradients of 4 batches summed per step, no
    # clipping, no schedule; BERT's biases and LayerNorm weights without weight decay
    grad_accumulation: int = 4
    bert_no_decay_norms: bool = True
    output_head: str = "linear"  # MMSA's post_fusion_layer_3, a plain Linear layer
    learning_rate_bert: float = 3e-5
    weight_decay_bert: float = 1e-3


def _check(hp: TETFNHparams, where: str = "hparams") -> None:
    """ConfigError for hyperparameters that cannot build a model."""
    if hp.model_dim < 1 or hp.num_heads < 1 or hp.model_dim % hp.num_heads != 0:
        raise ConfigError(
            f"{where}.num_heads: expected a positive divisor of model_dim={hp.model_dim}, "
            f"got {hp.num_heads}"
        )
    positive = ("text_kernel", "audio_kernel", "vision_kernel", "audio_lstm_hidden")
    positive += ("vision_lstm_hidden", "crossmodal_layers", "enhancer_layers", "memory_layers")
    for key in positive:
        if getattr(hp, key) < 1:
            raise ConfigError(f"{where}.{key}: expected a positive integer, got {getattr(hp, key)}")
    check_choice(hp, "attention_masking", MASKINGS, where)


@register_method("tetfn")
class TETFN(MsaMethod):
    """TETFN. Outputs: prediction (B,) (fused head), prediction_<s> (B,) for s in
    text/audio/vision, representation_<head> (B, post_<head>_dim) for the four heads."""

    Hparams = TETFNHparams
    TEXT_POOLING = "tokens"  # MMSA feeds every BERT token state to its Conv1d projection
    KINDS = REGRESSION_KINDS
    UNSUPPORTED_KINDS_REASON = (
        "its unimodal label generation (Self-MM's ULGM) moves each modality's label by the "
        "feature's distance to the positive and negative centres, a shift of a continuous score "
        "that a 0/1 class does not have"
    )
    KIND_DEFAULTS = {
        "mosi": {},
        "mosei": {
            "batch_size": 32,
            "audio_lstm_hidden": 32,
            "vision_lstm_hidden": 32,
            "relu_dropout": 0.1,
            "embed_dropout": 0.1,
            "res_dropout": 0.0,
            "post_text_dropout": 0.1,
            "post_text_dim": 64,
            "post_vision_dropout": 0.1,
            "audio_weight_decay": 0.0,
            "video_weight_decay": 1e-3,
            "audio_learning_rate": 1e-3,
            "video_learning_rate": 5e-3,
            "learning_rate": 1e-4,
        },
        "sims": {
            "text_kernel": 3,
            "audio_kernel": 5,
            "vision_kernel": 5,
            "attn_dropout_text": 0.0,
            "attn_dropout_audio": 0.1,
            "attn_dropout_vision": 0.0,
            "relu_dropout": 0.1,
            "res_dropout": 0.0,
            "post_fusion_dropout": 0.1,
            "post_text_dim": 64,
            "post_audio_dim": 16,
            "post_vision_dim": 32,
            "audio_weight_decay": 0.0,
            "video_weight_decay": 1e-2,
            "weight_decay": 1e-3,
            "audio_learning_rate": 3e-3,
            "video_learning_rate": 5e-4,
            "learning_rate": 3e-3,
        },
    }
    # centred on MMSA's MOSI values (its three datasets span lr 1e-4..3e-3, audio 5e-4..3e-3,
    # video 3e-4..5e-3); 5 heads divide every model_dim choice
    SEARCH_SPACE = {
        "learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "audio_learning_rate": FloatRange(2e-4, 3e-3, log=True),
        "video_learning_rate": FloatRange(1e-4, 5e-3, log=True),
        "weight_decay": FloatRange(1e-4, 3e-2, log=True),
        "unimodal_weight": FloatRange(0.1, 2.0),
        "res_dropout": FloatRange(0.0, 0.3),
        "model_dim": Choice((30, 40, 50)),
    }

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        _check(hparams, where)  # type: ignore[arg-type]

    def __init__(self, hparams: TETFNHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        _check(hparams)
        hp, dims, d = hparams, spec.feature_dims, hparams.model_dim
        self.kernels = {m: getattr(hp, f"{m}_kernel") for m in UNIMODAL}
        if self.text_mode == "pretrained":
            self.text_encoder = self.build_text_encoder("tokens")
            text_in = self.text_encoder.out_size
        else:
            text_in = dims["text"]
        self.text_projection = nn.Conv1d(text_in, d, hp.text_kernel, bias=False)
        self.subnets = nn.ModuleDict(  # MMSA's audio_model and video_model
            {
                m: RecurrentProjection(dims[m], getattr(hp, f"{m}_lstm_hidden"), d, self.kernels[m])
                for m in ENHANCED
            }
        )
        self._build_transformers(hp)
        in_sizes = {"fusion": 6 * d, **dict.fromkeys(UNIMODAL, d)}
        head_dims = {h: getattr(hp, f"post_{h}_dim") for h in HEADS}
        self.heads = nn.ModuleDict(
            {
                h: PredictionHead(in_sizes[h], head_dims[h], getattr(hp, f"post_{h}_dropout"))
                for h in HEADS
            }
        )
        self.label_range = tuple(float(v) for v in spec.label_range)
        self.label_memory = UnimodalLabelMemory(
            head_dims, spec.label_range, hp.label_warmup_visits, hp.exclude_zero
        )

    def _build_transformers(self, hp: TETFNHparams) -> None:
        """The four pairwise cross-modal Transformers (`pairwise["<target>_from_<source>"]`),
        the two text-enhanced ones (`enhanced[target]`) and the three memories."""
        d, heads = hp.model_dim, hp.num_heads
        attn = {"text": hp.attn_dropout_text, "audio": hp.attn_dropout_audio}
        attn["vision"] = hp.attn_dropout_vision
        common = {
            "relu_dropout": hp.relu_dropout,
            "res_dropout": hp.res_dropout,
            "embed_dropout": hp.embed_dropout,
            "masking": hp.attention_masking,
            "separate_kv_dropout": hp.separate_kv_dropout,
        }
        pairs = [("text", "audio"), ("text", "vision"), ("audio", "text"), ("vision", "text")]
        self.pairwise = nn.ModuleDict(
            {
                f"{target}_from_{source}": CrossModalTransformer(
                    d, heads, hp.crossmodal_layers, attn[source], positions=False, **common
                )
                for target, source in pairs
            }
        )
        self.enhanced = nn.ModuleDict(
            {
                target: TextEnhancedTransformer(
                    d, heads, hp.enhancer_layers, hp.crossmodal_layers, attn["text"], **common
                )
                for target in ENHANCED
            }
        )
        self.memory = nn.ModuleDict(
            {
                m: CrossModalTransformer(
                    2 * d, heads, hp.memory_layers, attn["text"], positions=False, **common
                )
                for m in UNIMODAL
            }
        )

    # -- forward ------------------------------------------------------------------------------
    def _raw_sequences(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor, int]]:
        """{m: (x (B, T_m, D_m), lengths (B,), the dataset's padded length T_m)}; text is the
        pretrained encoder's token states (zeros at padding) or the dataset's text features."""
        if self.text_mode == "pretrained":
            assert batch.tokens is not None and self.spec.tokens is not None
            text = (self.text_encoder(batch.tokens), batch.tokens.lengths)
            text_steps = self.spec.tokens.max_length
        else:
            text = (batch.features["text"], batch.lengths["text"])
            text_steps = self.spec.max_lengths["text"]
        sequences = {"text": (*text, text_steps)}
        for m in ("audio", "vision"):
            sequences[m] = (batch.features[m], batch.lengths[m], self.spec.max_lengths[m])
        return sequences

    def project(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each modality at width d: {m: (x (B, T'_m, d), mask (B, T'_m), lengths (B,))}, with
        T'_m = T_m - kernel + 1 (module docstring: padding and short sequences)."""
        future = self.hparams.attention_masking == "future"
        projected = {}
        for m, (x, lengths, dataset_steps) in self._raw_sequences(batch).items():
            kernel = self.kernels[m]
            steps = max(dataset_steps if future else x.shape[1], kernel, 1)
            x = F.pad(x, (0, 0, 0, steps - x.shape[1])) if x.shape[1] < steps else x[:, :steps]
            lengths = lengths.to(x.device).clamp(1, steps)
            if m == "text":
                x = self.text_projection(x.transpose(1, 2)).transpose(1, 2)
            else:
                outputs = self.subnets[m].recur(x)
                if not future:  # a sequence shorter than the kernel reads zeros past its end
                    real = torch.arange(steps, device=x.device) < lengths.unsqueeze(1)
                    outputs = outputs * real.unsqueeze(-1).to(outputs.dtype)
                x = self.subnets[m].project(outputs)
            lengths = (lengths - (kernel - 1)).clamp(min=1)
            mask = torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)
            projected[m] = (x, mask if not future else torch.ones_like(mask), lengths)
        return projected

    def _views(self, projected: dict) -> dict[str, list[torch.Tensor]]:
        """Each target's two cross-modal outputs, (B, T'_m, d) each: text from audio and from
        vision; audio from text and from text-enhanced vision; vision from text and from
        text-enhanced audio (MMSA's order of concatenation)."""
        seq = {m: projected[m][:2] for m in UNIMODAL}  # (x, mask)
        views = {"text": [self.pairwise[f"text_from_{s}"](*seq["text"], *seq[s]) for s in ENHANCED]}
        for target, source in ENHANCED.items():
            views[target] = [
                self.pairwise[f"{target}_from_text"](*seq[target], *seq["text"]),
                self.enhanced[target](*seq[target], *seq[source], *seq["text"]),
            ]
        return views

    def _fuse(self, projected: dict) -> torch.Tensor:
        """Each target's memory over its two views, read at its last step (real, or padded with
        `attention_masking: future`), the three concatenated: (B, 6 d)."""
        views = self._views(projected)
        last = []
        for m in UNIMODAL:
            _, mask, lengths = projected[m]
            memory = self.memory[m](torch.cat(views[m], dim=-1), mask)
            future = self.hparams.attention_masking == "future"
            last.append(memory[:, -1] if future else last_real_step(memory, lengths))
        return torch.cat(last, dim=-1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        projected = self.project(batch)
        inputs = {m: masked_max(x, mask) for m, (x, mask, _) in projected.items()}
        inputs["fusion"] = self._fuse(projected)
        outputs: dict[str, torch.Tensor] = {}
        for head in HEADS:
            representation, score = self.heads[head](inputs[head])
            outputs[f"representation_{head}"] = representation
            outputs[f"prediction_{head}"] = score
        fused = outputs.pop("prediction_fusion")
        outputs["prediction"] = bound_scores(fused, self.hparams.output_head, self.label_range)
        return outputs

    # -- training -----------------------------------------------------------------------------
    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Always "task"; in training mode with unimodal_weight > 0 also "text", "audio" and
        "vision" from the label memory at batch.index, which is then updated."""
        terms = {"task": task_loss(self.hparams.task_loss, outputs["prediction"], batch.labels)}
        weight = self.hparams.unimodal_weight
        if not self.training or weight == 0:
            return terms
        memory_terms = unimodal_label_terms(
            self.label_memory, batch.index, batch.labels, outputs, weight
        )
        return {**terms, **memory_terms}

    def loss_weights(self) -> dict[str, float]:
        return {"task": 1.0, **dict.fromkeys(UNIMODAL, self.hparams.unimodal_weight)}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """MMSA's grouping: the audio sub-network (LSTM + Conv1d) at audio_learning_rate /
        audio_weight_decay, the vision one at video_learning_rate / video_weight_decay, the rest
        (text projection, Transformers, heads) at the default rate and decay (the loop moves a
        fine-tuned text encoder into groups of its own)."""
        return audio_vision_groups(
            self, self.subnets["audio"], self.subnets["vision"], self.hparams
        )
