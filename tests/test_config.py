from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harness.config import load_params, parse_params
from harness.errors import ConfigError, UnknownNameError

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load(REPO_PARAMS.read_text())


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_repository_params_parse(raw) -> None:
    params = parse_params(raw)
    assert params.benchmark.methods[:2] == ("ridge", "text_only")
    assert params.tune.enqueue_defaults is True
    assert params.seeds == (1111, 1112, 1113, 1114, 1115)
    assert params.dataset("synth").kind == "mosi"


def test_enqueue_defaults_must_be_a_boolean(raw) -> None:
    raw["tune"]["enqueue_defaults"] = "yes"
    assert _error(raw) == "params.yaml: tune.enqueue_defaults: expected true or false, got 'yes'"


def test_probe_targets_must_be_benchmarked(raw) -> None:
    raw["probe"] = {"datasets": ["synth"], "methods": ["misa"]}
    raw["benchmark"]["methods"] = ["lf_dnn", "fine"]
    assert _error(raw) == (
        "params.yaml: probe.methods: 'misa' is not in benchmark.methods; "
        "the probe reads its trained models"
    )
    raw["probe"] = {"datasets": ["mosi_bclstm"], "methods": ["fine"]}
    assert "probe.datasets: 'mosi_bclstm' is not in benchmark.datasets" in _error(raw)


def test_unknown_method_in_benchmark_lists_valid_names(raw) -> None:
    raw["benchmark"]["methods"] = ["lf_dnn", "tfm"]
    message = _error(raw)
    assert "benchmark.methods" in message and "'tfm'" in message
    assert (
        "did you mean 'tfn'" in message
        and "valid methods: almt, audio_only, cenet, fine, fsrf, ir_svr, late_transformer"
        in message
    )


def test_unknown_dataset_in_benchmark_lists_declared(raw) -> None:
    raw["benchmark"]["datasets"] = ["mosei"]
    message = _error(raw)
    assert "benchmark.datasets" in message and "'mosei'" in message and "synth" in message


def test_unknown_method_section(raw) -> None:
    raw["methods"]["nope"] = {}
    assert "methods.nope" in _error(raw)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("seeds",), [1, "two"], "seeds[1]: expected an integer, got 'two'"),
        (("seeds",), [1, 1], "seeds: expected a non-empty list without repeats, got [1, 1]"),
        (("train", "max_epochs"), 0, "train.max_epochs: expected a positive integer, got 0"),
        (("tune", "n_trials"), "many", "tune.n_trials: expected an integer, got 'many'"),
        (("compare", "alpha"), 2, "compare.alpha: expected a number between 0 and 1"),
        (("train", "select_metric"), "acc9", "train.select_metric"),
        (("datasets", "synth", "kind"), "imdb", "datasets.synth.kind: expected one of mosi, mosei"),
        (("datasets", "synth", "source"), "ftp", "datasets.synth.source: expected one of synth"),
        (("methods", "tfn"), {"hparam": {}}, "methods.tfn.hparam: unknown key; allowed: hparams"),
    ],
)
def test_malformed_values_name_the_key(raw, path, value, expected) -> None:
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert expected in _error(raw)


def test_missing_required_key(raw) -> None:
    del raw["train"]["patience"]
    assert "train.patience: missing" in _error(raw)


def test_top_level_not_a_mapping() -> None:
    assert "expected a mapping at the top level" in _error(["a"])  # type: ignore[arg-type]


def test_invalid_yaml_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seeds: [1, 2\ntrain: {")
    with pytest.raises(ConfigError, match=r"params.yaml: not valid YAML at line \d+"):
        load_params(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_unknown_dataset_lookup_lists_declared(raw) -> None:
    params = parse_params(raw)
    with pytest.raises(UnknownNameError, match="unknown dataset 'mosi'.*synth"):
        params.dataset("mosi")


def test_hparam_overrides_are_type_checked(raw) -> None:
    from methods import METHODS

    cls = METHODS.get("tfn")
    with pytest.raises(
        ConfigError, match="methods.tfn.hparams.post_fusion_dim: expected an integer"
    ):
        cls.resolve_hparams("mosi", {"post_fusion_dim": "big"}, where="methods.tfn.hparams")
    with pytest.raises(ConfigError, match="unknown hyperparameter of tfn"):
        cls.resolve_hparams("mosi", {"hidden": 3}, where="methods.tfn.hparams")
    resolved = cls.resolve_hparams("mosi", {"learning_rate": 1}, {"batch_size": 8})
    assert resolved.learning_rate == 1.0 and resolved.batch_size == 8


def test_search_space_override_validation() -> None:
    from methods.search_space import Choice, FloatRange, override_space

    space = {"lr": FloatRange(1e-4, 1e-2, log=True), "dim": Choice((8, 16))}
    narrowed = override_space(space, {"lr": {"low": 1e-3}, "dim": [32]}, "methods.x.search_space")
    assert narrowed["lr"] == FloatRange(1e-3, 1e-2, log=True) and narrowed["dim"] == Choice((32,))
    assert "lr" not in override_space(space, {"lr": None}, "w")
    with pytest.raises(ConfigError, match="w.lr: expected 0 < low <= high"):
        override_space(space, {"lr": {"low": 1.0}}, "w")
    with pytest.raises(ConfigError, match="w.depth: not a tunable hyperparameter"):
        override_space(space, {"depth": [1]}, "w")
    original = copy.deepcopy(space)
    override_space(space, {"lr": {"high": 0.1}}, "w")
    assert space == original
