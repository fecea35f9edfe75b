"""Linear floor: ridge regression (logistic regression on the binary kind) on pooled features.

The number below which a method has learned nothing beyond a linear read-out of the features:
every modality the dataset has is averaged over its real time steps (`pooling: mean`; `mean_std`
adds each feature's standard deviation over the steps), the pooled columns are standardised on
the training split, and a linear model is fitted on train in closed form, its L2 penalty chosen
from a log-spaced grid (`penalty_min` .. `penalty_max`, `penalty_steps` values) by the
validation selection metric (`train.select_metric`). Deterministic and fitted in seconds: every
seed gives the same model, and there is nothing for Optuna to tune (the tuning stage runs one
trial).

  * Regression kinds: ridge, w = (X'X + a I)^-1 X'y on centred X and y (the intercept is not
    penalised), solved in float64; predictions clamped into the label range (`output_head:
    clamp`; a linear read-out can leave it).
  * Binary kind: L2-penalised logistic regression, fitted by Newton's method (iteratively
    reweighted least squares, float64, `newton_steps` at most, stopping when no weight moves by
    more than 1e-10); the prediction is the probability of class 1.

Reference: the linear baselines of the field's benchmarks (MultiBench's and MERBench's simple
baselines; the ridge read-outs of representation probing) and the "tuned simple baselines"
argument of Rheude, Eils & Wild, "Fusion or Confusion?" (arXiv 2512.22991). Text: the dataset's
text features (on a token dataset, the frozen text model's token states), pooled like the rest.

N = samples, F = pooled columns (sum over modalities of D_m, doubled by `mean_std`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harness.data.loading import iterate_batches
from harness.data.spec import is_classification
from harness.data.types import Batch, DataSpec, SplitData
from harness.errors import ConfigError
from harness.metrics import compute_metrics, is_better
from methods.base import MsaMethod, OptimHparams, check_choice, register_method
from methods.common.encoders import masked_mean
from methods.common.heads import bound_scores

POOLINGS = ("mean", "mean_std")
STEP_TOLERANCE = 1e-10  # Newton's method stops when no weight moves by more


@dataclass(frozen=True)
class RidgeHparams(OptimHparams):
    pooling: str = "mean"  # POOLINGS
    penalty_min: float = 1e-2
    penalty_max: float = 1e4
    penalty_steps: int = 13  # log-spaced penalties from penalty_min to penalty_max
    newton_steps: int = 50  # logistic regression (binary kind) only
    output_head: str = "clamp"  # the binary kind sets "sigmoid"
    batch_size: int = 256  # rows pooled at a time when the features are read (no training steps)


@register_method("ridge")
class Ridge(MsaMethod):
    """A linear model on pooled features, fitted in closed form. Outputs: prediction (B,),
    pooled (B, F) standardised."""

    Hparams = RidgeHparams
    MODALITIES_READ = None  # every modality the dataset has
    CLOSED_FORM = True
    KIND_DEFAULTS = {"mosi": {}, "mosei": {}, "sims": {}}
    SEARCH_SPACE = {}  # the penalty is chosen on validation by the fit itself

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        check_choice(hparams, "pooling", POOLINGS, where)
        if not 0 < hparams.penalty_min <= hparams.penalty_max or hparams.penalty_steps < 1:
            raise ConfigError(
                f"{where}.penalty_min/penalty_max/penalty_steps: expected 0 < min <= max and at "
                f"least 1 step, got {hparams.penalty_min}, {hparams.penalty_max} and "
                f"{hparams.penalty_steps}"
            )
        if hparams.newton_steps < 1:
            raise ConfigError(f"{where}.newton_steps: expected >= 1, got {hparams.newton_steps}")

    def __init__(self, hparams: RidgeHparams, spec: DataSpec) -> None:
        super().__init__(hparams, spec)
        self.modalities = self.modalities_read(spec)
        width = sum(spec.feature_dims[m] for m in self.modalities)
        width *= 2 if hparams.pooling == "mean_std" else 1
        self.linear = nn.Linear(width, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.linear.requires_grad_(False)  # fitted in closed form, never stepped
        self.register_buffer("column_mean", torch.zeros(width))
        self.register_buffer("column_scale", torch.ones(width))
        self.classification = is_classification(spec.kind)

    def pool(self, batch: Batch) -> torch.Tensor:
        """Pooled, unstandardised columns (B, F): per modality the mean over real steps (and the
        standard deviation with `mean_std`), modalities in the dataset's order."""
        columns = []
        for m in self.modalities:
            x, mask = batch.features[m], batch.mask(m)
            mean = masked_mean(x, mask)
            columns.append(mean)
            if self.hparams.pooling == "mean_std":
                columns.append(masked_mean((x - mean.unsqueeze(1)) ** 2, mask).sqrt())
        return torch.cat(columns, dim=-1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        pooled = (self.pool(batch) - self.column_mean) / self.column_scale
        raw = self.linear(pooled).squeeze(-1)
        prediction = bound_scores(raw, self.hparams.output_head, self.spec.label_range)
        return {"prediction": prediction, "pooled": pooled}

    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The fit's objective without its penalty, for logging: squared error (regression) or
        binary cross-entropy (binary kind) of the batch."""
        prediction, labels = outputs["prediction"], batch.labels
        if self.classification:
            return {"task": nn.functional.binary_cross_entropy(prediction.float(), labels)}
        return {"task": nn.functional.mse_loss(prediction, labels)}

    # -- the closed-form fit ------------------------------------------------------------------
    @torch.no_grad()
    def pooled_split(self, split: SplitData) -> tuple[np.ndarray, np.ndarray]:
        """(pooled columns (N, F), labels (N,)) of a whole split, float64, in order."""
        device = self.linear.weight.device
        rows = [
            self.pool(self.prepare_batch(batch.to(device))).double().cpu()
            for batch in iterate_batches(split, self.hparams.batch_size, shuffle=False)
        ]
        return torch.cat(rows).numpy(), split.labels.double().cpu().numpy()

    def penalties(self) -> np.ndarray:
        """The penalty grid (penalty_steps,), log-spaced."""
        hp = self.hparams
        return np.geomspace(hp.penalty_min, hp.penalty_max, hp.penalty_steps)

    def fit_closed_form(
        self, train: SplitData, valid: SplitData, select_metric: str
    ) -> dict[str, float]:
        self.eval()
        x_train, y_train = self.pooled_split(train)
        x_valid, y_valid = self.pooled_split(valid)
        mean = x_train.mean(axis=0)
        scale = x_train.std(axis=0)
        scale[scale == 0] = 1.0  # a constant column: left at 0 after centring
        x_train, x_valid = (x_train - mean) / scale, (x_valid - mean) / scale
        fit = _logistic if self.classification else _ridge
        best = None
        for penalty in self.penalties():
            weights, bias = fit(x_train, y_train, float(penalty), self.hparams.newton_steps)
            scores = self._bounded(x_valid @ weights + bias)
            value = compute_metrics(self.spec.kind, scores, y_valid)[select_metric]
            if best is None or is_better(select_metric, value, best[0]):
                best = (value, float(penalty), weights, bias)
        assert best is not None
        _, penalty, weights, bias = best
        device = self.linear.weight.device
        self.column_mean.copy_(torch.as_tensor(mean, dtype=torch.float32, device=device))
        self.column_scale.copy_(torch.as_tensor(scale, dtype=torch.float32, device=device))
        self.linear.weight.copy_(torch.as_tensor(weights[None, :], device=device))
        self.linear.bias.fill_(float(bias))
        train_scores = self._bounded(x_train @ weights + bias)
        return {"penalty": penalty, "total": _objective(train_scores, y_train, self.classification)}

    def _bounded(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores (N,) through the output head, as `forward` applies it."""
        scores = bound_scores(
            torch.from_numpy(raw), self.hparams.output_head, self.spec.label_range
        )
        return scores.numpy()


def _ridge(x: np.ndarray, y: np.ndarray, penalty: float, _steps: int) -> tuple[np.ndarray, float]:
    """Ridge on standardised x (N, F) and y (N,): (weights (F,), intercept), the intercept
    unpenalised (x is centred, so it is y's mean)."""
    offset = float(y.mean())
    gram = x.T @ x + penalty * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x.T @ (y - offset))
    return weights, offset


def _logistic(x: np.ndarray, y: np.ndarray, penalty: float, steps: int) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression on x (N, F) and 0/1 y (N,) by Newton's method (IRLS),
    the intercept unpenalised: (weights (F,), intercept)."""
    design = np.hstack([np.ones((x.shape[0], 1)), x])  # (N, F + 1), column 0 the intercept
    ridge = penalty * np.eye(design.shape[1])
    ridge[0, 0] = 0.0
    theta = np.zeros(design.shape[1])
    for _ in range(steps):
        probability = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (probability - y) + ridge @ theta
        hessian = design.T @ (design * (probability * (1 - probability))[:, None]) + ridge
        step = np.linalg.solve(hessian + 1e-12 * np.eye(hessian.shape[0]), gradient)
        theta -= step
        if np.max(np.abs(step)) < STEP_TOLERANCE:
            break
    return theta[1:], float(theta[0])


def _objective(scores: np.ndarray, y: np.ndarray, classification: bool) -> float:
    """Mean squared error, or binary cross-entropy of probabilities, of scores (N,) for y (N,)."""
    if classification:
        p = np.clip(scores, 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(np.mean((scores - y) ** 2))
