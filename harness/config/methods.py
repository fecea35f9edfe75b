"""A method's own checks of its params section, run when a stage that builds the method reads
the params (before it loads data, starts an MLflow run or trains anything).

`check_methods(params, names)` imports each named method (torch) and resolves its fixed
hyperparameters for every benchmark dataset kind (types, unknown names and the method's own
`check_hparams`) and applies its search-space overrides; a problem is a one-line ConfigError
naming the file and the full key path (`params.yaml: methods.fsrf.hparams.fusion_heads: ...`).
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.config.params import Params
from harness.errors import ConfigError


def check_methods(params: Params, names: Iterable[str]) -> None:
    """Check `methods.<name>` of each of `names` against the method itself, for every benchmark
    dataset kind; a method outside `benchmark.methods` runs on none of them, so only for the
    kinds it supports (Self-MM's section stays valid beside a binary benchmark dataset)."""
    from methods import load_method
    from methods.search_space import override_space

    kinds = sorted({params.dataset(d).kind for d in params.benchmark.datasets})
    for name in dict.fromkeys(names):
        method_cls = load_method(name)
        section = params.method(name)
        checked = kinds
        if name not in params.benchmark.methods:
            checked = [k for k in kinds if k in method_cls.KINDS] or list(method_cls.KINDS[:1])
        try:
            for kind in checked:
                method_cls.resolve_hparams(kind, section.hparams, where=f"methods.{name}.hparams")
            override_space(
                method_cls.SEARCH_SPACE, section.search_space, f"methods.{name}.search_space"
            )
        except ConfigError as exc:
            raise ConfigError(f"{params.source}: {exc}") from None
