"""Where a run was computed: the hardware facts kept in every run record and the provenance
paragraph under each comparison table."""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from harness.provenance import cpu_model, hardware_facts
from harness.records import RunResult
from harness.reports.provenance import provenance_note


def make_record(method: str, seed: int, metrics: dict[str, float]) -> RunResult:
    return RunResult(
        method=method, dataset="synth", seed=seed, split="test", metrics=metrics,
        valid_metrics={}, hparams={}, config_hash="0" * 64, data_hash="1" * 64,
        git_commit="deadbeef", package_versions={}, wall_time_s=1.0, best_epoch=1,
        epochs_run=1, device="cpu",
    )  # fmt: skip


def test_hardware_facts_name_the_cpu_and_the_kernels_torch_uses() -> None:
    facts = hardware_facts(torch.device("cpu"))
    assert facts["cpu"] == cpu_model() and facts["cpu"] != ""
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert facts["os"].split()[0] in ("Linux", "Darwin", "Windows")
    assert "gpu" not in facts  # a CPU run says nothing of a GPU, even where one is present


def _record(method: str, seed: int, **changes):
    record = make_record(method, seed, {"mae": 1.0})
    hardware = {"cpu": "AMD EPYC 7B13", "cpu_capability": "AVX2", "os": "Linux 6.1 x86_64"}
    defaults = dict(
        device="cpu (2 threads)", hardware=hardware, package_versions={"torch": "2.13.0"}
    )
    return replace(record, **{**defaults, **changes})


def test_one_setup_is_one_sentence() -> None:
    records = [_record(m, s) for m in ("tfn", "lmf") for s in (1, 2)]
    assert provenance_note(records) == (
        "Runs: code deadbeef, cpu (2 threads), AMD EPYC 7B13, AVX2 kernels, torch 2.13.0."
    )


def test_runs_from_other_cpus_or_gpus_are_listed_by_setup() -> None:
    intel = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "os": "Linux"}
    h100 = {**intel, "gpu": "NVIDIA H100 80GB HBM3", "cuda": "13.0", "cudnn": "91000"}
    records = [
        _record("tfn", 1),
        _record("tfn", 2, hardware=intel),
        _record("lmf", 1, device="cuda:0", hardware=h100),
        _record("misa", 1, hardware={}),  # a record written before hardware was kept
    ]
    note = provenance_note(records)
    assert note.startswith("Runs from 4 different setups, so their numbers are not bitwise")
    assert "tfn: code deadbeef, cpu (2 threads), AMD EPYC 7B13, AVX2 kernels" in note
    assert "tfn: code deadbeef, cpu (2 threads), Intel(R) Xeon(R) Processor, AVX512" in note
    assert "lmf: code deadbeef, cuda:0 (NVIDIA H100 80GB HBM3, CUDA 13.0)" in note
    assert "misa: code deadbeef, cpu (2 threads), hardware not recorded" in note


def test_records_without_hardware_still_load(tmp_path) -> None:
    payload = make_record("tfn", 1, {"mae": 1.0}).to_dict()
    del payload["hardware"]
    path = tmp_path / "seed-1.json"
    path.write_text(json.dumps(payload))
    assert RunResult.load(path).hardware == {}


def test_git_commit_is_dirty_for_code_changes_not_for_the_pipelines_own_outputs(
    tmp_path, monkeypatch
) -> None:
    import subprocess

    from harness.provenance import git_commit

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    (tmp_path / "results").mkdir()
    for name in ("dvc.lock", "results/metrics.json", "harness.py"):
        (tmp_path / name).write_text("0\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "initial")
    sha = git("rev-parse", "HEAD")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # from a subfolder too
    check = git_commit.__wrapped__  # uncached
    (tmp_path / "dvc.lock").write_text("1\n")  # what `dvc repro` writes between stages
    (tmp_path / "results" / "metrics.json").write_text("1\n")
    assert check() == sha
    (tmp_path / "harness.py").write_text("1\n")
    assert check() == f"{sha}-dirty"
