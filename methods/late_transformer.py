"""Late-fusion Transformer: the strong simple baseline every fusion method must beat.

Reference: SimBaMM, the "Simple Baseline for Multimodal Learning" of Rheude, Eils & Wild, "Fusion
or Confusion? Multimodal Complexity Is Not All You Need" (arXiv 2512.22991, 2025), written here
from the paper's description (no code of theirs is used): a small Transformer per modality
(a projection, a learned [CLS] step, sinusoidal positions, pre-norm layers with padding masked;
methods/common/late_fusion.py), each modality summarised by its [CLS] state, and fusion only at
the end: a Transformer layer over the M modality tokens (`fusion_layers`), their concatenation,
an MLP and the output head. Loss: L1 on y (the binary kind: BCE on the probability).

Text: on a dataset with token ids the text encoder is the pretrained model itself, fine-tuned
and read at [CLS] (`text_encoder: auto`, the text-tokens issue; its own rate
`learning_rate_bert`), so on token-level MOSI this is the fine-tuned late-fusion baseline the
papers' BERT methods should beat; `text_encoder: features` runs the small Transformer over the
dataset's text features instead.

The unimodal baselines (text_only, audio_only, vision_only) are this model reading one modality
(`MODALITIES_READ`), so a fusion method is measured against unimodal models of the same family,
tuned with the same budget. The study tunes its width and depth, and so do the harness's
search spaces; the defaults below are msabench's choice (the study publishes no single set).
"""

from __future__ import annotations

from methods.base import register_method
from methods.common.late_fusion import LateFusionModel


@register_method("late_transformer")
class LateTransformer(LateFusionModel):
    """Per-modality Transformers fused late, over every modality the dataset has. Outputs:
    prediction (B,), fused (B, d) and one summary (B, d) per modality, named by the modality."""

    MODALITIES_READ = None
