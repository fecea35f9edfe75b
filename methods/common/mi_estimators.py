"""Mutual-information estimators shared by methods (defined once, here).

B = batch, Dx / Dy = dimensions of the two variables; x (B, Dx) and y (B, Dy) are paired by row.
Every estimator is an nn.Module whose `forward(x, y)` returns its estimate of I(x; y) in nats
(a scalar) and whose `learning_loss(x, y)` is what its own parameters minimise; a method trains
those parameters in its `extra_step` with `estimator_step` and excludes them from the main
optimiser (`MsaMethod.parameter_groups`).

* `info_nce` / `InfoNCE`: the InfoNCE lower bound (van den Oord et al. 2018; Poole et al. 2019)
  with a critic f(x_i, y_j); `ConcatCritic` is FactorCL's MLP critic on [x_i; y_j].
* `CPC`: MMIM's contrastive predictive coding score (Han et al., EMNLP 2021): a linear layer
  predicts y from x, predictions and targets are L2-normalised and scored against the other
  samples of the batch; it returns the NCE *loss* to minimise.
* `CLUB`: the variational contrastive log-ratio upper bound (vCLUB, Cheng et al., ICML 2020) with
  a Gaussian q(y|x) whose log-variance is tanh-bounded; q is fitted by maximum likelihood.
* `NCECLUB`: FactorCL's (Liang et al., NeurIPS 2023) NCE-CLUB: the critic is trained with the
  InfoNCE objective and the upper bound E_p(x,y)[f] - E_p(x)p(y)[f] is read from it.
* `ConditionalNCECLUB` / `ConditionalInfoNCE` (upper / lower estimates of I(x; y | c)) live in
  `methods.common.conditional_mi`.
* `MMILB`: MMIM's modality mutual-information lower bound, I(x; y) >= E[log q(y|x)] + H(y), with a
  Gaussian q(y|x) (networks for its mean and log-variance) and H(y) estimated from label-split
  memories of recent samples (`LabelSplitMemory`, `half_logdet_entropy`).
* `frozen_call(module, *args)`: module(*args) with detached parameters, for a main loss that uses
  an estimator (gradients reach the inputs, never the estimator's parameters).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- InfoNCE and CPC --------------------------------------------------------------------------
def info_nce(x: torch.Tensor, y: torch.Tensor, critic: Critic) -> torch.Tensor:
    """InfoNCE lower bound on I(x; y) in nats (at most log B): critic(x, y) gives scores (B, B)
    with scores[i, j] = f(x_i, y_j); the bound is mean_i [f(x_i, y_i) - logsumexp_j f(x_i, y_j)]
    + log B. Maximise it (or minimise its negative)."""
    scores = critic(x, y)
    positive = scores.diagonal()
    return (positive - scores.logsumexp(dim=1)).mean() + math.log(scores.shape[0])


def pairwise_concat(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All pairs [x_i; y_j]: x (B, Dx), y (B, Dy) -> (B, B, Dx + Dy)."""
    b = x.shape[0]
    return torch.cat([x.unsqueeze(1).expand(b, b, -1), y.unsqueeze(0).expand(b, b, -1)], dim=-1)


def mlp(in_size: int, hidden: int, out_size: int, layers: int = 2) -> nn.Sequential:
    """`layers` Linear layers with ReLU between them: (..., in_size) -> (..., out_size)."""
    sizes = [in_size] + [hidden] * (layers - 1) + [out_size]
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        modules.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


