"""The one method interface every method in `methods/` implements, and its registry.

A method is an `nn.Module` subclass that
  * declares a frozen hyperparameter dataclass (`Hparams`), per-dataset-kind default overrides
    (`KIND_DEFAULTS`) and an Optuna search space (`SEARCH_SPACE`);
  * builds itself from (hyperparameters, DataSpec);
  * maps a Batch to outputs (`forward`, which must return at least "prediction" of shape (B,));
  * returns its *named, already weighted* loss terms (`loss_terms`); the loop minimises their sum;
  * optionally overrides `extra_step` (e.g. an MI critic's own optimiser step) and
    `parameter_groups` (per-group learning rates). The harness brings the one training loop.

Text. Every method reads either the dataset's text features (`text_encoder: features`) or a
pretrained Transformer over the dataset's token ids (`pretrained`; methods/common/
pretrained_text.py), fine-tuned (`text_finetune: true`, its own optimiser group with
`learning_rate_bert` and `weight_decay_bert`, as MMSA's config_regression.json) or frozen. `auto`
(the default) is `pretrained` where the method's reference fine-tunes BERT (`TEXT_POOLING` set:
MISA, MMIM, Self-MM, ALMT, TFR-Net, CENET, TETFN) and the dataset has tokens, else `features`.
A method with `TEXT_POOLING` builds its own encoder with that pooling; for any other method,
`pretrained` swaps the batch's `text` features for the encoder's token states (`prepare_batch`,
called by the loop before the method sees a batch), so its own text network reads them as it
reads features.
"""

from __future__ import annotations

import dataclasses
import difflib
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from harness.data.spec import DATASET_KINDS, MODALITIES
from harness.data.types import Batch, DataSpec, SplitData
from harness.errors import ConfigError
from harness.registry import Registry
from methods.common.pretrained_text import PretrainedTextEncoder
from methods.hparams import (
    TASK_KIND_HPARAMS,
    TEXT_ENCODERS,
    _check_recipe,
    _check_task,
    _coerce,
)
from methods.hparams import OptimHparams as OptimHparams  # re-exported: the method interface
from methods.hparams import check_choice as check_choice  # re-exported: used by the methods
from methods.search_space import SearchSpace

METHODS: Registry[type[MsaMethod]] = Registry("method")


def register_method(name: str):
    """Class decorator: `@register_method("tfn")`; sets `cls.name` and registers it once. The
    class must live in methods/<name>.py: the catalog (methods/__init__.py) finds a method by
    its module's name without importing it."""

    def decorate(cls: type[MsaMethod]) -> type[MsaMethod]:
        expected = f"methods.{name}"
        if cls.__module__ not in (expected, "__main__") and cls.__module__.startswith("methods."):
            raise ValueError(f"method '{name}' must be defined in {expected}, not {cls.__module__}")
        cls.name = name
        return METHODS.register(name)(cls)

    return decorate


@dataclass(frozen=True)
class TrainingPass:
    """A whole pass over the training split that the loop runs before the main pass in every
    epoch, with an optimiser of its own (Adam over `parameter_groups`, built once per fit) and a
    loss of its own (`loss_terms(batch)`: named scalar terms, minimised as a sum). Gradients
    reach every parameter the loss depends on and are clipped as the method's recipe says, but
    only this pass's parameters are stepped: MMSA's MMIM trains its likelihood bound so
    (`train_mmilb`, then `train_others`, each epoch)."""

    name: str
    parameter_groups: list[dict[str, Any]]
    loss_terms: Callable[[Batch], dict[str, torch.Tensor]]
    # the share of each epoch's shuffled batches the pass reads, from the first: batch i runs
    # while i / n_batches < fraction (MMSA's MMIM reads half on MOSEI)
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"pass {self.name!r}: fraction must be in (0, 1], got {self.fraction}")


