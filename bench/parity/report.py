"""Pure statistics of the parity report: per metric the two sides' means over seeds, the
difference (msabench - MMSA) with a percentile-bootstrap 95% CI (the seeds of each side resampled
independently: the two sides' seeds draw different random streams, so they are not paired), and
an equivalence verdict against a margin fixed before the runs (`MARGINS`):

    equivalent      the whole CI lies inside (-margin, +margin)
    different       the whole CI lies outside it (the sides differ by more than the margin)
    inconclusive    otherwise (too few seeds, or too much seed variance, to say)

Scores per side are computed by one function, msabench's `harness.metrics.compute_metrics`, from
each run's test predictions, so metric definitions cannot differ between the sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.metrics import compute_metrics, metric_info, metric_label

METRICS = ("mae", "corr", "acc2_non0", "f1_non0", "acc7")
# equivalence margins in the tables' units (accuracies and F1 in %, as the tables show them):
# about one to two seed standard deviations of these baselines on MOSI
MARGINS = {"mae": 0.04, "corr": 0.04, "acc2_non0": 2.0, "f1_non0": 2.0, "acc7": 3.0}


VERDICTS = ("equivalent", "inconclusive", "different")


@dataclass(frozen=True)
class MetricParity:
    metric: str
    mmsa: np.ndarray  # (S_mmsa,) one score per seed
    msabench: np.ndarray  # (S_msabench,)
    difference: float  # mean(msabench) - mean(mmsa)
    low: float  # bootstrap CI of the difference
    high: float
    margin: float
    verdict: str  # "equivalent" | "different" | "inconclusive"


def scores(kind: str, runs: list[dict]) -> dict[str, np.ndarray]:
    """{metric: (S,)} in the tables' units (percent metrics x 100) from run payloads with
    "predictions" and "labels" (one per seed)."""
    per_run = [
        compute_metrics(kind, np.asarray(r["predictions"]), np.asarray(r["labels"])) for r in runs
    ]
    scale = {m: 100.0 if metric_info(m).percent else 1.0 for m in METRICS}
    return {
        m: np.array([values[m] * scale[m] for values in per_run], dtype=np.float64) for m in METRICS
    }


def difference_ci(
    a: np.ndarray, b: np.ndarray, seed: int, confidence: float = 0.95, resamples: int = 10_000
) -> tuple[float, float, float]:
    """mean(b) - mean(a) and its percentile-bootstrap CI, a (S_a,) and b (S_b,) resampled
    independently with replacement `resamples` times."""
    if a.size < 2 or b.size < 2:
        raise ValueError(f"difference_ci: needs >= 2 scores per side, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    mean_a = a[rng.integers(0, a.size, (resamples, a.size))].mean(axis=1)
    mean_b = b[rng.integers(0, b.size, (resamples, b.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(mean_b - mean_a, [tail, 1.0 - tail])
    return float(b.mean() - a.mean()), float(low), float(high)


def verdict(low: float, high: float, margin: float) -> str:
    """Equivalence of a CI [low, high] against +-margin (see the module docstring)."""
    if -margin < low and high < margin:
        return "equivalent"
    if low >= margin or high <= -margin:
        return "different"
    return "inconclusive"


def compare(mmsa: dict[str, np.ndarray], msabench: dict[str, np.ndarray], seed: int = 0):
    """[MetricParity] for every metric of METRICS."""
    rows = []
    for metric in METRICS:
        diff, low, high = difference_ci(mmsa[metric], msabench[metric], seed)
        margin = MARGINS[metric]
        rows.append(
            MetricParity(
                metric,
                mmsa[metric],
                msabench[metric],
                diff,
                low,
                high,
                margin,
                verdict(low, high, margin),
            )  # fmt: skip
        )
    return rows


def overall(rows: list[MetricParity]) -> str:
    """A method's verdict: equivalent on every metric, different on any, else inconclusive."""
    verdicts = {r.verdict for r in rows}
    if verdicts == {"equivalent"}:
        return "equivalent"
    return "different" if "different" in verdicts else "inconclusive"


def counts(rows: list[MetricParity]) -> str:
    """How many metrics got each verdict, e.g. "3 equivalent, 2 inconclusive"."""
    found = [(v, sum(r.verdict == v for r in rows)) for v in VERDICTS]
    return ", ".join(f"{n} {v}" for v, n in found if n)


def markdown(results: dict[str, list[MetricParity]], names: dict[str, str]) -> str:
    """One table: a row per method and metric."""
    lines = [
        "| method | metric | MMSA | msabench | difference (95% CI) | 0 in CI | margin | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, rows in results.items():
        for r in rows:
            lines.append(
                f"| {names.get(method, method)} | {metric_label(r.metric)} | "
                f"{r.mmsa.mean():.4g} ± {r.mmsa.std(ddof=1):.2g} | "
                f"{r.msabench.mean():.4g} ± {r.msabench.std(ddof=1):.2g} | "
                f"{r.difference:+.3g} [{r.low:+.3g}, {r.high:+.3g}] | "
                f"{'yes' if r.low <= 0 <= r.high else 'no'} | ±{r.margin:g} | {r.verdict} |"
            )
    return "\n".join(lines)
