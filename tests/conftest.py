"""Shared fixtures: a tiny synthetic feature store, loaded data, and the --run-slow switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.loading import load_dataset
from harness.data.synthetic import SyntheticConfig, write_synthetic_store

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests train small models on tiny data: one intra-op thread is fastest, and on a shared
    2-core machine two threads per process oversubscribe it badly (10-25x slower measured)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


TINY = SyntheticConfig(
    seed=3,
    n_train=64,
    n_valid=32,
    n_test=32,
    max_lengths={"text": 8, "audio": 12, "vision": 10},
    feature_dims={"text": 10, "audio": 6, "vision": 8},
    noise_dims={"text": 2, "audio": 2, "vision": 2},
)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic feature store (64/32/32 samples), written once per session."""
    directory = tmp_path_factory.mktemp("store") / "tiny"
    write_synthetic_store(directory, TINY, dataset="tiny")
    return directory


@pytest.fixture(scope="session")
def tiny_data(tiny_store: Path):
    """(DataSpec, {split: SplitData}) of the tiny store, standardised on train."""
    return load_dataset(tiny_store)


@pytest.fixture(scope="session")
def short_synth_data(tmp_path_factory: pytest.TempPathFactory):
    """(DataSpec, splits) of a 300/100/100 `synth` with the default budget's lengths 10/30/20,
    for the learning tests of the heavier methods (written once per session)."""
    directory = tmp_path_factory.mktemp("short_synth") / "synth"
    config = SyntheticConfig(
        n_train=300,
        n_valid=100,
        n_test=100,
        seed=1,
        max_lengths={"text": 10, "audio": 30, "vision": 20},
    )
    write_synthetic_store(directory, config, dataset="synth")
    return load_dataset(directory)