class MsaMethod(nn.Module, metaclass=ABCMeta):
    """Base class of all methods; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    Hparams: ClassVar[type[OptimHparams]] = OptimHparams
    KIND_DEFAULTS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    SEARCH_SPACE: ClassVar[SearchSpace] = {}
    # "cls" or "mean": the method's reference fine-tunes BERT and pools it so (its own encoder)
    TEXT_POOLING: ClassVar[str | None] = None
    # the dataset kinds the method can be trained on (a method whose machinery only makes sense
    # for a continuous score leaves out "binary" and says why in UNSUPPORTED_KINDS_REASON)
    KINDS: ClassVar[tuple[str, ...]] = DATASET_KINDS
    UNSUPPORTED_KINDS_REASON: ClassVar[str] = ""
    # the modalities the method reads: it can be built only for a dataset that has them all;
    # None reads whatever modalities the dataset has (the late-fusion and linear baselines)
    MODALITIES_READ: ClassVar[tuple[str, ...] | None] = MODALITIES
    # True for a method fitted in closed form (`fit_closed_form`) instead of by epochs of
    # gradient steps: the loop calls it once (the linear floor)
    CLOSED_FORM: ClassVar[bool] = False

    def __init__(self, hparams: OptimHparams, spec: DataSpec) -> None:
        super().__init__()
        self.hparams = hparams
        self.spec = spec
        self.text_mode = self.resolve_text_mode(hparams, spec)
        self.token_text_encoder: PretrainedTextEncoder | None = None
        if self.text_mode == "pretrained" and self.TEXT_POOLING is None:
            assert spec.tokens is not None
            self.token_text_encoder = PretrainedTextEncoder(
                spec.tokens, "tokens", hparams.text_finetune
            )

    # -- text ---------------------------------------------------------------------------------
    @classmethod
    def resolve_text_mode(cls, hparams: OptimHparams, spec: DataSpec) -> str:
        """ "features" or "pretrained" for these hyperparameters on this dataset (see the module
        docstring); ConfigError when `pretrained` is asked of a dataset without token ids."""
        mode = hparams.text_encoder
        if mode == "auto":
            return "pretrained" if cls.TEXT_POOLING and spec.tokens is not None else "features"
        if mode == "pretrained" and spec.tokens is None:
            raise ConfigError(
                f"methods.{cls.name}.hparams.text_encoder: 'pretrained' needs token ids, but the "
                "dataset has none (its source gives no text_bert/transcripts); use 'features'"
            )
        return mode

    @classmethod
    def text_model_facts(cls, hparams: OptimHparams, spec: DataSpec) -> dict[str, str]:
        """{name, revision, sha256, encoder} of a dataset's text model ({} without token ids);
        `encoder` says how the method reads text: "fine-tuned" or "frozen" (the pretrained model
        at train time) or "features" (the stored token states)."""
        if spec.tokens is None:
            return {}
        mode = cls.resolve_text_mode(hparams, spec)
        if mode == "pretrained":
            mode = "fine-tuned" if hparams.text_finetune else "frozen"
        info = spec.tokens
        return {
            "name": info.name,
            "revision": info.revision,
            "sha256": info.sha256,
            "encoder": mode,
        }

    @classmethod
    def modalities_read(cls, spec: DataSpec) -> tuple[str, ...]:
        """The modalities the method reads on `spec`'s dataset, in the dataset's order;
        ConfigError naming the method and the dataset's modalities when one is missing."""
        if cls.MODALITIES_READ is None:
            return tuple(spec.modalities)
        missing = [m for m in cls.MODALITIES_READ if m not in spec.modalities]
        if missing:
            raise ConfigError(
                f"method {cls.name} reads {', '.join(cls.MODALITIES_READ)}, but the dataset has "
                f"only {', '.join(spec.modalities)} (missing: {', '.join(missing)}); use a method "
                "that reads the dataset's modalities (text_only, late_transformer, ridge)"
            )
        return tuple(m for m in spec.modalities if m in cls.MODALITIES_READ)

    @classmethod
    def input_spec(cls, hparams: OptimHparams, spec: DataSpec) -> DataSpec:
        """The DataSpec the method's layers are built for: with a pretrained encoder feeding its
        token states as `text`, the text width is the encoder's hidden size. ConfigError when
        the dataset lacks a modality the method reads (`modalities_read`)."""
        cls.modalities_read(spec)
        if cls.TEXT_POOLING is None and cls.resolve_text_mode(hparams, spec) == "pretrained":
            assert spec.tokens is not None
            dims = {**spec.feature_dims, "text": spec.tokens.hidden_size}
            return dataclasses.replace(spec, feature_dims=dims)
        return spec

    def build_text_encoder(self, output: str) -> PretrainedTextEncoder:
        """The pretrained encoder of a method with TEXT_POOLING (call only in text_mode
        "pretrained")."""
        assert self.spec.tokens is not None
        return PretrainedTextEncoder(self.spec.tokens, output, self.hparams.text_finetune)

    def prepare_batch(self, batch: Batch) -> Batch:
        """The batch as the method reads it: with a token-state encoder, `text` features (B, L',
        H) and lengths (B,) come from the encoder over the batch's tokens; else unchanged."""
        if self.token_text_encoder is None:
            return batch
        if batch.tokens is None:
            raise ConfigError(f"method {self.name}: a pretrained text encoder needs batch tokens")
        states = self.token_text_encoder(batch.tokens)
        features = {**batch.features, "text": states}
        lengths = {**batch.lengths, "text": batch.tokens.lengths}
        return batch.with_features(features, lengths)

    # -- hyperparameters ----------------------------------------------------------------------
    @classmethod
    def resolve_hparams(
        cls, kind: str, *overrides: Mapping[str, Any], where: str = "hparams"
    ) -> OptimHparams:
        """Dataclass defaults <- KIND_DEFAULTS[kind] <- each override mapping, in order, then
        the method's own `check_hparams`. Unknown keys, wrongly typed values and values the
        method cannot be built with raise ConfigError naming `where`.<key> (the stages pass the
        full params path, e.g. `methods.fsrf.hparams`)."""
        if kind not in cls.KINDS:
            raise ConfigError(
                f"{where}: {cls.name} cannot be trained on a dataset of kind {kind!r} "
                f"(it supports {', '.join(cls.KINDS)}): {cls.UNSUPPORTED_KINDS_REASON}"
            )
        fields = {f.name: f for f in dataclasses.fields(cls.Hparams)}
        task_kind = TASK_KIND_HPARAMS.get(kind, {})
        values: dict[str, Any] = {k: v for k, v in task_kind.items() if k in fields}
        values.update(cls.KIND_DEFAULTS.get(kind, {}))
        for mapping in overrides:
            values.update(mapping)
        for key, value in values.items():
            if key not in fields:
                allowed = sorted(fields)
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"{where}.{key}: unknown hyperparameter of {cls.name}; "
                    f"allowed: {', '.join(allowed)}{hint}"
                )
            values[key] = _coerce(value, fields[key], f"{where}.{key}")
        hparams = cls.Hparams(**values)
        if hparams.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(
                f"{where}.text_encoder: expected one of {', '.join(TEXT_ENCODERS)}, "
                f"got {hparams.text_encoder!r}"
            )
        _check_recipe(hparams, where)
        _check_task(hparams, kind, where)
        if hparams.adam_epsilon <= 0:
            raise ConfigError(f"{where}.adam_epsilon: expected > 0, got {hparams.adam_epsilon}")
        if hparams.learning_rate_bert <= 0 or hparams.weight_decay_bert < 0:
            raise ConfigError(
                f"{where}.learning_rate_bert/weight_decay_bert: expected > 0 and >= 0, got "
                f"{hparams.learning_rate_bert} and {hparams.weight_decay_bert}"
            )
        cls.check_hparams(hparams, where)
        return hparams

    @classmethod
    def check_hparams(cls, hparams: OptimHparams, where: str = "hparams") -> None:
        """The method's own checks of a resolved set of hyperparameters: raise ConfigError
        naming `where`.<key> for values the model cannot be built with (default: none)."""

    # -- the interface ------------------------------------------------------------------------
    @abstractmethod
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Batch -> outputs with at least "prediction" (B,) in the label range."""

    @abstractmethod
    def loss_terms(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named, already weighted scalar loss terms; the loop minimises their sum."""

    def fit_closed_form(
        self, train: SplitData, valid: SplitData, select_metric: str
    ) -> dict[str, float]:
        """Fit the model in closed form on `train`, choosing what it chooses (a penalty) by
        `select_metric` on `valid`; returns named values to log. Only for CLOSED_FORM methods,
        whose parameters the loop never steps; the model is already on its device."""
        raise TypeError(f"method {self.name} is trained by epochs, not in closed form")

    def start_epoch(self, epoch: int) -> None:
        """Hook the loop calls at the start of every training epoch (1-based), before any pass
        (default: nothing; MMIM clears its entropy memories here, as MMSA's trainer does)."""

    def extra_step(self, batch: Batch) -> dict[str, float]:
        """Hook for an extra optimisation step before the main one (default: none).
        Returns named scalar values to log."""
        return {}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; default one group with the method's lr/weight decay."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def training_passes(self) -> list[TrainingPass]:
        """Passes over the training split that run before the main pass in every epoch, each
        with its own optimiser and loss (default: none; MMIM's likelihood-bound pass)."""
        return []

    def loss_weights(self) -> dict[str, float]:
        """The weight of every named loss term (for docs and the zero-weight contract)."""
        return {"task": 1.0}