class ConcatCritic(nn.Module):
    """f(x_i, y_j) = MLP([x_i; y_j]) (FactorCL's critic): x (B, Dx), y (B, Dy) -> scores (B, B)."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 64, layers: int = 2) -> None:
        super().__init__()
        self.net = mlp(x_dim + y_dim, hidden, 1, layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(pairwise_concat(x, y)).squeeze(-1)


class InfoNCE(nn.Module):
    """InfoNCE lower bound with a ConcatCritic; forward(x, y) -> bound (scalar, nats)."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 64, layers: int = 2) -> None:
        super().__init__()
        self.critic = ConcatCritic(x_dim, y_dim, hidden, layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return info_nce(x, y, self.critic)

    def learning_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.forward(x, y)


class CPC(nn.Module):
    """MMIM's CPC: forward(x (B, Dx), y (B, Dy)) -> NCE loss (scalar) to minimise, where a linear
    layer predicts y from x, and the normalised prediction of sample i is scored against every
    normalised y_j: loss = -mean_i [s_ii - logsumexp_j s_ij], s_ij = <y_i, pred_j> (MMIM's
    orientation). Its parameters train with the main model (as in MMIM)."""

    def __init__(self, x_dim: int, y_dim: int) -> None:
        super().__init__()
        self.predict = nn.Linear(x_dim, y_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        prediction = F.normalize(self.predict(x), dim=-1)
        target = F.normalize(y, dim=-1)
        scores = target @ prediction.t()
        return -(scores.diagonal() - scores.logsumexp(dim=-1)).mean()


# -- Gaussian variational estimators ----------------------------------------------------------
class GaussianConditional(nn.Module):
    """q(y|x) = N(mu(x), diag exp(logvar(x))), two MLPs of one hidden layer (ReLU).
    forward(x (B, Dx)) -> (mu (B, Dy), logvar (B, Dy)); with `bounded_logvar` the log-variance
    goes through tanh (into [-1, 1]), as in CLUB; MMIM's reference code leaves it unbounded."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int, bounded_logvar: bool = True) -> None:
        super().__init__()
        self.mu = mlp(x_dim, hidden, y_dim)
        self.logvar = mlp(x_dim, hidden, y_dim)
        self.bounded_logvar = bounded_logvar

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logvar = self.logvar(x)
        return self.mu(x), torch.tanh(logvar) if self.bounded_logvar else logvar

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor, normalized: bool = True
    ) -> torch.Tensor:
        """mean_i log q(y_i|x_i) (scalar). `normalized=False` keeps only MMIM's reference-code
        term -(y - mu)^2 / (2 exp(logvar)), without -logvar/2 - log(2 pi)/2."""
        mu, logvar = self(x)
        log_q = -0.5 * (y - mu) ** 2 * torch.exp(-logvar)
        if normalized:
            log_q = log_q - 0.5 * (logvar + math.log(2 * math.pi))
        return log_q.sum(dim=-1).mean()


class CLUB(nn.Module):
    """vCLUB upper bound: forward(x, y) = E_i[log q(y_i|x_i)] - E_i E_j[log q(y_j|x_i)] (scalar,
    nats; constants cancel); learning_loss(x, y) = -mean log q(y|x) fits q."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.q = GaussianConditional(x_dim, y_dim, hidden, bounded_logvar=True)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.q(x)
        precision = torch.exp(-logvar)
        positive = -0.5 * ((y - mu) ** 2 * precision).sum(dim=-1)
        # E_j (y_j - mu_i)^2 = (mean_j y_j - mu_i)^2 + var_j(y_j): no (B, B, D) tensor needed
        spread = (y.mean(dim=0) - mu) ** 2 + y.var(dim=0, unbiased=False)
        negative = -0.5 * (spread * precision).sum(dim=-1)
        return (positive - negative).mean()

    def learning_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.q.log_likelihood(x, y)


class NCECLUB(nn.Module):
    """FactorCL's NCE-CLUB upper bound: forward(x, y) = mean_i f(x_i, y_i) - mean_ij f(x_i, y_j)
    with a ConcatCritic f trained by learning_loss(x, y) = -InfoNCE(x, y)."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 64, layers: int = 2) -> None:
        super().__init__()
        self.critic = ConcatCritic(x_dim, y_dim, hidden, layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scores = self.critic(x, y)
        return scores.diagonal().mean() - scores.mean()

    def learning_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -info_nce(x, y, self.critic)


def frozen_call(module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
    """module(*args) evaluated with every parameter detached: gradients flow to the inputs but never
    into the module's parameters (for a main loss that uses an estimator trained elsewhere)."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, args)


# -- MMIM's MMILB and its entropy ---------------------------------------------------------------
def half_logdet_entropy(samples: torch.Tensor, jitter: float = 1e-3) -> torch.Tensor:
    """Gaussian entropy without its constant, 0.5 logdet(Cov + jitter I), of samples (N, K);
    Cov is the biased sample covariance (as MMIM); the jitter keeps it finite for N <= K.
    Always in float32 or wider: under CUDA mixed precision (autocast) the covariance would be
    float16, which logdet does not take and whose 1e-3 jitter is near its resolution."""
    with torch.autocast(samples.device.type, enabled=False):
        samples = samples.float() if samples.dtype in (torch.float16, torch.bfloat16) else samples
        centred = samples - samples.mean(dim=0, keepdim=True)
        covariance = centred.t() @ centred / samples.shape[0]
        eye = torch.eye(samples.shape[1], dtype=samples.dtype, device=samples.device)
        return 0.5 * torch.logdet(covariance + jitter * eye)


class LabelSplitMemory:
    """MMIM's memories of recent projected samples, one per label sign (labels > 0 and < 0; zero
    labels are left out), each holding the samples of the last `size` training batches.

    `warmup`: the entropy of the first `warmup` batches after a `clear` counts 0 (MMSA's MMIM
    counts it from batch index mem_size + 1 of each epoch: warmup = size + 1; 0: from the first
    batch). `pushed` counts the batches pushed since the last clear."""

    def __init__(self, size: int, warmup: int = 0) -> None:
        if size < 0:
            raise ValueError(f"memory size: expected a non-negative number of batches, got {size}")
        if warmup < 0:
            raise ValueError(f"memory warmup: expected a non-negative batch count, got {warmup}")
        self.size = size
        self.warmup = warmup
        self.pushed = 0
        self.banks: dict[str, deque[torch.Tensor]] = {
            "pos": deque(maxlen=size or None),
            "neg": deque(maxlen=size or None),
        }

    @property
    def active(self) -> bool:
        """Whether the entropy counts for the next batch (`warmup` batches pushed already)."""
        return self.pushed >= self.warmup

    @staticmethod
    def split(samples: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """samples (B, K), labels (B,) -> {"pos": (B+, K), "neg": (B-, K)}."""
        return {"pos": samples[labels > 0], "neg": samples[labels < 0]}

    def entropy(
        self, samples: torch.Tensor, labels: torch.Tensor, jitter: float = 1e-3
    ) -> torch.Tensor:
        """Mean over the two signs of half_logdet_entropy(memory + current samples) (MMIM's
        0.25 (logdet S_pos + logdet S_neg)). A sign adds 0 where its covariance is singular for
        certain: fewer than 2 samples, or, without jitter, no more samples than dimensions (N <=
        K; MMIM's logdet would be -inf). 0 while not `active`. Scalar."""
        total = samples.new_zeros(())
        if not self.active:
            return total
        least = 2 if jitter > 0 else samples.shape[1] + 1
        for sign, current in self.split(samples, labels).items():
            pool = torch.cat([*self.banks[sign], current], dim=0)
            if pool.shape[0] >= least:
                total = total + 0.5 * half_logdet_entropy(pool, jitter)
        return total

    def push(self, samples: torch.Tensor, labels: torch.Tensor) -> None:
        """Remember this batch's samples (detached), dropping the oldest batch when full."""
        self.pushed += 1
        if self.size == 0:
            return
        for sign, current in self.split(samples.detach(), labels).items():
            self.banks[sign].append(current)

    def clear(self) -> None:
        """Forget every remembered batch and restart the warmup (MMSA: at each epoch's start)."""
        self.pushed = 0
        for bank in self.banks.values():
            bank.clear()


class MMILB(nn.Module):
    """MMIM's MMILB between x (B, Dx) and y (B, Dy): forward(x, y) = mean log q(y|x) (the
    likelihood part of the bound; learning_loss = its negative fits q). `entropy(y, labels)` adds
    H(y) from a frozen random projection tanh(W y) (B, max(Dy // 4, 1)) and label-split memories
    (MMIM's `entropy_prj`, which its estimator step never trains, frozen here explicitly).

    `reference_form=True` reproduces MMIM's code: unbounded log-variance and no -logvar/2 term
    (a weighted squared error that its own step can shrink by growing the variance).
    `memory_warmup` and `jitter`: LabelSplitMemory's warmup and the covariance jitter."""

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        memory_size: int = 1,
        reference_form: bool = False,
        jitter: float = 1e-3,
        memory_warmup: int = 0,
    ) -> None:
        super().__init__()
        self.q = GaussianConditional(x_dim, y_dim, y_dim, bounded_logvar=not reference_form)
        self.normalized = not reference_form
        self.entropy_projection = nn.Linear(y_dim, max(y_dim // 4, 1))
        self.entropy_projection.requires_grad_(False)
        self.memory = LabelSplitMemory(memory_size, memory_warmup)
        self.jitter = jitter

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.q.log_likelihood(x, y, self.normalized)

    def learning_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.forward(x, y)

    def entropy(self, y: torch.Tensor, labels: torch.Tensor, remember: bool) -> torch.Tensor:
        """H(y) estimate (scalar) from memory + this batch; `remember` then stores the batch."""
        projected = torch.tanh(self.entropy_projection(y))
        value = self.memory.entropy(projected, labels, self.jitter)
        if remember:
            self.memory.push(projected, labels)
        return value


def estimator_step(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float = 0.0
) -> float:
    """One step of an estimator's own optimiser on `loss` (compute it from detached inputs);
    gradients are cleared before and after, so they never reach the main step. Returns the loss."""
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())
