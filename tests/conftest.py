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


POSITIVE_WORDS = "good great fun liked loved funny wonderful".split()
NEGATIVE_WORDS = "bad awful boring hated sad terrible dull".split()
NEUTRAL_WORDS = "movie plot actor really very quite the a it was and but i story ending".split()


def token_splits(config: SyntheticConfig = TINY, max_tokens: int = 12, seed: int = 0):
    """The synthetic splits of `config` with token-level text: per sample a few neutral words
    and one positive or negative word by the label's sign, tokenized by the real built-in MiniLM
    and encoded by it (frozen), as the token-level MOSI does.
    Returns ({split: SplitArrays}, TokenInfo)."""
    import numpy as np

    from harness.data.synthetic import generate
    from harness.data.text_encoding import encode, token_info, tokenize
    from harness.text_models import resolve

    model = resolve("minilm")
    rng = np.random.default_rng(seed)
    out = {}
    for name, arrays in generate(config).arrays.items():
        texts = []
        for label in arrays.labels:  # a sentiment word for the label's sign among neutral ones
            words = list(rng.choice(NEUTRAL_WORDS, size=int(rng.integers(0, max_tokens - 3))))
            polar = POSITIVE_WORDS if label >= 0 else NEGATIVE_WORDS
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(polar)))
            texts.append(" ".join(words))
        tokens = tokenize(texts, model, max_tokens)
        features = {**arrays.features, "text": encode(tokens, model)}
        lengths = {**arrays.lengths, "text": tokens[:, 1].sum(axis=1).astype(np.int64)}
        out[name] = type(arrays)(features, lengths, arrays.labels, arrays.ids, tokens)
    return out, token_info(model, max_tokens)


@pytest.fixture(scope="session")
def tiny_token_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic store with token-level text from the real MiniLM (token_splits)."""
    from harness.data.store import write_store

    directory = tmp_path_factory.mktemp("token_store") / "tiny_tokens"
    splits, info = token_splits()
    write_store(directory, "tiny_tokens", "mosi", splits, {"type": "test"}, [], tokens=info)
    return directory


@pytest.fixture(scope="session")
def tiny_token_data(tiny_token_store: Path):
    """(DataSpec, {split: SplitData}) of tiny_token_store, standardised on train."""
    return load_dataset(tiny_token_store)


def as_binary(data):
    """(DataSpec, splits) of a regression dataset as a binary one: label 1 where the score is
    >= 0, the kind "binary" with its (0, 1) range; features and everything else unchanged."""
    import dataclasses

    spec, splits = data
    spec = dataclasses.replace(spec, kind="binary", label_range=(0.0, 1.0))
    binary = {
        name: dataclasses.replace(split, labels=(split.labels >= 0).to(split.labels.dtype))
        for name, split in splits.items()
    }
    return spec, binary


@pytest.fixture(scope="session")
def tiny_binary_data(tiny_data):
    """The tiny store's splits as a binary task (`as_binary`)."""
    return as_binary(tiny_data)
