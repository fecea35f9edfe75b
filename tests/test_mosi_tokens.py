"""The token-level MOSI (`mosi_tokens`): the real bc-LSTM bundle (../shared/data/mosi-bclstm)
served from a loopback HTTP server, fetched with `text: tokens` (transcripts tokenized and
encoded by the real built-in MiniLM), and a fine-tuned MISA trained on it end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from loopback_http import LoopbackServer

from harness.config import DatasetConfig
from harness.data.sources import fetch_dataset
from harness.data.store import read_manifest

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE = REPO_ROOT.parent / "shared" / "data" / "mosi-bclstm"

pytestmark = pytest.mark.skipif(
    not (BUNDLE / "label.csv").is_file(), reason=f"MOSI bc-LSTM bundle not found at {BUNDLE}"
)


def _config(base_url: str) -> DatasetConfig:
    """params.yaml's mosi_tokens with every URL pointing at `base_url`/<path>."""
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    declared = raw["datasets"]["mosi_tokens"]
    files = [{**file, "url": f"{base_url}/{file['path']}"} for file in declared["files"]]
    return DatasetConfig("mosi_tokens", "url", "mosi", {**declared, "files": files})


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("project")
    with LoopbackServer(BUNDLE) as server, pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        started = time.perf_counter()
        fetch_dataset(_config(server.url), work / "features" / "mosi_tokens")
        seconds = time.perf_counter() - started
    yield {"store": work / "features" / "mosi_tokens", "seconds": seconds}


def test_params_declare_it_as_mosi_bclstm_with_token_text() -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    tokens, bclstm = raw["datasets"]["mosi_tokens"], raw["datasets"]["mosi_bclstm"]
    assert tokens["files"] == bclstm["files"] and tokens["split"] == bclstm["split"] == "bclstm"
    assert (tokens["text"], tokens["text_model"], tokens["max_text_tokens"]) == (
        "tokens", "minilm", 50,
    )  # fmt: skip


def test_store_holds_tokens_and_minilm_token_states(fetched) -> None:
    manifest = read_manifest(fetched["store"])
    info = manifest.text_tokens
    assert info is not None and info.model == "minilm" and info.max_length == 50
    assert info.sha256.startswith("53aa51172d14") and info.revision == "1110a243"
    assert manifest.feature_dims == {"text": 384, "audio": 73, "vision": 100}
    assert manifest.max_lengths == {"text": 50, "audio": 1, "vision": 1}
    assert {name: entry.n for name, entry in manifest.splits.items()} == {
        "train": 1231, "valid": 216, "test": 752,
    }  # fmt: skip
    with np.load(fetched["store"] / "test.npz") as archive:
        tokens, lengths = archive["text_tokens"], archive["text_lengths"]
        text = archive["text"]
    assert tokens.shape == (752, 3, 50) and tokens.dtype == np.int64
    assert (tokens[:, 0, 0] == 101).all()  # [CLS]
    rows = np.arange(752)
    assert (tokens[rows, 0, lengths - 1] == 102).all()  # [SEP] ends every real sequence
    assert np.array_equal(tokens[:, 1].sum(1), lengths)
    assert (np.abs(text).sum(2) > 0).sum(1).tolist() == lengths.tolist()  # states at real tokens


@pytest.mark.slow
def test_end_to_end_finetuned_misa_on_token_mosi(fetched, one_torch_thread) -> None:
    """Loopback URL -> fetch (tokenize + encode) -> MISA with MMSA's MOSI defaults (batch 16,
    hidden 128) fine-tuning MiniLM, one seed, two epochs, one torch thread -> it has learned
    from the transcripts. (Two threads beside the suite's other xdist worker oversubscribe the
    2 cores: the test took 494 s in the suite with two, 90 s alone with one.)

    Two epochs stay below the tuned ridge floor on frozen states (test Corr 0.674, Acc-2 80.4%,
    bench/results/cpu-issue19/text_floor.md), and the last bits of CPU arithmetic move these
    scores (seeds 1111-1113 on one AMD EPYC: Corr 0.64-0.67, Acc-2 non-0 73.8-77.5%, MAE 0.89-0.91;
    with batch 32 and hidden 32 a CI machine gave Acc-2 71%), so the bounds are set below the
    spread with margin and far above what a model that learned nothing reaches (Corr ~0,
    MAE 1.32 predicting the training mean)."""

    from harness.data.loading import load_dataset
    from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
    from methods import METHODS

    spec, splits = load_dataset(fetched["store"])
    method = METHODS.get("misa")
    hparams = method.resolve_hparams("mosi", {})
    model = build_model(method, hparams, spec, seed=1111)
    assert model.text_mode == "pretrained"
    loop = LoopConfig(max_epochs=2, patience=2, device="cpu", progress=False)
    started = time.perf_counter()
    context = RunContext("mosi_tokens", "misa", 1111)
    outcome = fit(model, splits["train"], splits["valid"], loop, context, seed=1111)
    metrics, predictions = evaluate(outcome.model, splits["test"], 256, "cpu")
    print(
        f"\nfetch {fetched['seconds']:.1f}s; train+eval {time.perf_counter() - started:.1f}s; "
        "test " + ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    )
    assert predictions.shape == (752,) and np.isfinite(predictions).all()
    assert metrics["corr"] > 0.55 and metrics["mae"] < 1.0 and metrics["acc2_non0"] > 0.68
