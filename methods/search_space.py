"""Declarative Optuna search spaces: a method declares ranges; params.yaml may narrow them."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import optuna

from harness.errors import ConfigError


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.low <= value <= self.high


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)


Dimension = FloatRange | IntRange | Choice
SearchSpace = dict[str, Dimension]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def defaults_inside(space: SearchSpace, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The default values that are points of the space (for enqueueing them as a first trial);
    a dimension whose default lies outside its range is left to the sampler."""
    return {
        name: defaults[name]
        for name in sorted(space)
        if name in defaults and space[name].contains(defaults[name])
    }


def suggest_all(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Sample one value per dimension, in a stable (sorted) order."""
    return {name: space[name].suggest(trial, name) for name in sorted(space)}


def override_space(space: SearchSpace, overrides: Mapping[str, Any], where: str) -> SearchSpace:
    """Apply params.yaml overrides: `{name: {low, high[, log]}}` or `{name: [choices]}`,
    or `{name: null}` to drop a dimension. `where` names the params key for errors."""
    result = dict(space)
    for name, value in overrides.items():
        key = f"{where}.{name}"
        if name not in space:
            valid = ", ".join(sorted(space)) or "(none)"
            close = difflib.get_close_matches(str(name), list(space), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{key}: not a tunable hyperparameter; expected one of {valid}{hint}")
        if value is None:
            del result[name]
        elif isinstance(space[name], Choice):
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{key}: expected a non-empty list of choices, got {value!r}")
            result[name] = Choice(tuple(value))
        else:
            result[name] = _override_range(space[name], value, key)
    return result


def _override_range(dim: FloatRange | IntRange, value: Any, key: str) -> Dimension:
    if not isinstance(value, Mapping) or not set(value) <= {"low", "high", "log"}:
        raise ConfigError(
            f"{key}: expected a mapping with low/high (and optional log), got {value!r}"
        )
    kind = int if isinstance(dim, IntRange) else (int, float)
    for bound in ("low", "high"):
        if bound in value and (
            isinstance(value[bound], bool) or not isinstance(value[bound], kind)
        ):
            raise ConfigError(f"{key}.{bound}: expected a number, got {value[bound]!r}")
    updated = replace(dim, **value)
    if updated.low > updated.high or (updated.log and updated.low <= 0):
        raise ConfigError(f"{key}: expected 0 < low <= high for a log range, low <= high otherwise")
    return updated


def describe(space: SearchSpace) -> dict[str, Any]:
    """A JSON-serialisable description (for hashing and logging)."""
    return {name: {"type": type(dim).__name__, **vars(dim)} for name, dim in sorted(space.items())}
