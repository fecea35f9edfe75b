"""Stages on a tiny store: tuning (validation only, resumable, nested MLflow runs), training over
seeds (records, predictions, MLflow runs without duplicates) and the comparison."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from harness import paths
from harness.config import parse_params
from harness.records import load_records
from harness.stages import compare as compare_stage
from harness.stages import fetch as fetch_stage
from harness.stages import train as train_stage
from harness.stages import tune as tune_stage

REPO = Path(__file__).resolve().parents[1]
TINY_SYNTH = {
    "seed": 3,
    "n_train": 48,
    "n_valid": 24,
    "n_test": 24,
    "max_lengths": {"text": 8, "audio": 12, "vision": 10},
    "feature_dims": {"text": 10, "audio": 6, "vision": 8},
    "noise_dims": {"text": 2, "audio": 2, "vision": 2},
}


def _params(project: Path, **changes):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"]["synth"]["synthetic"] = dict(TINY_SYNTH)
    raw["seeds"] = [1, 2]
    raw["tune"].update(n_trials=2, max_epochs=2, patience=2)
    raw["train"].update(max_epochs=2, patience=2)
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return parse_params(raw)


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    fetch_stage.run(_params(tmp_path), "synth")
    return tmp_path


def _runs(project: Path, stage: str) -> list:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("msabench/synth")
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`msabench.stage` = '{stage}'"
    )


def test_tuning_never_reads_the_test_split(project, monkeypatch) -> None:
    import harness.data.loading as loading

    read = []
    original = loading.load_split
    monkeypatch.setattr(
        loading, "load_split", lambda d, s, *a, **k: read.append(s) or original(d, s, *a, **k)
    )
    tune_stage.run(_params(project), "synth", "lf_dnn")
    assert "test" not in read and {"train", "valid"} <= set(read)


def test_tuning_writes_best_params_and_nested_trial_runs(project) -> None:
    tune_stage.run(_params(project), "synth", "lf_dnn")
    best = json.loads(paths.best_params_file("synth", "lf_dnn").read_text())
    assert set(best["params"]) == {"learning_rate", "dropout", "post_fusion_dim", "weight_decay"}
    runs = _runs(project, "tune")
    parents = [r for r in runs if "msabench.trial" not in r.data.tags]
    trials = [r for r in runs if "msabench.trial" in r.data.tags]
    assert len(parents) == 1 and len(trials) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parents[0].info.run_id}


def _studies(storage: Path) -> list:
    import optuna

    backend = optuna.storages.journal.JournalFileBackend(str(storage))
    return optuna.get_all_study_summaries(optuna.storages.JournalStorage(backend))


def test_interrupted_study_resumes_without_repeating_trials(project, monkeypatch) -> None:
    from harness.training import loop as training

    params = _params(project, tune__n_trials=3)
    real_fit, calls = training.fit, []

    def interrupted_on_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", interrupted_on_second_trial)
    with pytest.raises(KeyboardInterrupt):
        tune_stage.run(params, "synth", "lf_dnn")
    monkeypatch.setattr(training, "fit", real_fit)
    storage = paths.study_storage("synth", "lf_dnn")
    [study] = _studies(storage)
    assert study.n_trials == 2  # one finished, one interrupted
    tune_stage.run(params, "synth", "lf_dnn")  # resumes: 1 finished trial kept, 2 more run
    import optuna

    loaded = optuna.load_study(
        study_name=study.study_name,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(storage))
        ),
    )
    states = [t.state.name for t in loaded.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 3
    assert states.count("FAIL") == 1 and states[1] == "FAIL"  # the interrupted trial
    # the same configuration again is already complete: nothing new runs
    tune_stage.run(params, "synth", "lf_dnn")
    assert len(_studies(storage)) == 1 and _studies(storage)[0].n_trials == 4
    trial_runs = [r for r in _runs(project, "tune") if "msabench.trial" in r.data.tags]
    assert sorted(int(r.data.tags["msabench.trial"]) for r in trial_runs) == [0, 1, 2, 3]
    # a changed budget is a different study (its identity hash differs), in the same file
    tune_stage.run(_params(project, tune__n_trials=2), "synth", "lf_dnn")
    assert sorted(s.n_trials for s in _studies(storage)) == [2, 4]


def _loaded_study(storage: Path):
    import optuna

    [summary] = _studies(storage)
    backend = optuna.storages.journal.JournalFileBackend(str(storage))
    return optuna.load_study(
        study_name=summary.study_name, storage=optuna.storages.JournalStorage(backend)
    )


def test_first_trial_is_the_methods_defaults_then_the_sampler(project) -> None:
    from methods import METHODS

    params = _params(project, methods__lf_dnn__hparams={"dropout": 0.1})
    tune_stage.run(params, "synth", "lf_dnn")
    first, second = _loaded_study(paths.study_storage("synth", "lf_dnn")).trials
    defaults = METHODS.get("lf_dnn").Hparams()
    # dropout is fixed, so not a dimension; the other three defaults (MMSA's) lie in the space
    assert first.system_attrs["fixed_params"] == {
        "learning_rate": defaults.learning_rate,
        "post_fusion_dim": defaults.post_fusion_dim,
        "weight_decay": defaults.weight_decay,
    }
    assert first.params["learning_rate"] == defaults.learning_rate
    assert "fixed_params" not in second.system_attrs


def test_defaults_outside_the_space_are_left_to_the_sampler(project) -> None:
    params = _params(
        project,
        tune__n_trials=1,
        methods__lf_dnn__search_space={"learning_rate": {"low": 0.01, "high": 0.02}},
    )
    tune_stage.run(params, "synth", "lf_dnn")
    [trial] = _loaded_study(paths.study_storage("synth", "lf_dnn")).trials
    assert 0.01 <= trial.params["learning_rate"] <= 0.02
    from methods import METHODS

    assert trial.params["post_fusion_dim"] == METHODS.get("lf_dnn").Hparams().post_fusion_dim


def test_enqueue_defaults_can_be_switched_off(project) -> None:
    params = _params(project, tune__n_trials=1, tune__enqueue_defaults=False)
    tune_stage.run(params, "synth", "lf_dnn")
    [trial] = _loaded_study(paths.study_storage("synth", "lf_dnn")).trials
    assert "fixed_params" not in trial.system_attrs


def test_fixed_hparams_are_not_tuned(project) -> None:
    params = _params(project, methods__lf_dnn__hparams={"dropout": 0.1})
    tune_stage.run(params, "synth", "lf_dnn")
    best = json.loads(paths.best_params_file("synth", "lf_dnn").read_text())
    assert "dropout" not in best["params"] and best["fixed_hparams"] == {"dropout": 0.1}


def test_train_writes_records_predictions_and_runs_once(project) -> None:
    params = _params(project, train__workers=1)
    tune_stage.run(params, "synth", "tfn")
    train_stage.run(params, "synth", "tfn")
    records = load_records(paths.all_runs())
    assert [(r.method, r.seed) for r in records] == [("tfn", 1), ("tfn", 2)]
    record = records[0]
    assert record.split == "test" and set(record.metrics) >= {"acc7", "mae", "corr"}
    assert record.data_hash and record.config_hash and record.package_versions["torch"]
    assert record.hardware["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    _check_cost(record)
    lines = paths.run_predictions("synth", "tfn", 1).read_text().splitlines()
    assert lines[0] == "id,prediction,label" and len(lines) == 25
    runs = _runs(project, "train")
    assert len(runs) == 2
    tags = runs[0].data.tags
    for key in (
        "msabench.dataset",
        "msabench.method",
        "msabench.seed",
        "msabench.data_hash",
        "msabench.config_hash",
        "mlflow.source.git.commit",
        "msabench.cpu",
    ):
        assert key in tags
    assert tags["msabench.cpu_capability"] == record.hardware["cpu_capability"]
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    history = client.get_metric_history(runs[0].info.run_id, "valid_mae")
    assert [m.step for m in history] == [1, 2]
    assert "test_mae" in runs[0].data.metrics
    assert {"cost.parameters_total", "cost.train_seconds_total"} <= set(runs[0].data.metrics)
    assert "cost.peak_gpu_memory_mb" not in runs[0].data.metrics  # on CPU
    assert tags["msabench.device"].startswith("cpu: ")
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"record.json", "config.json", "test_predictions.csv"} <= artifacts
    # re-running the finished stage replaces its runs instead of duplicating them
    train_stage.run(params, "synth", "tfn")
    assert len(_runs(project, "train")) == 2
    first, again = records[0], load_records(paths.all_runs())[0]
    assert first.metrics == again.metrics  # deterministic: bit-identical metrics


def _check_cost(record) -> None:
    """The record's cost: parameters as the trained model has them (its checkpoint restored),
    the rest measured."""
    from harness.data.loading import load_dataset
    from harness.training.checkpoints import load_checkpoint, restore_model

    cost = record.cost
    spec, _ = load_dataset(paths.feature_store(record.dataset), standardize=False, splits=("test",))
    checkpoint = load_checkpoint(paths.run_checkpoint(record.dataset, record.method, record.seed))
    model = restore_model(checkpoint, spec, record.data_hash)
    assert cost.parameters_total == sum(p.numel() for p in model.parameters())
    assert cost.parameters_trained == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert cost.peak_gpu_memory_mb is None and cost.device.startswith("cpu: ")
    assert cost.train_seconds_total > 0 and cost.train_seconds_per_epoch > 0
    assert cost.inference_samples == 24 and cost.inference_ms_per_sample > 0
    assert cost.peak_host_memory_mb > 0


def test_seeds_in_worker_processes_give_identical_records_and_full_curves(project) -> None:
    # the same thread count on both sides (CPU results depend on it; left at 0 = auto, the
    # workers would get cores // 2 threads, which differs from the serial run on a 4-core machine)
    serial = _params(project, train__workers=1, seeds=[1, 2, 3], num_threads=1)
    tune_stage.run(serial, "synth", "lf_dnn")
    train_stage.run(serial, "synth", "lf_dnn")
    one_worker = load_records(paths.all_runs())
    two = _params(project, train__workers=2, seeds=[1, 2, 3], num_threads=1)
    train_stage.run(two, "synth", "lf_dnn")
    two_workers = load_records(paths.all_runs())
    assert [r.seed for r in two_workers] == [1, 2, 3]
    for a, b in zip(one_worker, two_workers, strict=True):
        assert a.metrics == b.metrics and a.config_hash == b.config_hash  # bit-identical
        assert a.epochs_run == b.epochs_run
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = _runs(project, "train")
    assert len(runs) == 3  # replaced, not duplicated
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_task")]
        assert steps == [1, 2]


def test_compare_writes_tables_figures_and_an_mlflow_run(project) -> None:
    from harness.stages import train as train_stage
    from harness.stages import tune as tune_stage

    params = _params(
        project, benchmark__methods=["lf_dnn", "tfn"], probe={"datasets": [], "methods": []}
    )
    for method in ("lf_dnn", "tfn"):
        tune_stage.run(params, "synth", method)
        train_stage.run(params, "synth", method)
    metrics = compare_stage.run(params)
    assert set(metrics["synth"]) == {"lf_dnn", "tfn"}
    for suffix in ("md", "tex", "csv"):
        assert (paths.tables_dir() / f"synth.{suffix}").is_file()
    table = (paths.tables_dir() / "synth.md").read_text()
    assert "paired bootstrap over the" in table and "ASO" in table  # per-sample test and ASO ran
    figures = paths.figures_dir("synth")
    for name in ("seed-scores", "tuning-history", "cost"):
        assert (figures / f"{name}.png").is_file() and (figures / f"{name}.pdf").is_file()
    assert "Cost (mean over seeds):" in table and "in batches of 256" in table
    cost = (figures / "cost.csv").read_text().splitlines()
    assert cost[0].startswith("method,train_seconds_total,") and len(cost) == 3  # two methods
    history = (figures / "tuning-history.csv").read_text().splitlines()
    assert history[0] == "method,trial,state,value,best" and len(history) > 2
    assert json.loads(paths.metrics_file().read_text()) == json.loads(json.dumps(metrics))
    (run,) = _runs(project, "compare")
    assert run.data.tags["msabench.dataset"] == "synth"
    assert run.data.tags["msabench.methods"] == "lf_dnn,tfn"
    assert "tfn/mae" in run.data.metrics
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    assert artifacts == {"tables/synth.md", "tables/synth.tex", "tables/synth.csv"}
    first = {p.name: p.read_bytes() for p in [*paths.tables_dir().iterdir(), *figures.iterdir()]}
    compare_stage.run(params)  # the same records: the same bytes, tables and figures
    again = {p.name: p.read_bytes() for p in [*paths.tables_dir().iterdir(), *figures.iterdir()]}
    assert first == again
    assert len(_runs(project, "compare")) == 1  # replaced, not duplicated
    shutil.rmtree(paths.runs_dir("synth", "tfn"))
    from harness.errors import DataError

    with pytest.raises(DataError, match="no run record for synth/tfn/seed 1"):
        compare_stage.run(params)
