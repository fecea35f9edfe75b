"""The standard tags of every MLflow run are built in one place (`standard_tags`); what the
stages leave in a real MLflow store: seed runs spanning their real training time, tuning parent
runs with objective, direction, best trial and history, trials named by method, pruned trials
FINISHED (not failed), the compare run's best-method tags and headline, the documented filter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from harness import paths
from harness.config import parse_params
from harness.metrics import METRICS, metric_info
from harness.provenance import git_commit
from harness.records import RunResult, TuningRecord
from harness.reports.comparison_files import read_comparison_csv
from harness.stages import compare as compare_stage
from harness.stages import fetch as fetch_stage
from harness.stages import train as train_stage
from harness.stages import tune as tune_stage
from harness.tracking import Tracker, standard_tags

REPO = Path(__file__).resolve().parents[1]


def test_standard_tags_carry_stage_dataset_method_seed_commit_data_and_hardware() -> None:
    tags = standard_tags(
        "train", "synth", method="tfn", seed=1111, data_hash="abc",
        hardware={"cpu": "AMD EPYC", "cpu_capability": "AVX2"}, config_hash="def",
    )  # fmt: skip
    assert tags == {
        "msabench.stage": "train",
        "msabench.dataset": "synth",
        "msabench.method": "tfn",
        "msabench.seed": "1111",
        "msabench.data_hash": "abc",
        "msabench.cpu": "AMD EPYC",
        "msabench.cpu_capability": "AVX2",
        "msabench.config_hash": "def",
        "msabench.git_commit": git_commit(),
        "mlflow.source.git.commit": git_commit(),
    }


def test_tags_that_do_not_apply_are_left_out() -> None:
    tags = standard_tags("compare", "synth")
    assert set(tags) == {
        "msabench.stage", "msabench.dataset", "msabench.git_commit", "mlflow.source.git.commit",
    }  # fmt: skip


# --- the store the stages leave behind (issue 18): real MLflow stores on a tiny dataset ---------

TINY_SYNTH = {
    "seed": 3, "n_train": 48, "n_valid": 24, "n_test": 24,
    "max_lengths": {"text": 8, "audio": 12, "vision": 10},
    "feature_dims": {"text": 10, "audio": 6, "vision": 8},
    "noise_dims": {"text": 2, "audio": 2, "vision": 2},
}  # fmt: skip
METHODS = ("lf_dnn", "tfn")
TRAIN_FILTER = "tags.msabench.stage = 'train'"  # the filter docs/tracking.md and README give


def _params(project: Path, **changes):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"]["synth"]["synthetic"] = dict(TINY_SYNTH)
    raw["seeds"] = [1, 2]
    raw["tune"].update(n_trials=2, max_epochs=2, patience=2)
    raw["train"].update(max_epochs=2, patience=2)
    raw["benchmark"]["methods"] = list(METHODS)
    raw["probe"].update(datasets=[], methods=[])
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return parse_params(raw)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """tune, train (lf_dnn's seeds in 2 worker processes, tfn's in this process) and compare on
    a tiny synth, once for the module."""
    root = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        fetch_stage.run(_params(root), "synth")
        for method, workers in zip(METHODS, (2, 1), strict=True):
            tune_stage.run(_params(root), "synth", method)
            train_stage.run(_params(root, train__workers=workers), "synth", method)
        compare_stage.run(_params(root))
        yield root


def _client(project: Path) -> tuple[MlflowClient, str]:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    return client, client.get_experiment_by_name("msabench/synth").experiment_id


def _search(project: Path, filter_string: str) -> list:
    client, experiment_id = _client(project)
    return client.search_runs([experiment_id], filter_string=filter_string)


def test_seed_runs_last_as_long_as_their_training(project) -> None:
    """With worker processes the run is created after the seed trained: it must still span the
    training the worker measured, not the parent's logging (the 0.7 s for a 33 s run)."""
    for method, tolerance in (("lf_dnn", 0.05), ("tfn", 1.0)):  # workers; this process
        runs = _search(project, f"{TRAIN_FILTER} and tags.msabench.method = '{method}'")
        assert len(runs) == 2
        for run in runs:
            seed = int(run.data.tags["msabench.seed"])
            record = RunResult.load(project / paths.run_record("synth", method, seed))
            duration = (run.info.end_time - run.info.start_time) / 1000
            assert run.info.status == "FINISHED"
            assert 0 <= duration - record.wall_time_s + 0.002 < tolerance, (method, duration)


def test_the_documented_filter_finds_the_training_runs(project) -> None:
    runs = _search(project, TRAIN_FILTER)
    assert len(runs) == 4 and {r.data.tags["msabench.stage"] for r in runs} == {"train"}
    assert len(_search(project, f"{TRAIN_FILTER} and tags.msabench.method = 'tfn'")) == 2
    assert TRAIN_FILTER in (REPO / "docs" / "tracking.md").read_text()
    assert TRAIN_FILTER in (REPO / "README.md").read_text()
    client, experiment_id = _client(project)
    description = client.get_experiment(experiment_id).tags["mlflow.note.content"]
    assert TRAIN_FILTER in description and "compare-synth" in description


