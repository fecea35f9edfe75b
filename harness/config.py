"""params.yaml -> typed, validated configuration. Errors name the key and what was expected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.data.types import DATASET_KINDS
from harness.errors import ConfigError, UnknownNameError

DEFAULT_PARAMS = Path("params.yaml")


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    source: str  # a registered source: "synthetic", "file", ...
    kind: str  # "mosi" (MOSI/MOSEI metrics) or "sims"
    options: Mapping[str, Any]  # the whole params section, read by the source


@dataclass(frozen=True)
class MethodConfig:
    name: str
    hparams: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 25
    patience: int = 5
    select_metric: str = "mae"
    workers: int = 1  # processes training seeds at once


@dataclass(frozen=True)
class TuneConfig:
    n_trials: int = 6
    max_epochs: int = 12
    patience: int = 4
    sampler_seed: int = 42
    pruner: str = "median"  # "median" (Optuna's MedianPruner) or "none"
    pruner_startup_trials: int = 3
    pruner_warmup_steps: int = 3
    enqueue_defaults: bool = True  # trial 0 = the method's defaults, so tuning never ends worse


@dataclass(frozen=True)
class RobustnessConfig:
    """The missing-modality protocol's evaluation (harness/robustness.py)."""

    missing_seed: int = 0  # fixes every evaluation mask: the same masks for every method
    workers: int = 1  # processes evaluating trained models at once


@dataclass(frozen=True)
class CompareConfig:
    """The comparison tables' statistics (harness/comparison.py); `seed` drives every
    resampling, so the same run records give the same tables."""

    alpha: float = 0.05  # significance level after Holm correction
    seed: int = 0
    confidence: float = 0.95
    ci_resamples: int = 10_000  # bootstrap CI over seeds
    aso_bootstrap: int = 1000  # ASO's bootstrap iterations (deepsig's default)
    sample_resamples: int = 1000  # paired bootstrap over test samples


@dataclass(frozen=True)
class PaperConfig:
    """Paper-table regeneration (harness/paper_report.py): which registered tables `dvc repro`
    regenerates, and which project dataset stands for each paper dataset (None: none here)."""

    tables: tuple[str, ...] = ()
    datasets: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Params:
    benchmark_datasets: tuple[str, ...]
    benchmark_methods: tuple[str, ...]
    seeds: tuple[int, ...]
    device: str
    amp: bool
    num_threads: int
    tracking_uri: str
    datasets: Mapping[str, DatasetConfig]
    methods: Mapping[str, MethodConfig]
    train: TrainConfig
    tune: TuneConfig
    compare: CompareConfig
    paper: PaperConfig
    robustness: RobustnessConfig
    probe_datasets: tuple[str, ...]
    probe_methods: tuple[str, ...]
    raw: Mapping[str, Any]

    def dataset(self, name: str) -> DatasetConfig:
        if name not in self.datasets:
            raise UnknownNameError(
                f"unknown dataset '{name}'; datasets declared in params.yaml: "
                f"{', '.join(sorted(self.datasets))}"
            )
        return self.datasets[name]

    def method(self, name: str) -> MethodConfig:
        from methods import METHODS  # the registry is the authority on method names

        METHODS.get(name)
        return self.methods.get(name, MethodConfig(name))


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (expected the params file)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_params(raw, source=str(path))


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    reader = _Reader(raw, source)
    datasets = _parse_datasets(reader.mapping("datasets"), source)
    methods = _parse_methods(reader.mapping("methods", default={}), source)
    params = Params(
        benchmark_datasets=tuple(reader.name_list("benchmark.datasets")),
        benchmark_methods=tuple(reader.name_list("benchmark.methods")),
        seeds=tuple(reader.int_list("seeds")),
        device=reader.string("device", default="auto"),
        amp=reader.boolean("amp", default=False),
        num_threads=reader.non_negative_int("num_threads", default=0),
        tracking_uri=reader.string("mlflow.tracking_uri", default="sqlite:///mlflow.db"),
        datasets=datasets,
        methods=methods,
        train=TrainConfig(
            max_epochs=reader.positive_int("train.max_epochs"),
            patience=reader.positive_int("train.patience"),
            select_metric=reader.string("train.select_metric", default="mae"),
            workers=reader.positive_int("train.workers", default=1),
        ),
        tune=TuneConfig(
            n_trials=reader.positive_int("tune.n_trials"),
            max_epochs=reader.positive_int("tune.max_epochs"),
            patience=reader.positive_int("tune.patience"),
            sampler_seed=reader.integer("tune.sampler_seed", default=42),
            pruner=reader.choice("tune.pruner.kind", ("median", "none"), default="median"),
            pruner_startup_trials=reader.integer("tune.pruner.n_startup_trials", default=3),
            pruner_warmup_steps=reader.integer("tune.pruner.n_warmup_steps", default=3),
            enqueue_defaults=reader.boolean("tune.enqueue_defaults", default=True),
        ),
        compare=CompareConfig(
            alpha=reader.probability("compare.alpha", default=0.05),
            seed=reader.non_negative_int("compare.seed", default=0),
            confidence=reader.probability("compare.confidence", default=0.95),
            ci_resamples=reader.positive_int("compare.ci_resamples", default=10_000),
            aso_bootstrap=reader.positive_int("compare.aso_bootstrap", default=1000),
            sample_resamples=reader.positive_int("compare.sample_resamples", default=1000),
        ),
        paper=PaperConfig(
            tables=tuple(reader.name_list("paper.tables", default=[], allow_empty=True)),
            datasets=_parse_paper_datasets(reader.mapping("paper.datasets", default={}), source),
        ),
        robustness=RobustnessConfig(
            missing_seed=reader.non_negative_int("robustness.missing_seed", default=0),
            workers=reader.positive_int("robustness.workers", default=1),
        ),
        probe_datasets=tuple(reader.name_list("probe.datasets", default=[], allow_empty=True)),
        probe_methods=tuple(reader.name_list("probe.methods", default=[], allow_empty=True)),
        raw=raw,
    )
    _check_names(params, source)
    return params


