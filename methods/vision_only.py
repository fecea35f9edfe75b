"""Vision-only baseline: the late-fusion Transformer (methods/late_transformer.py) reading
the vision modality alone: its vision encoder, an MLP and the output head, tuned and seeded like
every method.

Reference: the unimodal baselines of MultiBench (Liang et al., NeurIPS 2021 Datasets and
Benchmarks) and MERBench (Lian et al., 2024), and the tuned unimodal baselines of Rheude, Eils &
Wild, "Fusion or Confusion?" (arXiv 2512.22991), which complex fusion methods often fail to beat.
A method that does not beat the best unimodal model has not shown that its fusion helps.
"""

from __future__ import annotations

from methods.base import register_method
from methods.common.late_fusion import LateFusionModel


@register_method("vision_only")
class VisionOnly(LateFusionModel):
    """The late-fusion Transformer on vision alone. Outputs: prediction (B,), fused (B, d),
    vision (B, d)."""

    MODALITIES_READ = ("vision",)
    TEXT_POOLING = None  # reads no text: no text encoder on any dataset
