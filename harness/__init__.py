"""msabench: a reproducibility benchmark harness for multimodal sentiment analysis."""

__version__ = "0.1.0"