def test_tuning_parent_run_carries_objective_direction_best_trial_and_history(project) -> None:
    client, _ = _client(project)
    for method in METHODS:
        record = TuningRecord.load(project / paths.best_params_file("synth", method))
        (parent,) = _search(project, f"tags.msabench.run_key = 'tune/{record.study_name}'")
        assert parent.info.run_name == f"tune-{method}"
        params, metrics = parent.data.params, parent.data.metrics
        assert params["objective"] == "valid_mae" and params["direction"] == "minimize"
        assert metrics["best_value"] == pytest.approx(record.best_value)
        best = next(t for t in record.trials if t.value == record.best_value)
        assert metrics["best_trial"] == best.number
        assert {k: v for k, v in params.items() if k.startswith("best.")} == {
            f"best.{k}": str(v) for k, v in record.params.items()
        }
        figures = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
        assert figures == {"figures/tuning-history.png", "figures/tuning-history.pdf"}


def test_trials_are_named_with_their_method(project) -> None:
    for method in METHODS:
        trials = _search(
            project, f"tags.msabench.method = '{method}' and tags.msabench.trial != ''"
        )
        assert sorted(r.info.run_name for r in trials) == [f"{method}-trial-0", f"{method}-trial-1"]


def test_compare_run_names_the_best_method_per_metric_and_a_headline(project) -> None:
    (run,) = _search(project, "tags.msabench.stage = 'compare'")
    tags, metrics = run.data.tags, run.data.metrics
    for metric in METRICS["mosi"]:
        means = {m: metrics[f"{m}/{metric}"] for m in METHODS}
        pick = max if metric_info(metric).higher_is_better else min
        best = pick(means.values())
        tied = sorted(m for m, v in means.items() if v == best)
        assert tags[f"msabench.best.{metric}"] == tied[0]  # the table's: first in order on a tie
    headline = tags["mlflow.note.content"]
    first = headline.splitlines()[0]
    winner = tags["msabench.best.mae"]
    assert first.startswith(f"**Best MAE ↓: {winner} {metrics[f'{winner}/mae']:.4f} ± ")
    assert first.endswith("(2 seeds)") and "| Acc-7 (%) ↑ |" in headline


def test_a_pruned_trial_finishes_and_a_raising_trial_fails(tmp_path, monkeypatch) -> None:
    """Pruning is the pruner's decision, not a crash: FINISHED with msabench.trial_state=PRUNED
    (MLflow's UI draws KILLED like FAILED); a trial that raised stays FAILED."""
    import optuna

    from harness.errors import NonFiniteLossError
    from harness.training import loop as training

    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, tune__n_trials=3)
    fetch_stage.run(params, "synth")
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda trial: trial.number == 1)
    real_fit, calls = training.fit, []

    def third_trial_diverges(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise NonFiniteLossError("loss is nan at epoch 1")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", third_trial_diverges)
    tune_stage.run(params, "synth", "lf_dnn")
    trials = {
        r.data.tags["msabench.trial"]: r
        for r in _search(tmp_path, "tags.msabench.stage = 'tune' and tags.msabench.trial != ''")
    }
    assert set(trials) == {"0", "1", "2"}
    assert trials["0"].info.status == "FINISHED"
    assert "msabench.trial_state" not in trials["0"].data.tags
    assert trials["1"].info.status == "FINISHED"
    assert trials["1"].data.tags["msabench.trial_state"] == "PRUNED"
    assert trials["2"].info.status == "FAILED"
    assert "msabench.trial_state" not in trials["2"].data.tags


def test_every_training_run_carries_the_compare_stages_seed_flag(project) -> None:
    """Each seed's training run is tagged with what the comparison CSV says of it (2-epoch
    models on the tiny synth do collapse to near-constant predictions), re-set on each compare."""
    frame = read_comparison_csv(project / paths.tables_dir() / "synth.csv")
    expected = {}
    for _, row in frame.drop_duplicates("method").iterrows():
        rules = dict(zip(row["flagged_seeds"], row["flag_rules"], strict=True))
        expected.update({(row["method"], str(s)): rules.get(s, "none") for s in row["seeds"]})
    runs = _search(project, TRAIN_FILTER)
    tagged = {(r.data.tags["msabench.method"], r.data.tags["msabench.seed"]): r for r in runs}
    assert {k: r.data.tags["msabench.flagged"] for k, r in tagged.items()} == expected
    for key, run in tagged.items():
        assert bool(run.data.tags["msabench.flag_reason"]) == (expected[key] != "none")
    tracker = Tracker(f"sqlite:///{project / 'mlflow.db'}")
    key = "train/synth/tfn/seed-1"
    before = expected[("tfn", "1")]
    assert tracker.tag_runs("synth", key, {"msabench.flagged": "outlier"}) == 1
    flagged = _search(project, f"{TRAIN_FILTER} and tags.msabench.flagged = 'outlier'")
    assert ("tfn", "1") in {(r.data.tags["msabench.method"], r.data.tags["msabench.seed"])
                            for r in flagged}  # fmt: skip
    tracker.tag_runs("synth", key, {"msabench.flagged": before})  # as compare left it
