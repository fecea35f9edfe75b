"""One learning check shared by the method tests: fit on the short synthetic benchmark, beat the
training-mean predictor's validation MAE by 10%, and log exactly the method's loss terms."""

from __future__ import annotations

from harness.training.loop import LoopConfig, RunContext, fit


def assert_learns_and_logs_terms(model, splits, method: str, terms: set[str]) -> None:
    """Fit `model` 8 epochs on `splits`; check validation MAE < 0.9 x the training-mean MAE and
    that every epoch logs `terms` plus "total"."""
    loop = LoopConfig(max_epochs=8, patience=8, progress=False)
    outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("synth", method, 0), 0)
    mean_mae = float((splits["valid"].labels - splits["train"].labels.mean()).abs().mean())
    assert outcome.best_valid["mae"] < 0.9 * mean_mae
    for log in outcome.history:
        assert set(log.train) == terms | {"total"}
