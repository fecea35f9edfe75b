from __future__ import annotations

import pytest

from harness.errors import UnknownNameError
from harness.registry import Registry
from methods import METHODS


def test_register_and_get() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register("alpha")(1)
    assert registry.get("alpha") == 1
    assert "alpha" in registry and registry.names() == ["alpha"] and len(registry) == 1


def test_second_registration_of_a_name_raises() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register("alpha")(1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("alpha")(2)


def test_unknown_name_suggests_and_lists_valid_names() -> None:
    registry: Registry[int] = Registry("method")
    registry.register("tfn")(1)
    registry.register("lf_dnn")(2)
    with pytest.raises(UnknownNameError) as info:
        registry.get("tfm")
    message = str(info.value)
    assert message == "unknown method 'tfm' (did you mean 'tfn'?); valid methods: lf_dnn, tfn"
    assert "\n" not in message


def test_method_registry_holds_the_baselines() -> None:
    assert {"lf_dnn", "tfn"} <= set(METHODS.names())
    for name in METHODS:
        assert METHODS.get(name).name == name
