"""The field's regression metrics, computed exactly as MMSA's ``utils/metricsTop.py``.

The regression kinds are ``"mosi"`` (also used for MOSEI; scores in [-3, 3]) and ``"sims"``
(CH-SIMS; scores in [-1, 1]); ``"binary"`` is the classification kind (humour, sarcasm; see
"Binary classification" below). `compute_metrics` returns *fractions* (accuracies and F1 in 0..1);
tables multiply the metrics whose `MetricInfo.percent` is true by 100.

Where this module departs from MMSA, deliberately:

- Values are not rounded (MMSA rounds MOSI metrics to 4 decimals); rounding is for display.
- MAE and Pearson correlation are computed in float64 from the values as given (MMSA takes the
  mean in float32).
- Pearson correlation is undefined when the predictions or the truths are constant: we report
  NaN without letting numpy's RuntimeWarning leak (MMSA returns NaN with a warning).
- If every truth is exactly 0 (the non-0 subset is empty), ``acc2_non0`` and ``f1_non0`` are NaN
  (MMSA crashes on the empty index array).
- An F1 term whose precision is undefined (a class never predicted) counts as 0, as sklearn's
  default does, but without its UndefinedMetricWarning (computed without sklearn, checked
  against it in the tests).

What follows MMSA to the bit: binary classes (has-0: ``x >= 0``; non-0: drop samples whose truth
is exactly 0, then ``x > 0``), Acc-5/Acc-7 as ``round(clip(x))`` with numpy's half-to-even
rounding, SIMS clipping of both arrays to [-1, 1] before every SIMS metric (MAE and Corr
included), and SIMS class bins ``lower < x <= upper`` (the first bin includes -1).

Class assignments (signs, rounding, bins) are made in float32 whatever the input dtype, because
MMSA makes them on float32 tensors compared with Python floats, i.e. in float32. It matters: a
SIMS label of 0.1 stored as float32 is 0.10000000149 in float64 and would fall above the 0.1
edge; in float32 it sits on the edge and belongs to the lower bin, as in MMSA.

Binary classification (kind ``"binary"``): truths are 0/1, predictions the probability of class 1,
and a sample is predicted positive at probability >= 0.5. Accuracy; F1, precision and recall are
sklearn's ``average="weighted"`` (per class, weighted by the class's support in the truths;
``zero_division=0``), as MUStARD's and UR-FUNNY's papers report them; AUC is the area under the
ROC curve from the probabilities (Mann-Whitney U with average ranks for ties, as sklearn's
``roc_auc_score``), NaN when the truths hold one class only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from harness.errors import UnknownNameError

__all__ = [
    "METRICS",
    "MetricInfo",
    "best_value",
    "compute_metrics",
    "is_better",
    "metric_info",
    "metric_label",
    "pearson",
]

METRICS: dict[str, tuple[str, ...]] = {
    "mosi": ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr"),
    "sims": ("acc2", "acc3", "acc5", "f1", "mae", "corr"),
    "binary": ("accuracy", "f1_weighted", "precision", "recall", "auc"),
}
METRICS["mosei"] = METRICS["mosi"]  # MOSEI is scored as MOSI
BINARY_THRESHOLD = 0.5  # a binary prediction (a probability) >= this is class 1


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is read: its direction, whether tables show it in percent, and the label
    every table and figure prints for it (the field's style: "Acc-2 (has-0)", "MAE")."""

    name: str
    higher_is_better: bool
    percent: bool
    label: str


# The field's names (MMSA's result tables, the papers): has-0 = every sample, x >= 0 positive;
# non-0 = samples whose truth is 0 dropped.
_LABELS: dict[str, str] = {
    "acc2_has0": "Acc-2 (has-0)", "f1_has0": "F1 (has-0)",
    "acc2_non0": "Acc-2 (non-0)", "f1_non0": "F1 (non-0)",
    "acc2": "Acc-2", "acc3": "Acc-3", "acc5": "Acc-5", "acc7": "Acc-7", "f1": "F1",
    "mae": "MAE", "corr": "Corr",
    "accuracy": "Acc", "f1_weighted": "F1 (weighted)", "precision": "Precision (weighted)",
    "recall": "Recall (weighted)", "auc": "AUC",
}  # fmt: skip

_INFO: dict[str, MetricInfo] = {
    name: MetricInfo(
        name,
        higher_is_better=name != "mae",
        percent=name not in ("mae", "corr", "auc"),
        label=_LABELS[name],
    )
    for names in METRICS.values()
    for name in names
}

# SIMS class edges, as MMSA writes them (class i: edges[i] < x <= edges[i + 1]).
SIMS_EDGES: dict[str, tuple[float, ...]] = {
    "acc2": (-1.01, 0.0, 1.01),
    "acc3": (-1.01, -0.1, 0.1, 1.01),
    "acc5": (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01),
}


