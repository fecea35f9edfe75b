"""Linear probes: the pure R^2 function on data with a known answer, the separation verdict, the
representation collector, and `msabench probe` end to end on a tiny synthetic store."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from harness import paths
from harness.data.loading import load_dataset
from harness.data.store import read_manifest
from harness.errors import DataError
from harness.evaluation.probes import ProbeResult, probe_r2, representations, separation
from harness.stages import fetch as fetch_stage
from harness.stages import probe as probe_stage
from harness.training.checkpoints import Checkpoint, save_checkpoint
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods import METHODS


def test_probe_r2_recovers_a_known_linear_signal_and_zero_for_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    signal = x @ np.array([[1.0], [-2.0], [0.5], [0.0], [0.0]])
    noise = rng.normal(size=(2000, 1))
    y = signal + noise  # R^2 = var(signal) / (var(signal) + 1) = 5.25 / 6.25
    assert probe_r2(x[:1000], y[:1000], x[1000:], y[1000:]) == pytest.approx(0.84, abs=0.03)
    unrelated = rng.normal(size=(2000, 2))
    assert abs(probe_r2(x[:1000], unrelated[:1000], x[1000:], unrelated[1000:])) < 0.02


def test_separation_compares_each_latent_across_the_two_representations() -> None:
    results = [
        ProbeResult("shared_text", "shared", 0.6),
        ProbeResult("shared_text", "unique_text", 0.2),
        ProbeResult("unique_text", "shared", 0.3),
        ProbeResult("unique_text", "unique_text", 0.1),
    ]
    row = separation(results)["text"]
    assert row["s_separated"] is True and row["u_separated"] is False
    assert row["shared_rep->s"] == 0.6 and row["unique_rep->u"] == 0.1


def test_representations_reads_every_pooled_factor_in_split_order(tiny_data) -> None:
    spec, splits = tiny_data
    cls = METHODS.get("fine")
    model = build_model(cls, cls.resolve_hparams(spec.kind, {"model_dim": 16}), spec, 0)
    reps = representations(model, splits["test"], batch_size=7)
    expected = {
        f"{p}_{m}"
        for p in ("shared", "unique", "task_shared", "task_unique")
        for m in ("text", "audio", "vision")
    }
    assert set(reps) == expected
    assert all(r.shape == (len(splits["test"]), 16) for r in reps.values())
    whole = representations(model, splits["test"], batch_size=256)
    np.testing.assert_allclose(reps["shared_text"], whole["shared_text"], rtol=1e-5, atol=1e-6)


def test_a_method_without_factors_is_a_clear_error(tiny_data) -> None:
    spec, splits = tiny_data
    cls = METHODS.get("lf_dnn")
    model = build_model(cls, cls.resolve_hparams(spec.kind), spec, 0)
    with pytest.raises(DataError, match="LFDNN: outputs no factor representations"):
        representations(model, splits["test"])


def test_probe_command_end_to_end_on_a_tiny_store(tmp_path, monkeypatch) -> None:
    from test_pipeline import _params

    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, methods__fine__hparams={"model_dim": 16, "num_experts": 2})
    fetch_stage.run(params, "synth")
    seed = params.seeds[0]
    with pytest.raises(DataError, match=r"seed-\d+\.pt: checkpoint not found \(run the train"):
        probe_stage.run(params, "synth", "fine")
    store = paths.feature_store("synth")
    spec, splits = load_dataset(store)
    cls = METHODS.get("fine")
    hparams = cls.resolve_hparams(spec.kind, params.method("fine").hparams)
    model = build_model(cls, hparams, spec, seed)
    loop = LoopConfig(max_epochs=1, patience=1, progress=False)
    fit(model, splits["train"], splits["valid"], loop, RunContext("synth", "fine", seed), seed)
    checkpoint = Checkpoint("fine", "synth", seed, asdict(hparams),
                            read_manifest(store).data_hash, model.state_dict())  # fmt: skip
    save_checkpoint(paths.run_checkpoint("synth", "fine", seed), checkpoint)
    outcome = probe_stage.run(params, "synth", "fine")
    json_path, md_path = paths.probe_files("synth", "fine")
    metrics = json.loads(json_path.read_text())
    assert set(metrics) == {f"{r['representation']}->{r['target']}" for r in outcome["results"]}
    assert len(metrics) == 4 * 3 * 2 and all(-10 < v <= 1 for v in metrics.values())
    assert set(outcome["separation"]) == {"text", "audio", "vision"}
    assert "| shared_text |" in md_path.read_text()


def test_probe_needs_known_latents(tmp_path, monkeypatch, tiny_store) -> None:
    import shutil

    from test_pipeline import _params

    monkeypatch.chdir(tmp_path)
    store = paths.feature_store("synth")
    shutil.copytree(tiny_store, store)
    (store / "latents.npz").unlink()
    with pytest.raises(DataError, match="latents.npz: missing; probes need a dataset"):
        probe_stage.run(_params(tmp_path), "synth", "fine")
    assert not paths.probes_dir("synth").exists()
