"""The registry of feature-file formats: a reader and the dataclass of its options per name
(harness/data/formats/__init__.py imports every reader, which registers itself here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.data.split_arrays import SplitArrays
from harness.registry import Registry

Reader = Callable[[Path, Mapping[str, Any]], dict[str, SplitArrays]]


@dataclass(frozen=True)
class NoOptions:
    """A format that reads no options."""


@dataclass(frozen=True)
class FileFormat:
    """A registered reader and the dataclass of its options."""

    read: Reader
    options: type = NoOptions

    def __call__(self, path: Path, section: Mapping[str, Any]) -> dict[str, SplitArrays]:
        return self.read(path, section)

    def option_names(self) -> list[str]:
        return [f.name for f in fields(self.options) if not f.metadata.get("derived")]


FORMATS: Registry[FileFormat] = Registry("format")


def register_format(name: str, options: type = NoOptions) -> Callable[[Reader], Reader]:
    """Decorator: `@register_format("mmsa", PickleOptions)` on a reader function."""

    def decorate(read: Reader) -> Reader:
        FORMATS.register(name)(FileFormat(read, options))
        return read

    return decorate


def read_options(options: type, section: Mapping[str, Any], where: str = "") -> Any:
    """The format's options from a dataset section (other keys ignored; harness/config has
    refused unknown ones), typed and checked; ConfigError names `where`.<key>."""
    from harness.schema import parse_section

    names = {f.name for f in fields(options) if not f.metadata.get("derived")}
    return parse_section(options, {k: v for k, v in section.items() if k in names}, where, "")
