"""params.yaml -> `Params`: typed, complete, and strict.

Every section is a frozen dataclass (sections.py; dataset sections: harness/data/declaration.py)
parsed by `harness.schema`: an
unknown key anywhere, a missing required key, a wrong type or an out-of-range value raises a
one-line ConfigError naming the file, the full key path and what was expected (for a misspelt
key, the allowed keys and the closest one). Names are then cross-checked: benchmark and probe
methods against the method catalog (methods/__init__.py, which imports no method), datasets
against `datasets`, the selection metric against the datasets' metrics.

Reading params imports neither torch nor any method. A method's own checks of its fixed
hyperparameters and search-space overrides run in `check_methods` (harness/config/methods.py),
which the stages that build that method call before they start work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.config.sections import (
    BenchmarkConfig,
    CompareConfig,
    ExecutorConfig,
    MethodConfig,
    MlflowConfig,
    PaperConfig,
    ProbeConfig,
    RobustnessConfig,
    TrainConfig,
    TuneConfig,
)
from harness.data.declaration import DatasetConfig, parse_dataset
from harness.errors import ConfigError, UnknownNameError
from harness.schema import checked, distinct, non_negative, parse_section, positive

DEFAULT_PARAMS = Path("params.yaml")


@dataclass(frozen=True, kw_only=True)
class Params:
    """The whole of params.yaml, mirroring its layout."""

    benchmark: BenchmarkConfig
    seeds: tuple[int, ...] = checked(check=distinct)
    device: str = "auto"  # "auto" = CUDA when present, else CPU; or a torch device name
    amp: bool = False  # CUDA mixed precision; no effect on CPU
    num_threads: int = checked(0, non_negative)  # torch CPU threads per run; 0 = all cores
    # the batch size of every evaluation (validation, test, robustness): methods predict each
    # sample on its own in eval mode, so larger only cuts kernel launches on a GPU
    eval_batch_size: int = checked(256, positive)
    # torch.compile of each model's forward ("reduce-overhead" adds CUDA graphs); "none" = eager
    compile_mode: Literal["none", "default", "reduce-overhead", "max-autotune"] = "none"
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    datasets: dict[str, Any] = field(default_factory=dict)  # name -> DatasetConfig
    methods: dict[str, Any] = field(default_factory=dict)  # name -> MethodConfig
    tune: TuneConfig
    train: TrainConfig
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    source: str = field(default="params.yaml", metadata={"derived": True})  # the file read

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri

    def dataset(self, name: str) -> DatasetConfig:
        if name not in self.datasets:
            raise UnknownNameError(
                f"unknown dataset '{name}'; datasets declared in {self.source}: "
                f"{', '.join(sorted(self.datasets))}"
            )
        return self.datasets[name]

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """{group: its fold datasets, in declaration order} of every `datasets.<name>.group`."""
        groups: dict[str, tuple[str, ...]] = {}
        for name, config in self.datasets.items():
            if config.group is not None:
                groups[config.group] = (*groups.get(config.group, ()), name)
        return groups

    def select_metric_for(self, dataset: str) -> str:
        """The validation metric that tunes and early-stops runs on `dataset`:
        `train.select_metric_by_kind` for its kind, else `train.select_metric`."""
        kind = self.dataset(dataset).kind
        return self.train.select_metric_by_kind.get(kind, self.train.select_metric)

    def method(self, name: str) -> MethodConfig:
        """The `methods.<name>` section (empty when absent); UnknownNameError for a name that
        is not a method (with the closest one)."""
        from methods import METHOD_MODULES

        METHOD_MODULES.get(name)
        return self.methods.get(name, MethodConfig(name=name))


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and check the params file at `path`."""
    return parse_params(read_yaml(path), source=str(path))


def read_yaml(path: str | Path) -> Any:
    """The YAML document at `path`; ConfigError naming the file (and line) otherwise."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (expected a params file)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """`Params` from the decoded YAML `raw` (the file name `source` is for messages)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {raw!r}")
    free_form = {"datasets": {}, "methods": {}}  # parsed section by section below
    bare = parse_section(Params, {**raw, **free_form}, "", source)
    if "datasets" not in raw:
        raise ConfigError(f"{source}: datasets: missing (required key)")
    params = replace(
        bare,
        datasets=_datasets(raw["datasets"], source),
        methods=_methods(raw.get("methods"), source),
        source=source,
    )
    check_names(params)
    return params


def _datasets(section: Any, source: str) -> dict[str, DatasetConfig]:
    if not isinstance(section, Mapping) or not section:
        raise ConfigError(
            f"{source}: datasets: expected a mapping of dataset sections, got {section!r}"
        )
    return {
        str(name): parse_dataset(str(name), options, source) for name, options in section.items()
    }


