"""Records carry a schema version; the loaders read every older version and refuse a newer one
with a one-line error."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from harness.errors import DataError
from harness.records import (
    RobustnessRecord,
    RunCost,
    RunResult,
    TrialRecord,
    TuningRecord,
    load_records,
)
from harness.records.robustness import load_records as load_robustness
from harness.records.robustness import save_records as save_robustness

RUN = RunResult(
    method="tfn", dataset="synth", seed=1, split="test", metrics={"mae": 0.9},
    valid_metrics={"mae": 0.8}, hparams={"learning_rate": 1e-3}, config_hash="c", data_hash="d",
    git_commit="g", package_versions={"torch": "2.13.0"}, wall_time_s=1.5, best_epoch=3,
    epochs_run=5, device="cpu (1 thread)", hardware={"cpu": "x"},
)  # fmt: skip


def test_a_run_record_is_written_with_its_version_and_read_back(tmp_path) -> None:
    RUN.save(tmp_path / "seed-1.json")
    payload = json.loads((tmp_path / "seed-1.json").read_text())
    assert payload["schema_version"] == 4
    assert RunResult.load(tmp_path / "seed-1.json") == RUN


def test_a_version_1_run_record_is_migrated(tmp_path) -> None:
    old = asdict(RUN)
    del old["hardware"], old["extra"]  # records written before either was kept
    (tmp_path / "synth" / "tfn").mkdir(parents=True)
    (tmp_path / "synth" / "tfn" / "seed-1.json").write_text(json.dumps(old))
    [record] = load_records(tmp_path)
    assert record == RunResult(**{**asdict(RUN), "hardware": {}})


def test_a_newer_record_is_refused_in_one_line(tmp_path) -> None:
    (tmp_path / "seed-1.json").write_text(json.dumps({**RUN.to_dict(), "schema_version": 9}))
    with pytest.raises(DataError) as info:
        RunResult.load(tmp_path / "seed-1.json")
    assert str(info.value) == (
        f"{tmp_path / 'seed-1.json'}: run record schema version 9 is newer than this msabench "
        "reads (4); upgrade msabench or re-run the stage"
    )


def test_a_version_2_run_record_gets_an_empty_text_model(tmp_path) -> None:
    old = {**RUN.to_dict(), "schema_version": 2}
    del old["text_model"]  # written before the text model was recorded
    (tmp_path / "seed-1.json").write_text(json.dumps(old))
    assert RunResult.load(tmp_path / "seed-1.json") == RUN
    assert RUN.text_model == {}


COST = RunCost(
    parameters_total=1_234_567, parameters_trained=1_000_000, peak_host_memory_mb=812.5,
    peak_gpu_memory_mb=None, train_seconds_total=12.25, train_seconds_per_epoch=1.225,
    inference_ms_per_sample=0.0625, inference_batch_size=256, inference_samples=24,
    device="cpu: AMD EPYC 7B13 (1 thread)",
)  # fmt: skip


def test_a_run_cost_round_trips_through_the_record_file(tmp_path) -> None:
    record = RunResult(**{**asdict(RUN), "cost": COST})
    assert record.cost == COST  # built from asdict: the cost dict becomes a RunCost again
    record.save(tmp_path / "seed-1.json")
    payload = json.loads((tmp_path / "seed-1.json").read_text())
    assert payload["cost"]["parameters_trained"] == 1_000_000
    assert payload["cost"]["peak_gpu_memory_mb"] is None
    back = RunResult.load(tmp_path / "seed-1.json")
    assert back == record and isinstance(back.cost, RunCost)
    gpu = RunCost(**{**COST.to_dict(), "peak_gpu_memory_mb": 2048.0, "device": "cuda: H100"})
    assert RunCost.from_dict(json.loads(json.dumps(gpu.to_dict()))) == gpu
    assert COST.metrics()["parameters_total"] == 1_234_567.0
    assert "peak_gpu_memory_mb" not in COST.metrics() and "device" not in COST.metrics()


def test_a_version_3_run_record_gets_no_cost(tmp_path) -> None:
    old = {**RUN.to_dict(), "schema_version": 3}
    del old["cost"]  # written before the cost was measured
    (tmp_path / "seed-1.json").write_text(json.dumps(old))
    record = RunResult.load(tmp_path / "seed-1.json")
    assert record == RUN and record.cost is None


def test_a_cost_with_a_missing_key_is_one_line(tmp_path) -> None:
    payload = RunResult(**{**asdict(RUN), "cost": COST}).to_dict()
    del payload["cost"]["device"]
    (tmp_path / "seed-1.json").write_text(json.dumps(payload))
    with pytest.raises(DataError, match=r"seed-1.json: cost: missing keys \['device'\]"):
        RunResult.load(tmp_path / "seed-1.json")


def test_robustness_records_of_both_versions(tmp_path) -> None:
    records = [RobustnessRecord("synth", "tfn", 1, "intra", 0.1, {"mae": 1.0})]
    save_robustness(tmp_path / "records.json", records)
    assert json.loads((tmp_path / "records.json").read_text())["schema_version"] == 2
    assert load_robustness(tmp_path / "records.json") == records
    (tmp_path / "old.json").write_text(json.dumps([asdict(r) for r in records]))  # version 1
    assert load_robustness(tmp_path / "old.json") == records


def test_tuning_records_with_trials_and_without(tmp_path) -> None:
    record = TuningRecord(
        dataset="synth", method="tfn", study_name="synth.tfn.abc", select_metric="mae",
        best_value=0.8, params={"learning_rate": 1e-3}, n_complete=2, n_pruned=1,
        fixed_hparams={}, search_space={},
        trials=[TrialRecord(0, "COMPLETE", 0.8, {"learning_rate": 1e-3}),
                TrialRecord(1, "PRUNED", None, {"learning_rate": 1e-2})],
    )  # fmt: skip
    record.save(tmp_path / "best_params.json")
    assert TuningRecord.load(tmp_path / "best_params.json") == record
    old = {k: v for k, v in asdict(record).items() if k != "trials"}  # version 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert TuningRecord.load(tmp_path / "old.json").trials == []
    with pytest.raises(DataError, match="nope.json: not found; run the tune stage first"):
        TuningRecord.load(tmp_path / "nope.json")
