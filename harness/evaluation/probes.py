"""Linear probes from a trained model's factor representations to the true latents of the
synthetic benchmark (which stores each sample's shared latent s (N, S) and unique latents u_m
(N, U) in features/<dataset>/latents.npz).

A probe is a ridge regression (features standardised on the probe's training split, the penalty
chosen by leave-one-out cross-validation) fitted on the model's representations of the training
split and scored by R^2 (averaged over the latent's dimensions) on the test split. A factorized
model separates the latents if its shared representation predicts s better than its unique one,
and its unique representation predicts u_m better than its shared one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from harness.data.loading import iterate_batches
from harness.data.types import MODALITIES, SplitData
from harness.errors import DataError

LATENTS_FILE = "latents.npz"
ALPHAS = tuple(np.logspace(-3, 3, 13))
# the pooled factor outputs a method may expose, per modality: output name prefix -> factor
FACTOR_PREFIXES = ("shared", "unique", "private", "task_shared", "task_unique")


@dataclass(frozen=True)
class ProbeResult:
    representation: str  # e.g. "shared_text"
    target: str  # "shared" or "unique_<m>"
    r2: float


def probe_r2(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> float:
    """R^2 on the test rows of a ridge probe fitted on the train rows. x (N, D), y (N, K)."""
    probe = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    probe.fit(train_x, train_y)
    return float(r2_score(test_y, probe.predict(test_x), multioutput="uniform_average"))


def load_latents(store: Path, split: str) -> dict[str, np.ndarray]:
    """{"shared": (N, S), "unique_<m>": (N, U)} of one split; DataError if the store has none."""
    path = Path(store) / LATENTS_FILE
    if not path.is_file():
        raise DataError(
            f"{path}: missing; probes need a dataset whose true latents are known "
            "(source: synthetic)"
        )
    with np.load(path) as archive:
        latents = {"shared": archive[f"{split}/shared"]}
        for m in MODALITIES:
            latents[f"unique_{m}"] = archive[f"{split}/unique/{m}"]
    return latents


@torch.no_grad()
def representations(model: torch.nn.Module, split: SplitData, batch_size: int = 256) -> dict:
    """The model's pooled factor outputs on a split, in the split's order:
    {"<prefix>_<m>": (N, D)} for every prefix in FACTOR_PREFIXES the model outputs."""
    model.eval()
    collected: dict[str, list[np.ndarray]] = {}
    for batch in iterate_batches(split, batch_size, shuffle=False):
        prepare = getattr(model, "prepare_batch", None)  # a method's text encoder, if any
        outputs = model(prepare(batch) if prepare is not None else batch)
        for name, value in outputs.items():
            prefix, _, modality = name.rpartition("_")
            if prefix in FACTOR_PREFIXES and modality in MODALITIES:
                collected.setdefault(name, []).append(value.detach().cpu().numpy())
    if not collected:
        raise DataError(
            f"{type(model).__name__}: outputs no factor representations "
            f"({', '.join(p + '_<m>' for p in FACTOR_PREFIXES)}); nothing to probe"
        )
    return {name: np.concatenate(parts) for name, parts in collected.items()}


def probe_all(
    train_reps: dict[str, np.ndarray],
    train_latents: dict[str, np.ndarray],
    test_reps: dict[str, np.ndarray],
    test_latents: dict[str, np.ndarray],
) -> list[ProbeResult]:
    """Every representation of modality m probed for the shared latent and for u_m."""
    results = []
    for name in sorted(train_reps):
        modality = name.rpartition("_")[2]
        for target in ("shared", f"unique_{modality}"):
            r2 = probe_r2(
                train_reps[name], train_latents[target], test_reps[name], test_latents[target]
            )
            results.append(ProbeResult(name, target, r2))
    return results


def separation(results: list[ProbeResult], shared: str = "shared", unique: str = "unique") -> dict:
    """Per modality: R^2 of the `shared` and `unique` representations for s and for u_m, and
    whether each latent is predicted better by its own representation."""
    r2 = {(r.representation, r.target): r.r2 for r in results}
    out = {}
    for m in MODALITIES:
        keys = {
            "shared_rep->s": (f"{shared}_{m}", "shared"),
            "unique_rep->s": (f"{unique}_{m}", "shared"),
            "shared_rep->u": (f"{shared}_{m}", f"unique_{m}"),
            "unique_rep->u": (f"{unique}_{m}", f"unique_{m}"),
        }
        if not all(key in r2 for key in keys.values()):
            continue
        row = {label: r2[key] for label, key in keys.items()}
        row["s_separated"] = row["shared_rep->s"] > row["unique_rep->s"]
        row["u_separated"] = row["unique_rep->u"] > row["shared_rep->u"]
        out[m] = row
    return out


def render_markdown(dataset: str, method: str, results: list[ProbeResult], summary: dict) -> str:
    """The probe table: one row per representation, R^2 for s and for u_m; then the verdict."""
    lines = [
        f"## Linear probes: {method} on {dataset}",
        "",
        "R^2 on the test split of ridge probes fitted on the training split's representations.",
        "",
        "| representation | R^2 for shared latent s | R^2 for unique latent u_m |",
        "|---|---|---|",
    ]
    by_name: dict[str, dict[str, float]] = {}
    for r in results:
        by_name.setdefault(r.representation, {})["s" if r.target == "shared" else "u"] = r.r2
    for name in sorted(by_name):
        lines.append(f"| {name} | {by_name[name]['s']:.3f} | {by_name[name]['u']:.3f} |")
    lines += ["", "| modality | s: shared rep > unique rep | u_m: unique rep > shared rep |"]
    lines.append("|---|---|---|")
    for m, row in summary.items():
        lines.append(
            f"| {m} | {'yes' if row['s_separated'] else 'no'} "
            f"({row['shared_rep->s']:.3f} vs {row['unique_rep->s']:.3f}) | "
            f"{'yes' if row['u_separated'] else 'no'} "
            f"({row['unique_rep->u']:.3f} vs {row['shared_rep->u']:.3f}) |"
        )
    return "\n".join(lines) + "\n"


def as_metrics(results: list[ProbeResult]) -> dict[str, float]:
    """Flat {"<representation>-><target>": R^2} (a DVC metrics file)."""
    return {f"{r.representation}->{r.target}": round(r.r2, 6) for r in results}


def to_rows(results: list[ProbeResult]) -> list[dict]:
    return [asdict(r) for r in results]
