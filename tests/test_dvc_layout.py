"""dvc.yaml and the code agree: every stage calls the CLI, writes where harness/paths.py says,
lists only the params it reads, and lists in deps exactly the code it runs (the import closure
that harness/code_identity.py walks, the same code that keys tuning studies and resumed
training)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import paths
from harness.code_identity import stage_files
from methods import METHOD_MODULES

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
CODE = ("harness/", "methods")
# stages that build a method: (the method a stage item builds, or every benchmark method)
METHOD_STAGES = {"tune": "item", "train": "item", "probe": "item", "robustness": "all"}


def _resolve(entries, **item) -> list[str]:
    resolved = []
    for entry in entries:
        name = next(iter(entry)) if isinstance(entry, dict) else entry
        for key, value in item.items():
            name = name.replace(f"${{item.{key}}}", value)
        resolved.append(name.replace("${item}", item.get("item", "")))
    return resolved


def test_stage_outputs_match_harness_paths() -> None:
    fetch = STAGES["fetch"]["do"]
    assert _resolve(fetch["outs"], item="synth") == [str(paths.feature_store("synth"))]
    tune = _resolve(STAGES["tune"]["outs"], dataset="synth", method="tfn")
    assert tune == [
        str(paths.best_params_file("synth", "tfn")),
        str(paths.study_storage("synth", "tfn")),
    ]
    train = _resolve(STAGES["train"]["outs"], dataset="synth", method="tfn")
    assert train == [str(paths.runs_dir("synth", "tfn"))]
    compare_outs = [str(paths.tables_dir()), str(paths.figures_dir("synth").parent)]
    assert _resolve(STAGES["compare"]["outs"]) == compare_outs
    assert _resolve(STAGES["rank"]["outs"]) == [str(paths.ranks_dir())]
    assert _resolve(STAGES["paper"]["outs"]) == [str(paths.papers_dir())]
    assert _resolve(STAGES["compare"]["metrics"]) == [str(paths.metrics_file())]
    assert str(paths.all_runs()) in STAGES["compare"]["deps"]
    robustness = STAGES["robustness"]["do"]
    assert _resolve(robustness["outs"], item="synth") == [str(paths.robustness_dir("synth"))]
    assert _resolve(robustness["metrics"], item="synth") == [str(paths.robustness_metrics("synth"))]
    assert "results/runs/${item}" in robustness["deps"]
    probe = _resolve(STAGES["probe"]["deps"], dataset="synth", method="fine")
    assert str(paths.runs_dir("synth", "fine")) in probe


def test_every_stage_calls_its_own_cli_command_and_module() -> None:
    for name, stage in STAGES.items():
        body = stage.get("do", stage)
        assert body["cmd"].split()[:2] == ["msabench", name], name
        assert f"harness/stages/{name}.py" in body["deps"], name


def test_method_stages_read_only_their_own_method_params() -> None:
    for name in ("tune", "train"):
        method_params = [p for p in STAGES[name]["params"] if str(p).startswith("methods")]
        assert method_params == ["methods.${item.method}"], name


def test_study_storage_persists_between_runs() -> None:
    entry = STAGES["tune"]["outs"][1]
    options = next(iter(entry.values()))
    assert options["persist"] is True


def _code_deps(stage: str, method: str) -> list[str]:
    body = STAGES[stage].get("do", STAGES[stage])
    deps = _resolve(body["deps"], method=method, dataset="synth", item="synth")
    return [d for d in deps if d.startswith(CODE)]


def _covers(deps: list[str], file: str) -> bool:
    return any(file == d or file.startswith(d.rstrip("/") + "/") for d in deps)


def _runs(stage: str, method: str) -> set[str]:
    """The files the stage runs for one of its items (a method, or every method)."""
    kind = METHOD_STAGES.get(stage)
    methods = () if kind is None else METHOD_MODULES.names() if kind == "all" else (method,)
    return {str(f) for f in stage_files(stage, methods, REPO)}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_list_every_module_the_stage_runs(stage: str) -> None:
    for method in METHOD_MODULES.names() if stage in METHOD_STAGES else ["-"]:
        deps = _code_deps(stage, method)
        missing = sorted(f for f in _runs(stage, method) if not _covers(deps, f))
        assert not missing, f"dvc.yaml: stage {stage} ({method}) does not list {missing}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_list_no_module_the_stage_does_not_run(stage: str) -> None:
    """So that editing one stage's code re-runs that stage only (paper no longer re-runs
    compare and rank; probe and robustness do not invalidate each other)."""
    methods = METHOD_MODULES.names() if stage in METHOD_STAGES else ["-"]
    union = set().union(*(_runs(stage, m) for m in methods))
    for dep in {d for m in methods for d in _code_deps(stage, m)}:
        path = REPO / dep
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        listed = [str(f.relative_to(REPO)) for f in files if f.name != "__init__.py" or f == path]
        unused = [f for f in listed if f.endswith(".py") and f not in union]
        assert listed, f"dvc.yaml: stage {stage}: dep {dep} does not exist"
        assert not unused, f"dvc.yaml: stage {stage} lists {unused}, which it never runs"


def test_stages_share_no_stage_module() -> None:
    for name in STAGES:
        others = [f"harness/stages/{other}.py" for other in STAGES if other != name]
        deps = _code_deps(name, "tfn")
        assert not [d for d in deps if d in others], name
