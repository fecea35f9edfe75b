"""Hyperparameter tuning with Optuna on the validation split: the study and its trials
(study.py), its storage, a journal file or a shared PostgreSQL database (storage.py), and the
tuning histories read back for figures (history.py)."""
