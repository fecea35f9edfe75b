"""The standard tags of every MLflow run are built in one place (`standard_tags`)."""

from __future__ import annotations

from harness.provenance import git_commit
from harness.tracking import standard_tags


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
