"""Several runs per GPU (issue 23): which device each worker process gets, workers pinned to
their device for life, seeds trained in such workers giving the same bits as in one process,
and the launch-overhead settings (`eval_batch_size`, `compile_mode`) reaching the loop.

No GPU is needed: the placement is a pure function of the GPU count, and the pinned, spawned
workers run the same code on CPU (only `torch.cuda.set_device` is CUDA's own)."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from harness.config import parse_params
from harness.errors import ConfigError
from harness.placement import worker_devices
from harness.stages import train as train_stage
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit
from harness.training.seed_runs import SeedTask, run_seed, run_seeds
from harness.workers import map_in_order, pinned_device
from methods import METHODS

REPO = Path(__file__).resolve().parents[1]


def default_raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_cpu_runs_get_no_devices_and_keep_their_workers_setting() -> None:
    assert worker_devices("cpu", 4, gpu_count=2) is None
    assert worker_devices("auto", 4, gpu_count=0) is None  # auto without a GPU is the CPU


def test_runs_per_gpu_on_every_gpu_interleaved() -> None:
    assert worker_devices("auto", 1, gpu_count=1) == ["cuda:0"]
    assert worker_devices("cuda", 3, gpu_count=2) == [
        "cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0", "cuda:1",
    ]  # fmt: skip
    assert worker_devices("cuda:1", 2, gpu_count=2) == ["cuda:1", "cuda:1"]  # that GPU only


def test_asking_for_a_gpu_that_is_not_there_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"^device: 'cuda' asks for CUDA, but torch sees no GPU"):
        worker_devices("cuda", 2, gpu_count=0)
    with pytest.raises(ConfigError, match=r"^device: 'cuda:3' is not one of the 2 GPU\(s\) "):
        worker_devices("cuda:3", 1, gpu_count=2)


def test_the_train_stage_packs_runs_per_gpu_onto_each_visible_gpu(monkeypatch) -> None:
    raw = default_raw()
    raw["train"]["runs_per_gpu"] = 4
    params = parse_params(raw)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert train_stage.seed_devices(params) == ["cuda:0", "cuda:1"] * 4
    assert train_stage.seed_devices(replace(params, device="cpu")) is None


def _where(task: int) -> tuple[int, str | None, int]:
    time.sleep(0.2)  # long enough that every worker gets tasks
    return task, pinned_device(), os.getpid()


def test_each_worker_is_pinned_to_one_device_for_life_and_results_come_in_order() -> None:
    devices = ["slot-a", "slot-b", "slot-a", "slot-b"]  # 2 runs on each of 2 devices
    results = list(map_in_order(_where, list(range(12)), workers=1, devices=devices))
    assert [task for task, _, _ in results] == list(range(12))
    by_process = defaultdict(set)
    for _, device, pid in results:
        by_process[pid].add(device)
    assert all(len(pinned) == 1 for pinned in by_process.values())  # one device per process
    per_device = defaultdict(int)
    for pinned in by_process.values():
        per_device[pinned.pop()] += 1
    # never more processes on a device than its entries (all four take tasks when they start
    # together; a worker that starts after the others have finished every task takes none)
    assert set(per_device) <= {"slot-a", "slot-b"}
    assert all(count <= 2 for count in per_device.values()), dict(per_device)
    assert os.getpid() not in by_process and pinned_device() is None  # the parent is not pinned


def test_seeds_in_device_pinned_spawned_workers_give_the_same_bits(tiny_store) -> None:
    cls = METHODS.get("lf_dnn")
    loop = LoopConfig(max_epochs=2, patience=2, progress=False, num_threads=1)
    hparams = cls.resolve_hparams("mosi", {"batch_size": 16})
    tasks = [SeedTask("lf_dnn", hparams, tiny_store, "tiny", loop, seed) for seed in (3, 4)]
    alone = [run_seed(task) for task in tasks]
    packed = list(run_seeds(tasks, workers=1, devices=["cpu", "cpu"]))
    for one, other in zip(alone, packed, strict=True):
        assert one.seed == other.seed and one.test_metrics == other.test_metrics
        np.testing.assert_array_equal(one.predictions, other.predictions)
        assert all(torch.equal(one.state[k], other.state[k]) for k in one.state)
        assert other.device == "cpu (1 thread)"


def test_eval_batch_size_and_compile_mode_reach_the_loop_and_the_robustness_tasks() -> None:
    raw = default_raw()
    raw.update(eval_batch_size=1024, compile_mode="reduce-overhead")
    params = parse_params(raw)
    for loop in (LoopConfig.for_training(params, "synth"), LoopConfig.for_tuning(params, "synth")):
        assert (loop.eval_batch_size, loop.compile_mode) == (1024, "reduce-overhead")
    assert LoopConfig(max_epochs=1, patience=1).eval_batch_size == 256  # the default
    assert LoopConfig(max_epochs=1, patience=1).compile_mode == "none"


def test_the_evaluation_batch_size_changes_no_prediction_beyond_float_rounding(tiny_data) -> None:
    spec, splits = tiny_data
    cls = METHODS.get("lf_dnn")
    model = build_model(cls, cls.resolve_hparams(spec.kind, {}), spec, 0)
    one = evaluate(model, splits["test"], 256, "cpu")[1]
    other = evaluate(model, splits["test"], 5, "cpu")[1]
    np.testing.assert_allclose(one, other, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_compiled_forward_trains_repeatably_and_saves_the_eager_models_weights(tiny_data):
    """torch.compile (inductor, on CPU here: about 30 s to compile LF-DNN's graphs)."""
    spec, splits = tiny_data
    cls = METHODS.get("lf_dnn")
    hparams = cls.resolve_hparams(spec.kind, {"batch_size": 16})

    def trained(mode: str):
        model = build_model(cls, hparams, spec, 0)
        loop = LoopConfig(max_epochs=3, patience=3, progress=False, compile_mode=mode)
        outcome = fit(model, splits["train"], splits["valid"], loop, RunContext("t", "x", 0), 0)
        return outcome, evaluate(outcome.model, splits["test"], 256, "cpu")[1]

    (eager, eager_predictions), (compiled, predictions) = trained("none"), trained("default")
    again = trained("default")[1]
    np.testing.assert_array_equal(predictions, again)  # repeatable on one device
    assert compiled.model._compiled_call_impl is not None  # the forward did run compiled
    np.testing.assert_allclose(predictions, eager_predictions, atol=0.05)  # near, not equal
    state = compiled.model.state_dict()
    assert list(state) == list(eager.model.state_dict())  # no `_orig_mod.` prefixes
    restored = build_model(cls, hparams, spec, 1)
    restored.load_state_dict(state)  # an eager model takes the compiled run's weights
    np.testing.assert_allclose(
        evaluate(restored, splits["test"], 256, "cpu")[1], predictions, rtol=0, atol=1e-5
    )