def _parse_datasets(section: Mapping[str, Any], source: str) -> dict[str, DatasetConfig]:
    from harness.data.sources import SOURCES

    datasets = {}
    for name, options in section.items():
        key = f"datasets.{name}"
        if not isinstance(options, Mapping):
            raise ConfigError(f"{source}: {key}: expected a mapping, got {options!r}")
        src = options.get("source")
        if src not in SOURCES:
            raise ConfigError(f"{source}: {key}.source: {SOURCES.unknown_message(src)}")
        kind = options.get("kind")
        if kind not in DATASET_KINDS:
            raise ConfigError(
                f"{source}: {key}.kind: expected one of {', '.join(DATASET_KINDS)}, got {kind!r}"
            )
        datasets[name] = DatasetConfig(name, src, kind, dict(options))
    return datasets


def _parse_methods(section: Mapping[str, Any], source: str) -> dict[str, MethodConfig]:
    from methods import METHODS

    methods = {}
    for name, options in section.items():
        if name not in METHODS:
            raise ConfigError(f"{source}: methods.{name}: {METHODS.unknown_message(name)}")
        options = options or {}
        if not isinstance(options, Mapping) or not set(options) <= {"hparams", "search_space"}:
            raise ConfigError(
                f"{source}: methods.{name}: expected a mapping with keys hparams, search_space"
            )
        for part in ("hparams", "search_space"):
            if not isinstance(options.get(part) or {}, Mapping):
                raise ConfigError(f"{source}: methods.{name}.{part}: expected a mapping")
        methods[name] = MethodConfig(
            name, dict(options.get("hparams") or {}), dict(options.get("search_space") or {})
        )
    return methods


def _parse_paper_datasets(section: Mapping[str, Any], source: str) -> dict[str, str | None]:
    mapping: dict[str, str | None] = {}
    for name, value in section.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(
                f"{source}: paper.datasets.{name}: expected a dataset name or null, got {value!r}"
            )
        mapping[str(name)] = value
    return mapping


