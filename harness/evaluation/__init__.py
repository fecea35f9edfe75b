"""Evaluations of trained models beyond the test metrics: the missing-modality protocol
(robustness.py) and linear probes of factorized representations (probes.py)."""
