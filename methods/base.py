"""The one method interface every method in `methods/` implements, and its registry.

A method is an `nn.Module` subclass that
  * declares a frozen hyperparameter dataclass (`Hparams`), per-dataset-kind default overrides
    (`KIND_DEFAULTS`) and an Optuna search space (`SEARCH_SPACE`);
  * builds itself from (hyperparameters, DataSpec);
  * maps a Batch to outputs (`forward`, which must return at least "prediction" of shape (B,));
  * returns its *named, already weighted* loss terms (`loss_terms`); the loop minimises their sum;
  * optionally overrides `extra_step` (e.g. an MI critic's own optimiser step) and
    `parameter_groups` (per-group learning rates). The harness brings the one training loop.
"""

from __future__ import annotations

import dataclasses
import difflib
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from harness.data.types import Batch, DataSpec
from harness.errors import ConfigError
from harness.registry import Registry
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
class OptimHparams:
    """Hyperparameters every method has (the loop reads these)."""

    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    grad_clip: float = 0.0  # max global grad norm; 0 disables clipping


class MsaMethod(nn.Module, metaclass=ABCMeta):
    """Base class of all methods; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    Hparams: ClassVar[type[OptimHparams]] = OptimHparams
    KIND_DEFAULTS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    SEARCH_SPACE: ClassVar[SearchSpace] = {}

    def __init__(self, hparams: OptimHparams, spec: DataSpec) -> None:
        super().__init__()
        self.hparams = hparams
        self.spec = spec

    # -- hyperparameters ----------------------------------------------------------------------
    @classmethod
    def resolve_hparams(
        cls, kind: str, *overrides: Mapping[str, Any], where: str = "hparams"
    ) -> OptimHparams:
        """Dataclass defaults <- KIND_DEFAULTS[kind] <- each override mapping, in order, then
        the method's own `check_hparams`. Unknown keys, wrongly typed values and values the
        method cannot be built with raise ConfigError naming `where`.<key> (the stages pass the
        full params path, e.g. `methods.fsrf.hparams`)."""
        values: dict[str, Any] = dict(cls.KIND_DEFAULTS.get(kind, {}))
        for mapping in overrides:
            values.update(mapping)
        fields = {f.name: f for f in dataclasses.fields(cls.Hparams)}
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

    def extra_step(self, batch: Batch) -> dict[str, float]:
        """Hook for an extra optimisation step before the main one (default: none).
        Returns named scalar values to log."""
        return {}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; default one group with the method's lr/weight decay."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def loss_weights(self) -> dict[str, float]:
        """The weight of every named loss term (for docs and the zero-weight contract)."""
        return {"task": 1.0}


def _coerce(value: Any, field: dataclasses.Field, key: str) -> Any:
    """Check a hyperparameter value against its dataclass field's declared type."""
    expected = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if expected == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif expected == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
    elif expected == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif expected == "str" and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value
