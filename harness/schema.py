"""Strict parsing of YAML mappings into frozen dataclasses: every key known, every value typed.

`parse_section(cls, raw, path, source)` builds `cls` from the mapping `raw` found at the dotted
key `path` of the file `source`. It refuses, each time in one line naming the full key path:
an unknown key (with the allowed keys and the closest one: "did you mean ..."), a missing
required key, and a value of the wrong type or outside its field's `check`. A field's default
is its dataclass default: the one place that default lives.

Supported field types: `int`, `float` (an int is accepted), `bool`, `str`, `Literal[...]`,
`tuple[str, ...]` and `tuple[int, ...]` (from YAML lists), `X | None`, a nested dataclass
(parsed recursively), `dict[str, Any]` (a free-form mapping, checked by whoever reads it), and
`dict[str, str | None]`. Field metadata `check` is a function value -> None or a phrase saying
what was expected ("a positive integer"), run after the type check.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from harness.errors import ConfigError

T = TypeVar("T")
Check = Callable[[Any], str | None]


def unknown_key_message(path: str, key: object, allowed: list[str]) -> str:
    """'<path>.<key>: unknown key; allowed: a, b (did you mean 'b'?)' (path may be empty)."""
    where = f"{path}.{key}" if path else str(key)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{where}: unknown key; allowed: {', '.join(sorted(allowed))}{hint}"


def check_keys(raw: Mapping[str, Any], allowed: list[str], path: str, source: str) -> None:
    """ConfigError for the first key of `raw` that is not in `allowed`."""
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{_prefix(source)}{unknown_key_message(path, key, allowed)}")


def parse_section(cls: type[T], raw: Any, path: str, source: str) -> T:
    """`cls` (a dataclass) from the mapping `raw` at key `path` of file `source`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{_prefix(source)}{path or 'top level'}: expected a mapping, got {raw!r}"
        )
    fields = {
        f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("derived")
    }
    check_keys(raw, list(fields), path, source)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        key = f"{path}.{name}" if path else name
        if name not in raw:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{_prefix(source)}{key}: missing (required key)")
            continue
        value = convert(hints[name], raw[name], key, source)
        problem = spec.metadata.get("check", lambda _: None)(value)
        if problem:
            raise ConfigError(f"{_prefix(source)}{key}: expected {problem}, got {raw[name]!r}")
        values[name] = value
    return cls(**values)


def convert(annotation: Any, value: Any, key: str, source: str) -> Any:
    """`value` checked against (and, for lists and nested sections, converted to) the type
    `annotation`; ConfigError naming `key` otherwise."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(inner, value, key, source)
    if dataclasses.is_dataclass(annotation):
        return parse_section(annotation, value, key, source)
    if origin is Literal:
        if value not in args:
            _fail(key, source, f"one of {', '.join(map(str, args))}", value)
        return value
    if origin is tuple:
        return _sequence(args[0], value, key, source)
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return _mapping(args, value, key, source)
    if annotation is Any:
        return value
    return _scalar(annotation, value, key, source)


def _scalar(annotation: Any, value: Any, key: str, source: str) -> Any:
    if annotation is bool:
        if not isinstance(value, bool):
            _fail(key, source, "true or false", value)
    elif annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, source, "an integer", value)
    elif annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(key, source, "a number", value)
        return float(value)
    elif annotation is str:
        if not isinstance(value, str) or not value:
            _fail(key, source, "a non-empty string", value)
    else:  # pragma: no cover - a schema error, not a user error
        raise TypeError(f"{key}: unsupported config type {annotation!r}")
    return value


def _sequence(item: Any, value: Any, key: str, source: str) -> tuple:
    names = {str: "names", int: "integers"}.get(item, "values")
    if not isinstance(value, list):
        _fail(key, source, f"a list of {names}", value)
    return tuple(convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value))


def _mapping(args: tuple, value: Any, key: str, source: str) -> dict:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        _fail(key, source, "a mapping", value)
    if not args or args[1] is Any:
        return dict(value)
    return {str(k): convert(args[1], v, f"{key}.{k}", source) for k, v in value.items()}


def _fail(key: str, source: str, expected: str, value: Any) -> typing.NoReturn:
    raise ConfigError(f"{_prefix(source)}{key}: expected {expected}, got {value!r}")


def _prefix(source: str) -> str:
    """ "<file>: " before a key path, or nothing when no file is named."""
    return f"{source}: " if source else ""


def default_of(cls: type, name: str) -> Any:
    """The default of field `name` of dataclass `cls`, for code that must default to the same
    value as the configuration (so the default still lives in one place)."""
    spec = {f.name: f for f in dataclasses.fields(cls)}[name]
    if spec.default is dataclasses.MISSING:
        raise TypeError(f"{cls.__name__}.{name} has no default")
    return spec.default


def check_fields(instance: Any) -> None:
    """Run every field's `check` on a dataclass built in code; ValueError naming the field."""
    for spec in dataclasses.fields(instance):
        check = spec.metadata.get("check")
        value = getattr(instance, spec.name)
        problem = check(value) if check else None
        if problem:
            raise ValueError(f"{spec.name}: expected {problem}, got {value!r}")


# -- checks (field metadata) ---------------------------------------------------------------


def positive(value: Any) -> str | None:
    return None if value >= 1 else "a positive integer"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "an integer >= 0"


def positive_number(value: Any) -> str | None:
    return None if value > 0 else "a number > 0"


def probability(value: Any) -> str | None:
    return None if 0 < value < 1 else "a number between 0 and 1"


def non_empty(value: Any) -> str | None:
    return None if len(value) else "a non-empty list"


def distinct(value: Any) -> str | None:
    ok = len(value) and len(set(value)) == len(value)
    return None if ok else "a non-empty list without repeats"


def no_repeats(value: Any) -> str | None:
    """An empty list passes (unlike `distinct`)."""
    return None if len(set(value)) == len(value) else "a list without repeats"


def checked(default: Any = dataclasses.MISSING, check: Check | None = None, **kwargs: Any) -> Any:
    """A dataclass field with a `check` (and optionally a default)."""
    metadata = {"check": check} if check else {}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)