def _check_names(params: Params, source: str) -> None:
    from harness.metrics import METRICS, metric_info
    from methods import METHODS

    for name in params.benchmark_datasets:
        if name not in params.datasets:
            raise ConfigError(
                f"{source}: benchmark.datasets: unknown dataset '{name}'; declared under "
                f"datasets: {', '.join(sorted(params.datasets))}"
            )
    for name in params.benchmark_methods:
        if name not in METHODS:
            raise ConfigError(f"{source}: benchmark.methods: {METHODS.unknown_message(name)}")
    for name in params.probe_datasets:
        if name not in params.benchmark_datasets:
            raise ConfigError(
                f"{source}: probe.datasets: '{name}' is not in benchmark.datasets "
                f"({', '.join(params.benchmark_datasets)}); the probe reads its tuned study"
            )
    for name in params.probe_methods:
        if name not in params.benchmark_methods:
            raise ConfigError(
                f"{source}: probe.methods: '{name}' is not in benchmark.methods; "
                "the probe reads its tuned hyperparameters"
            )
    for paper_name, name in params.paper.datasets.items():
        if name is not None and name not in params.datasets:
            raise ConfigError(
                f"{source}: paper.datasets.{paper_name}: unknown dataset '{name}'; declared "
                f"under datasets: {', '.join(sorted(params.datasets))} (or null for none)"
            )
    try:
        info = metric_info(params.train.select_metric)
    except KeyError as exc:
        raise ConfigError(f"{source}: train.select_metric: {exc}") from None
    for name in params.benchmark_datasets:
        if info.name not in METRICS[params.datasets[name].kind]:
            raise ConfigError(
                f"{source}: train.select_metric: '{info.name}' is not a metric of dataset "
                f"'{name}' (kind {params.datasets[name].kind})"
            )


class _Reader:
    """Typed access to nested keys of the raw YAML with one-line errors."""

    _MISSING = object()

    def __init__(self, raw: Any, source: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
            )
        self.raw, self.source = raw, source

    def get(self, dotted: str, default: Any = _MISSING) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is self._MISSING:
                    raise ConfigError(f"{self.source}: {dotted}: missing (required key)")
                return default
            node = node[part]
        return node

    def fail(self, dotted: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.source}: {dotted}: expected {expected}, got {value!r}")

    def mapping(self, dotted: str, default: Any = _MISSING) -> Mapping[str, Any]:
        value = self.get(dotted, default)
        if not isinstance(value, Mapping):
            raise self.fail(dotted, "a mapping", value)
        return value

    def integer(self, dotted: str, default: Any = _MISSING) -> int:
        value = self.get(dotted, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(dotted, "an integer", value)
        return value

    def non_negative_int(self, dotted: str, default: Any = _MISSING) -> int:
        value = self.integer(dotted, default)
        if value < 0:
            raise self.fail(dotted, "an integer >= 0", value)
        return value

    def positive_int(self, dotted: str, default: Any = _MISSING) -> int:
        value = self.integer(dotted, default)
        if value < 1:
            raise self.fail(dotted, "a positive integer", value)
        return value

    def boolean(self, dotted: str, default: Any = _MISSING) -> bool:
        value = self.get(dotted, default)
        if not isinstance(value, bool):
            raise self.fail(dotted, "true or false", value)
        return value

    def probability(self, dotted: str, default: Any = _MISSING) -> float:
        value = self.get(dotted, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise self.fail(dotted, "a number between 0 and 1", value)
        return float(value)

    def choice(self, dotted: str, options: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.get(dotted, default)
        if value not in options:
            raise self.fail(dotted, f"one of {', '.join(options)}", value)
        return value

    def string(self, dotted: str, default: Any = _MISSING) -> str:
        value = self.get(dotted, default)
        if not isinstance(value, str) or not value:
            raise self.fail(dotted, "a non-empty string", value)
        return value

    def name_list(
        self, dotted: str, default: Any = _MISSING, allow_empty: bool = False
    ) -> list[str]:
        value = self.get(dotted, default)
        if (
            not isinstance(value, list)
            or (not value and not allow_empty)
            or not all(isinstance(v, str) for v in value)
        ):
            expected = "a list of names" if allow_empty else "a non-empty list of names"
            raise self.fail(dotted, expected, value)
        return value

    def int_list(self, dotted: str) -> list[int]:
        value = self.get(dotted)
        ok = (
            isinstance(value, list)
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        )
        if not ok or len(set(value)) != len(value):
            raise self.fail(dotted, "a non-empty list of distinct integers", value)
        return value
