"""The method zoo: one module per method, named as the method (methods/tfn.py registers "tfn").

This package's own namespace is a light catalog: `METHOD_MODULES` finds the methods by listing
the modules of this folder (nothing is imported, so reading params.yaml needs neither torch nor
any method), and `load_method(name)` imports one method's module and returns its class. Adding a
method means adding its module (and its params.yaml section and tests): nothing else lists it.

`METHODS`, the registry of method classes, is loaded on first use (`from methods import METHODS`
imports every method).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from harness.registry import Registry

if TYPE_CHECKING:
    from methods.base import MsaMethod

# modules of this folder that are not methods: the interface, the hyperparameters every method
# has, and the search-space types
NOT_METHODS = ("base", "hparams", "search_space")


def _discover() -> Registry[str]:
    """name -> module path of every method module in this folder (not imported)."""
    catalog: Registry[str] = Registry("method")
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg and info.name not in NOT_METHODS and not info.name.startswith("_"):
            catalog.register(info.name)(f"{__name__}.{info.name}")
    return catalog


METHOD_MODULES: Registry[str] = _discover()


def load_method(name: str) -> type[MsaMethod]:
    """The class of method `name`, importing its module; UnknownNameError (with the closest
    name) for a name that is not a method."""
    module = importlib.import_module(METHOD_MODULES.get(name))
    from methods.base import METHODS

    if name not in METHODS:
        raise RuntimeError(f"{module.__name__} does not register a method named '{name}'")
    return METHODS.get(name)


def __getattr__(attribute: str) -> Any:
    """`METHODS` (every method imported and registered) and the interface on first use."""
    if attribute in ("METHODS", "MsaMethod", "OptimHparams", "register_method"):
        if attribute == "METHODS":
            for name in METHOD_MODULES:
                load_method(name)
        from methods import base

        return getattr(base, attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
