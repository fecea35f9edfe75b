"""Datasets: declarations, the canonical feature store, loading and batching."""
