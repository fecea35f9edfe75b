"""FINE's factorization of the MoQ tokens: the Factorized Task-Relevant Encoder (FTRE), and MISA's
shared/private split for the ablation "FTRE replaced by MISA" (`factorization: misa`).

B = batch, l = tokens per modality (num_queries), d = model_dim, M = 3 modalities (text, audio,
vision); pairs are (t, a), (t, v), (a, v). Every encoder is token-wise: (B, l, d) -> (B, l, d).

FTRE: per modality, shared x^s and unique x^u MLP encoders; a decoder rebuilds the MoQ tokens
from [x^s; x^u] (L_recon, MSE); task encoders give x^str = T^s(x^s) and x^utr = T^u(x^u);
label-shared and label-unique task encoders embed the label scaled to [-1, 1], Y^str and Y^utr
(B, d). On token means (B, d):
  I_sha = mean over pairs of InfoNCE(x^s_i; x^s_j)                            maximised (`use_sha`)
  I_uni = mean over pairs of NCE-CLUB(x^u_i; x^u_j)                           minimised
  I_str = mean over pairs of conditional NCE-CLUB(x^str_i; x^str_j | Y^str) minimised
  I_utr = mean over modalities of InfoNCE(x^utr_m; Y^utr)  maximised (with I_str: `use_task_mi`)
  L_MI  = -I_sha + I_uni + L_recon + I_str - I_utr,
each term weighted by beta_mi and logged as sha (= -I_sha), uni, recon, str, utr (= -I_utr).
The InfoNCE critics train with the model (a lower bound is maximised jointly, as in FactorCL); the
NCE-CLUB critics (`estimator_parameters`) train in FINE's `extra_step` (`critic_step`) with their
own Adam on detached features (FactorCL) and are read with frozen parameters in the main loss.
The label encoders see labels only in the loss: predictions never depend on the label.

MISA: one shared encoder for all modalities and a private encoder per modality (Linear + Sigmoid),
CMD between shared parts, difference loss between shared and private parts and between private
pairs, reconstruction of the MoQ tokens from shared + private; logged as cmd, diff, recon.

`FactorizationMixin` builds these modules as attributes of the method itself (so their
state_dict keys are FINE's own) and reads `self.hparams` (factorization, use_sha, use_task_mi,
critic_hidden, critic_learning_rate, cmd_moments, beta_mi) and `self.label_span`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from harness.data.types import Batch
from methods.common.conditional_mi import ConditionalNCECLUB
from methods.common.mi_estimators import NCECLUB, InfoNCE, estimator_step, frozen_call, mlp
from methods.common.similarity import cmd, difference_loss

MODALITIES = ("text", "audio", "vision")
PAIRS = tuple(combinations(MODALITIES, 2))
FACTORIZATIONS = ("ftre", "misa", "none")


def pair_mean(
    estimate: Callable[..., torch.Tensor], pooled: dict, name: str, *condition: torch.Tensor
) -> torch.Tensor:
    """Mean over modality pairs (a, b) of estimate("a_b", pooled[name_a], pooled[name_b],
    *condition): pooled factors (B, d), condition (B, d) -> scalar."""
    return torch.stack(
        [
            estimate(f"{a}_{b}", pooled[f"{name}_{a}"], pooled[f"{name}_{b}"], *condition)
            for a, b in PAIRS
        ]
    ).mean()


class FactorizationMixin:
    """FTRE / MISA / no factorization, mixed into an `nn.Module` method (FINE)."""

    hparams: Any
    label_span: float

    # -- modules ---------------------------------------------------------------------------------
    def _build_factorization(self, hp: Any, d: int) -> None:
        def per_modality(build) -> nn.ModuleDict:
            return nn.ModuleDict({m: build() for m in MODALITIES})

        pair_names = [f"{a}_{b}" for a, b in PAIRS]
        if hp.factorization == "ftre":
            self.shared_encoders = per_modality(lambda: mlp(d, d, d))
            self.unique_encoders = per_modality(lambda: mlp(d, d, d))
            self.decoders = per_modality(lambda: mlp(2 * d, d, d))
            self.task_shared = per_modality(lambda: mlp(d, d, d))
            self.task_unique = per_modality(lambda: mlp(d, d, d))
            self.label_shared = mlp(1, d, d)
            self.label_unique = mlp(1, d, d)
            h = hp.critic_hidden
            self.uni_estimators = nn.ModuleDict({p: NCECLUB(d, d, h) for p in pair_names})
            if hp.use_sha:
                self.sha_critics = nn.ModuleDict({p: InfoNCE(d, d, h) for p in pair_names})
            if hp.use_task_mi:
                self.utr_critics = per_modality(lambda: InfoNCE(d, d, h))
                self.str_estimators = nn.ModuleDict(
                    {p: ConditionalNCECLUB(d, d, d, h) for p in pair_names}
                )
        elif hp.factorization == "misa":
            self.misa_shared = nn.Sequential(nn.Linear(d, d), nn.Sigmoid())
            self.misa_private = per_modality(lambda: nn.Sequential(nn.Linear(d, d), nn.Sigmoid()))
            self.decoders = per_modality(lambda: nn.Linear(d, d))

    def estimator_parameters(self) -> list[nn.Parameter]:
        """The NCE-CLUB critics (I_uni, I_str): trained only by their own optimiser."""
        if self.hparams.factorization != "ftre":
            return []
        modules = [self.uni_estimators]
        if self.hparams.use_task_mi:
            modules.append(self.str_estimators)
        return [p for module in modules for p in module.parameters()]

    def _build_estimator_optimizer(self) -> torch.optim.Optimizer | None:
        """Adam over `estimator_parameters` (critic_learning_rate); None when there are none."""
        estimators = self.estimator_parameters()
        if not estimators:
            return None
        return torch.optim.Adam(estimators, lr=self.hparams.critic_learning_rate)

    def factorization_weights(self) -> dict[str, float]:
        """The weights of the factorization's loss terms (all beta_mi)."""
        hp, weights = self.hparams, {}
        if hp.factorization == "ftre":
            weights |= {"uni": hp.beta_mi, "recon": hp.beta_mi}
            if hp.use_sha:
                weights["sha"] = hp.beta_mi
            if hp.use_task_mi:
                weights |= {"str": hp.beta_mi, "utr": hp.beta_mi}
        elif hp.factorization == "misa":
            weights |= {"cmd": hp.beta_mi, "diff": hp.beta_mi, "recon": hp.beta_mi}
        return weights

    # -- factors ---------------------------------------------------------------------------------
    def factorize(self, tokens: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Token-wise factors {name_<m>: (B, l, d)} of the chosen factorization."""
        hp, out = self.hparams, {}
        for m in MODALITIES:
            x = tokens[m]
            if hp.factorization == "ftre":
                shared, unique = self.shared_encoders[m](x), self.unique_encoders[m](x)
                out[f"shared_{m}"], out[f"unique_{m}"] = shared, unique
                out[f"task_shared_{m}"] = self.task_shared[m](shared)
                out[f"task_unique_{m}"] = self.task_unique[m](unique)
            elif hp.factorization == "misa":
                out[f"shared_{m}"] = self.misa_shared(x)
                out[f"private_{m}"] = self.misa_private[m](x)
        return out

    def feature_sets(self, tokens: dict, factors: dict) -> list[torch.Tensor]:
        """The token sets (B, l, d) the fusion reads: x^str, x^utr per modality (FTRE), shared,
        private per modality (MISA), or the MoQ tokens (none)."""
        hp = self.hparams
        if hp.factorization == "ftre":
            names = ("task_shared", "task_unique")
        elif hp.factorization == "misa":
            names = ("shared", "private")
        else:
            return [tokens[m] for m in MODALITIES]
        return [factors[f"{name}_{m}"] for m in MODALITIES for name in names]

    def _reconstruction(self, tokens: dict, factors: dict) -> torch.Tensor:
        """Mean over modalities of the token-wise MSE of the decoder's rebuild of the MoQ tokens
        from [shared; unique] (FTRE) or shared + private (MISA); 0 without factorization."""
        hp = self.hparams
        if hp.factorization == "none":
            return tokens["text"].new_zeros(())
        losses = []
        for m in MODALITIES:
            if hp.factorization == "ftre":
                rebuilt = self.decoders[m](
                    torch.cat([factors[f"shared_{m}"], factors[f"unique_{m}"]], dim=-1)
                )
            else:
                rebuilt = self.decoders[m](factors[f"shared_{m}"] + factors[f"private_{m}"])
            losses.append(F.mse_loss(rebuilt, tokens[m]))
        return torch.stack(losses).mean()

    # -- losses ----------------------------------------------------------------------------------
    def _label_inputs(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels scaled into [-1, 1]: (B,) -> (B, 1), the label encoders' input."""
        return (labels.to(torch.float32) / (self.label_span / 2)).unsqueeze(-1)

    def factorization_terms(self, batch: Batch, outputs: dict) -> dict[str, torch.Tensor]:
        """The factorization's weighted loss terms from the pooled factors (B, d) in `outputs`
        and its "recon"; {} without factorization."""
        if self.hparams.factorization == "ftre":
            return self._ftre_terms(batch, outputs)
        if self.hparams.factorization == "misa":
            return self._misa_terms(outputs)
        return {}

    def _ftre_terms(self, batch: Batch, outputs: dict) -> dict[str, torch.Tensor]:
        hp, beta, terms = self.hparams, self.hparams.beta_mi, {}
        if hp.use_sha:
            sha = pair_mean(lambda p, x, y: self.sha_critics[p](x, y), outputs, "shared")
            terms["sha"] = -beta * sha
        uni = pair_mean(
            lambda p, x, y: frozen_call(self.uni_estimators[p], x, y), outputs, "unique"
        )
        terms["uni"] = beta * uni
        terms["recon"] = beta * outputs["recon"]
        if hp.use_task_mi:
            y = self._label_inputs(batch.labels)
            y_shared, y_unique = self.label_shared(y), self.label_unique(y)
            strength = pair_mean(
                lambda p, x, z, c: frozen_call(self.str_estimators[p], x, z, c),
                outputs,
                "task_shared",
                y_shared,
            )
            terms["str"] = beta * strength
            utr = torch.stack(
                [self.utr_critics[m](outputs[f"task_unique_{m}"], y_unique) for m in MODALITIES]
            ).mean()
            terms["utr"] = -beta * utr
        return terms

    def _misa_terms(self, outputs: dict) -> dict[str, torch.Tensor]:
        hp, beta = self.hparams, self.hparams.beta_mi
        shared = [outputs[f"shared_{m}"] for m in MODALITIES]
        private = [outputs[f"private_{m}"] for m in MODALITIES]
        similarity = torch.stack(
            [cmd(a, b, hp.cmd_moments) for a, b in combinations(shared, 2)]
        ).mean()
        difference = torch.stack(
            [difference_loss(s, p) for s, p in zip(shared, private, strict=True)]
            + [difference_loss(a, b) for a, b in combinations(private, 2)]
        ).sum()
        return {
            "cmd": beta * similarity,
            "diff": beta * difference,
            "recon": beta * outputs["recon"],
        }

    # -- the critics' own step -------------------------------------------------------------------
    def critic_step(
        self,
        optimizer: torch.optim.Optimizer,
        tokens: dict[str, torch.Tensor],
        labels: torch.Tensor,
    ) -> dict[str, float]:
        """One step of the NCE-CLUB critics (I_uni, and I_str when on) with the InfoNCE objective
        on the detached factors of the MoQ tokens {m: (B, l, d)}; labels (B,)."""
        with torch.no_grad():
            factors = self.factorize(tokens)
            pooled = {name: value.mean(dim=1) for name, value in factors.items()}
            y_shared = self.label_shared(self._label_inputs(labels))
        loss = pair_mean(
            lambda p, x, y: self.uni_estimators[p].learning_loss(x, y), pooled, "unique"
        )
        if self.hparams.use_task_mi:
            loss = loss + pair_mean(
                lambda p, x, z, c: self.str_estimators[p].learning_loss(x, z, c),
                pooled,
                "task_shared",
                y_shared,
            )
        return {"critic_loss": estimator_step(optimizer, loss)}
