"""The field's metrics for a batch of resamples at once: row r of `predictions` (R, N) against
row r of `truths` (R, N) gives what `harness.metrics.compute_metrics` gives for that row, to
1e-12 (tests/test_batch_metrics.py checks it row by row, degenerate rows included).

It exists for the paired bootstrap over test samples (`harness.statistics.resampling`), which
evaluates every method on R resampled test sets: one vectorized call instead of R x seeds calls of
`compute_metrics`, each paying its input checks. The same MMSA conventions hold: class
assignments in float32, SIMS clipping to [-1, 1] before every SIMS metric, NaN for an undefined
Pearson correlation (a constant row) and for non-0 metrics on a row whose truths are all 0.
"""

from __future__ import annotations

import numpy as np

from harness.errors import UnknownNameError
from harness.metrics import BINARY_THRESHOLD, METRICS, SIMS_EDGES

__all__ = ["compute_metrics_batch"]


def compute_metrics_batch(
    kind: str, predictions: np.ndarray, truths: np.ndarray
) -> dict[str, np.ndarray]:
    """{metric: values (R,)} for `predictions` (R, N) against `truths` (R, N), metrics in the
    order of METRICS[kind]; accuracies and F1 as fractions. ValueError unless both are finite
    2-D arrays of one shape with N >= 1."""
    if kind not in METRICS:
        raise UnknownNameError(f"unknown metric kind {kind!r}; valid kinds: {', '.join(METRICS)}")
    preds = np.asarray(predictions, dtype=np.float64)
    labels = np.asarray(truths, dtype=np.float64)
    if preds.ndim != 2 or preds.shape != labels.shape or preds.shape[1] == 0:
        raise ValueError(
            f"predictions and truths must be (R, N) arrays of one shape with N >= 1, got "
            f"{preds.shape} and {labels.shape}"
        )
    if not (np.all(np.isfinite(preds)) and np.all(np.isfinite(labels))):
        raise ValueError("predictions and truths must be finite (no NaN/inf)")
    if kind == "sims":
        return _sims(preds, labels)
    if kind == "binary":
        return _binary_kind(preds, labels == 1)
    return _mosi(preds, labels)


def _binary_kind(probabilities: np.ndarray, truths: np.ndarray) -> dict[str, np.ndarray]:
    """The binary kind's metrics per row of probabilities (R, N) and boolean truths (R, N)."""
    predicted = probabilities >= BINARY_THRESHOLD
    rows = predicted.shape[0]
    precision, recall, f1 = np.zeros(rows), np.zeros(rows), np.zeros(rows)
    for label in (False, True):
        truth, pred = truths == label, predicted == label
        true_positive = (truth & pred).sum(axis=1).astype(np.float64)
        support, count = truth.sum(axis=1), pred.sum(axis=1)
        zeros = np.zeros(rows)
        precision += np.divide(true_positive, count, out=zeros.copy(), where=count > 0) * support
        recall += np.divide(true_positive, support, out=zeros.copy(), where=support > 0) * support
        f1 += (
            np.divide(
                2.0 * true_positive, support + count, out=zeros.copy(), where=support + count > 0
            )
            * support
        )
    n = truths.shape[1]
    return {
        "accuracy": np.mean(predicted == truths, axis=1),
        "f1_weighted": f1 / n,
        "precision": precision / n,
        "recall": recall / n,
        "auc": _roc_auc(probabilities, truths),
    }


def _roc_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Row-wise ROC AUC (Mann-Whitney U, average ranks for ties) of (R, N) scores for boolean
    (R, N) classes; NaN for a row without both classes."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)
    n_pos = positive.sum(axis=1).astype(np.float64)
    n_neg = positive.shape[1] - n_pos
    u = np.sum(np.where(positive, ranks, 0.0), axis=1) - n_pos * (n_pos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def _mosi(preds: np.ndarray, truths: np.ndarray) -> dict[str, np.ndarray]:
    pred32 = np.clip(preds, -4.0, 4.0).astype(np.float32)
    truth32 = np.clip(truths, -4.0, 4.0).astype(np.float32)
    non_zero = truth32 != 0
    acc2_has0, f1_has0 = _binary(pred32 >= 0, truth32 >= 0, np.ones_like(non_zero))
    acc2_non0, f1_non0 = _binary(pred32 > 0, truth32 > 0, non_zero)
    return {
        "acc2_has0": acc2_has0,
        "f1_has0": f1_has0,
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "acc5": _rounded_accuracy(pred32, truth32, 2.0),
        "acc7": _rounded_accuracy(pred32, truth32, 3.0),
        "mae": np.mean(np.abs(preds - truths), axis=1),
        "corr": _pearson(preds, truths),
    }


def _sims(preds: np.ndarray, truths: np.ndarray) -> dict[str, np.ndarray]:
    preds, truths = np.clip(preds, -1.0, 1.0), np.clip(truths, -1.0, 1.0)
    pred32, truth32 = preds.astype(np.float32), truths.astype(np.float32)
    classes = {
        name: (_classes(pred32, edges), _classes(truth32, edges))
        for name, edges in SIMS_EDGES.items()
    }
    pred2, truth2 = classes["acc2"]
    acc2, f1 = _binary(pred2 == 1, truth2 == 1, np.ones(preds.shape, dtype=bool))
    return {
        "acc2": acc2,
        "acc3": np.mean(classes["acc3"][0] == classes["acc3"][1], axis=1),
        "acc5": np.mean(classes["acc5"][0] == classes["acc5"][1], axis=1),
        "f1": f1,
        "mae": np.mean(np.abs(preds - truths), axis=1),
        "corr": _pearson(preds, truths),
    }


def _classes(scores: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Class index (R, N) of each float32 score: i where edges[i] < x <= edges[i+1]."""
    return np.searchsorted(np.asarray(edges, dtype=scores.dtype), scores, side="left") - 1


def _binary(
    pred_pos: np.ndarray, truth_pos: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and sklearn-weighted F1 (zero_division 0) per row of boolean (R, N) arrays,
    counting only the samples where `keep` is true; NaN for a row that keeps none."""
    count = keep.sum(axis=1).astype(np.float64)
    correct = ((pred_pos == truth_pos) & keep).sum(axis=1)
    weighted = np.zeros(pred_pos.shape[0])
    for label in (False, True):  # a class absent from both arrays has support 0: adds nothing
        truth = (truth_pos == label) & keep
        pred = (pred_pos == label) & keep
        true_positive = (truth & pred).sum(axis=1)
        support = truth.sum(axis=1)
        denominator = support + pred.sum(axis=1)
        f1 = np.divide(
            2.0 * true_positive,
            denominator,
            out=np.zeros(weighted.shape),
            where=denominator > 0,
        )
        weighted += f1 * support
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / count, weighted / count


def _rounded_accuracy(preds: np.ndarray, truths: np.ndarray, bound: float) -> np.ndarray:
    pred_class = np.round(np.clip(preds, -bound, bound))
    truth_class = np.round(np.clip(truths, -bound, bound))
    return np.mean(pred_class == truth_class, axis=1)


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (R, N) arrays; NaN for a row where either is constant
    or N < 2."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    numerator = np.sum(xc * yc, axis=1)
    denominator = np.sqrt(np.sum(xc * xc, axis=1) * np.sum(yc * yc, axis=1))
    undefined = (np.ptp(x, axis=1) == 0) | (np.ptp(y, axis=1) == 0) | (x.shape[1] < 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = numerator / np.where(denominator == 0, 1.0, denominator)
    return np.where(undefined, np.nan, np.clip(result, -1.0, 1.0))