def metric_info(name: str) -> MetricInfo:
    """Direction and display of metric `name`; raises UnknownNameError for an unknown name."""
    try:
        return _INFO[name]
    except KeyError:
        valid = ", ".join(sorted(_INFO))
        close = difflib.get_close_matches(str(name), list(_INFO), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UnknownNameError(f"unknown metric {name!r}{hint}; valid names: {valid}") from None


def metric_label(name: str, *, direction: bool = False) -> str:
    """The display label of metric `name` ("Acc-2 (has-0)"), with its direction ("↑ higher is
    better" / "↓ lower is better") when `direction`; tables and figures print only this."""
    info = metric_info(name)
    if not direction:
        return info.label
    return f"{info.label} ({'↑ higher' if info.higher_is_better else '↓ lower'} is better)"


def is_better(name: str, a: float, b: float) -> bool:
    """True if value `a` is strictly better than `b` for metric `name`. NaN is never better;
    any number is better than NaN."""
    higher = metric_info(name).higher_is_better
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if higher else a < b


def best_value(name: str, values: Iterable[float]) -> float:
    """The best of `values` (any iterable of floats) for metric `name`, ignoring NaN;
    NaN if there is no finite-or-infinite number among them."""
    best = math.nan
    for value in values:
        if is_better(name, float(value), best):
            best = float(value)
    return best


def compute_metrics(kind: str, predictions: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """All metrics of `kind` ("mosi", "mosei", "sims" or "binary") for `predictions` (N,)
    against `truths` (N,) (binary: probabilities against 0/1 classes).

    Returns ``{metric name: value}`` in the order of ``METRICS[kind]``; accuracies and F1 are
    fractions in [0, 1]. Raises UnknownNameError for an unknown kind and ValueError for arrays
    that are not 1-D, differ in length, are empty, or hold NaN/inf.
    """
    if kind not in METRICS:
        valid = ", ".join(sorted(METRICS))
        raise UnknownNameError(f"unknown metric kind {kind!r}; valid kinds: {valid}")
    preds = _as_scores(predictions, "predictions")
    labels = _as_scores(truths, "truths")
    if preds.shape != labels.shape:
        raise ValueError(
            f"predictions and truths differ in length: {preds.shape[0]} vs {labels.shape[0]}"
        )
    if kind == "sims":
        return _sims_metrics(preds, labels)
    if kind == "binary":
        return _binary_metrics(preds, _as_classes(labels))
    return _mosi_metrics(preds, labels)


def _as_classes(truths: np.ndarray) -> np.ndarray:
    """Binary truths (N,) as booleans; ValueError naming the first value that is not 0 or 1."""
    bad = (truths != 0) & (truths != 1)
    if np.any(bad):
        raise ValueError(
            f"binary truths must be 0 or 1, got {float(truths[bad][0])!r} ({int(bad.sum())} such)"
        )
    return truths == 1


def _binary_metrics(probabilities: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """Binary metrics of probabilities (N,) against boolean truths (N,) (the module docstring)."""
    predicted = probabilities >= BINARY_THRESHOLD
    precision, recall, f1 = _weighted_precision_recall_f1(truths, predicted)
    return {
        "accuracy": float(np.mean(predicted == truths)),
        "f1_weighted": f1,
        "precision": precision,
        "recall": recall,
        "auc": roc_auc(probabilities, truths),
    }


def _weighted_precision_recall_f1(
    truth_classes: np.ndarray, pred_classes: np.ndarray
) -> tuple[float, float, float]:
    """sklearn's weighted precision, recall and F1 (zero_division 0) of class arrays (N,)."""
    classes = np.union1d(truth_classes, pred_classes)
    truth = truth_classes[:, None] == classes[None, :]  # (N, C)
    pred = pred_classes[:, None] == classes[None, :]
    true_positive = np.sum(truth & pred, axis=0).astype(np.float64)
    support, predicted = np.sum(truth, axis=0), np.sum(pred, axis=0)
    zeros = np.zeros(classes.size)
    precision = np.divide(true_positive, predicted, out=zeros.copy(), where=predicted > 0)
    recall = np.divide(true_positive, support, out=zeros.copy(), where=support > 0)
    denominator = support + predicted
    f1 = np.divide(2.0 * true_positive, denominator, out=zeros.copy(), where=denominator > 0)
    total = np.sum(support)
    if total == 0:
        return 0.0, 0.0, 0.0
    return tuple(float(np.sum(v * support) / total) for v in (precision, recall, f1))


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` (N,) for boolean `positive` (N,): the Mann-Whitney
    U statistic over n_pos * n_neg with average ranks for tied scores; NaN without both
    classes."""
    from scipy.stats import rankdata

    n_pos = int(np.sum(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)  # average ranks, 1-based
    u = float(np.sum(ranks[positive])) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _as_scores(values: np.ndarray, what: str) -> np.ndarray:
    """`values` as a 1-D float64 array (N,), N >= 1, all finite; ValueError otherwise."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D (N,), got shape {array.shape}; use .reshape(-1)")
    if array.size == 0:
        raise ValueError(f"{what} is empty; need at least one sample")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise ValueError(f"{what} must be real, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} holds {int(np.sum(~np.isfinite(array)))} NaN/inf value(s)")
    return array


def _as_float32(scores: np.ndarray, bound: float) -> np.ndarray:
    """`scores` (N,) clipped to [-bound, bound] (so the cast cannot overflow), as float32."""
    return np.clip(scores, -bound, bound).astype(np.float32)


def _mosi_metrics(preds: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """MOSI/MOSEI metrics for float64 `preds` (N,) and `truths` (N,) (scores in [-3, 3])."""
    pred32, truth32 = _as_float32(preds, 4.0), _as_float32(truths, 4.0)
    non_zero = truth32 != 0
    if np.any(non_zero):
        acc2_non0, f1_non0 = _binary_acc_f1(pred32[non_zero] > 0, truth32[non_zero] > 0)
    else:
        acc2_non0 = f1_non0 = math.nan
    acc2_has0, f1_has0 = _binary_acc_f1(pred32 >= 0, truth32 >= 0)
    return {
        "acc2_has0": acc2_has0,
        "f1_has0": f1_has0,
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "acc5": _rounded_accuracy(pred32, truth32, 2.0),
        "acc7": _rounded_accuracy(pred32, truth32, 3.0),
        "mae": _mae(preds, truths),
        "corr": pearson(preds, truths),
    }


def _sims_metrics(preds: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """CH-SIMS metrics for float64 `preds` (N,) and `truths` (N,), both clipped to [-1, 1]."""
    preds = np.clip(preds, -1.0, 1.0)
    truths = np.clip(truths, -1.0, 1.0)
    pred32, truth32 = _as_float32(preds, 1.0), _as_float32(truths, 1.0)
    classes = {
        name: (_sims_classes(pred32, edges), _sims_classes(truth32, edges))
        for name, edges in SIMS_EDGES.items()
    }
    pred2, truth2 = classes["acc2"]
    return {
        "acc2": float(np.mean(pred2 == truth2)),
        "acc3": float(np.mean(classes["acc3"][0] == classes["acc3"][1])),
        "acc5": float(np.mean(classes["acc5"][0] == classes["acc5"][1])),
        "f1": _weighted_f1(truth2, pred2),
        "mae": _mae(preds, truths),
        "corr": pearson(preds, truths),
    }


def _sims_classes(scores: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Class index (N,) of each score (N,): i where edges[i] < x <= edges[i+1], with the
    edges cast to the scores' dtype (float32 here, as in MMSA)."""
    typed_edges = np.asarray(edges, dtype=scores.dtype)
    # searchsorted(side="left") returns the first i with edges[i] >= x, i.e. x <= edges[i].
    return np.searchsorted(typed_edges, scores, side="left") - 1


def _binary_acc_f1(pred_pos: np.ndarray, truth_pos: np.ndarray) -> tuple[float, float]:
    """Accuracy and weighted F1 of boolean predictions (N,) against boolean truths (N,)."""
    return float(np.mean(pred_pos == truth_pos)), _weighted_f1(truth_pos, pred_pos)


def _weighted_f1(truth_classes: np.ndarray, pred_classes: np.ndarray) -> float:
    """sklearn's `f1_score(average="weighted", zero_division=0)` of class arrays (N,): per class
    present in either array F1 = 2 TP / (2 TP + FP + FN) (0 where that is 0/0), averaged with
    the classes' support in `truth_classes` as weights (tests/test_metrics.py checks equality
    with sklearn). Written out because importing sklearn costs every stage about a second and
    its input validation dominates the robustness stage's thousands of metric calls."""
    classes = np.union1d(truth_classes, pred_classes)
    truth = truth_classes[:, None] == classes[None, :]  # (N, C)
    pred = pred_classes[:, None] == classes[None, :]
    true_positive = np.sum(truth & pred, axis=0)
    denominator = np.sum(truth, axis=0) + np.sum(pred, axis=0)  # 2 TP + FP + FN
    f1 = np.divide(
        2.0 * true_positive, denominator, out=np.zeros(classes.size), where=denominator > 0
    )
    support = np.sum(truth, axis=0)
    return float(np.sum(f1 * support) / np.sum(support)) if np.sum(support) > 0 else 0.0


def _rounded_accuracy(preds: np.ndarray, truths: np.ndarray, bound: float) -> float:
    """Share of samples (N,) whose round(clip(x, -bound, bound)) agree (half to even)."""
    pred_class = np.round(np.clip(preds, -bound, bound))
    truth_class = np.round(np.clip(truths, -bound, bound))
    return float(np.mean(pred_class == truth_class))


def _mae(preds: np.ndarray, truths: np.ndarray) -> float:
    """Mean absolute error of float64 `preds` (N,) against `truths` (N,)."""
    return float(np.mean(np.abs(preds - truths)))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of `x` (N,) and `y` (N,) via np.corrcoef, in float64; NaN (and no
    warning) when either array is constant, where the correlation is undefined."""
    x64 = np.asarray(x, dtype=np.float64)
    y64 = np.asarray(y, dtype=np.float64)
    if x64.size < 2 or np.ptp(x64) == 0 or np.ptp(y64) == 0:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.corrcoef(x64, y64)[0, 1])