def _methods(section: Any, source: str) -> dict[str, MethodConfig]:
    from methods import METHOD_MODULES

    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"{source}: methods: expected a mapping of method sections, got {section!r}"
        )
    methods = {}
    for name, options in section.items():
        if name not in METHOD_MODULES:
            raise ConfigError(f"{source}: methods.{name}: {METHOD_MODULES.unknown_message(name)}")
        parsed = parse_section(MethodConfig, options, f"methods.{name}", source)
        methods[name] = replace(parsed, name=name)
    return methods


def check_names(params: Params) -> None:
    """Every name the params use refers to something that exists."""
    from methods import METHOD_MODULES

    source = params.source
    declared = ", ".join(sorted(params.datasets))
    for name in params.benchmark.datasets:
        if name not in params.datasets:
            raise ConfigError(
                f"{source}: benchmark.datasets: unknown dataset '{name}'; declared under "
                f"datasets: {declared}"
            )
    for name in params.benchmark.methods:
        if name not in METHOD_MODULES:
            raise ConfigError(
                f"{source}: benchmark.methods: {METHOD_MODULES.unknown_message(name)}"
            )
    for name in params.probe.datasets:
        if name not in params.benchmark.datasets:
            raise ConfigError(
                f"{source}: probe.datasets: '{name}' is not in benchmark.datasets "
                f"({', '.join(params.benchmark.datasets)}); the probe reads its trained models"
            )
    for name in params.probe.methods:
        if name not in params.benchmark.methods:
            raise ConfigError(
                f"{source}: probe.methods: '{name}' is not in benchmark.methods; "
                "the probe reads its trained models"
            )
    _check_papers(params)
    for paper_name, name in params.paper.datasets.items():
        if name is not None and name not in params.datasets and name not in params.groups:
            groups = ", ".join(params.groups) or "none"
            raise ConfigError(
                f"{source}: paper.datasets.{paper_name}: unknown dataset '{name}'; declared "
                f"under datasets: {declared}; cross-validation groups: {groups} (or null for "
                "none)"
            )
    for group, folds in params.groups.items():
        if group in params.datasets:
            raise ConfigError(
                f"{source}: datasets.{folds[0]}.group: '{group}' is also a dataset's name; "
                "a group needs a name of its own"
            )
        kinds = {params.datasets[fold].kind for fold in folds}
        if len(kinds) > 1:
            raise ConfigError(
                f"{source}: datasets.*.group '{group}': its folds ({', '.join(folds)}) have "
                f"kinds {', '.join(sorted(kinds))}; a group's folds need one kind"
            )
    _check_select_metric(params)


def _check_papers(params: Params) -> None:
    """paper.tables name registered tables; paper.datasets' keys name their datasets."""
    from harness.papers.tables import paper_tables
    from harness.schema import unknown_key_message

    tables = paper_tables()
    for name in params.paper.tables:
        if name not in tables:
            raise ConfigError(f"{params.source}: paper.tables: {tables.unknown_message(name)}")
    known = sorted({block.dataset for name in tables for block in tables.get(name).blocks})
    for name in params.paper.datasets:
        if name not in known:
            message = unknown_key_message("paper.datasets", name, known)
            raise ConfigError(f"{params.source}: {message}")


def _check_select_metric(params: Params) -> None:
    from harness.data.spec import DATASET_KINDS
    from harness.metrics import METRICS, metric_info

    source = params.source
    by_kind = params.train.select_metric_by_kind
    for kind, metric in by_kind.items():
        if kind not in DATASET_KINDS:
            raise ConfigError(
                f"{source}: train.select_metric_by_kind.{kind}: not a dataset kind; expected "
                f"one of {', '.join(DATASET_KINDS)}"
            )
        if not isinstance(metric, str) or metric not in METRICS[kind]:
            raise ConfigError(
                f"{source}: train.select_metric_by_kind.{kind}: expected one of "
                f"{', '.join(METRICS[kind])}, got {metric!r}"
            )
    try:
        info = metric_info(params.train.select_metric)
    except KeyError as exc:
        raise ConfigError(f"{source}: train.select_metric: {exc}") from None
    for name in params.benchmark.datasets:
        kind = params.datasets[name].kind
        if kind not in by_kind and info.name not in METRICS[kind]:
            raise ConfigError(
                f"{source}: train.select_metric: '{info.name}' is not a metric of dataset "
                f"'{name}' (kind {kind}); set train.select_metric_by_kind.{kind}"
            )
