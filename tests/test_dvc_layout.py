"""dvc.yaml and harness/paths.py must name the same files; every stage calls the CLI and lists
only the params it reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness import paths

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


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


def test_every_stage_calls_the_cli_and_lists_its_code() -> None:
    for name, stage in STAGES.items():
        body = stage.get("do", stage)
        assert body["cmd"].startswith("msabench "), name
        assert any(dep.startswith(("harness/", "methods/")) for dep in body["deps"]), name
        for dep in body["deps"]:
            local = dep.split("${")[0]
            if local.startswith(("harness/", "methods/")) and "${" not in dep:
                assert (REPO / dep).exists(), f"{name}: dep {dep} does not exist"


def test_method_stages_read_only_their_own_method_params() -> None:
    for name in ("tune", "train"):
        method_params = [p for p in STAGES[name]["params"] if str(p).startswith("methods")]
        assert method_params == ["methods.${item.method}"], name


def test_study_storage_persists_between_runs() -> None:
    entry = STAGES["tune"]["outs"][1]
    options = next(iter(entry.values()))
    assert options["persist"] is True


# Modules a tune or train stage imports that cannot change its numbers: configuration, paths,
# errors, logging to MLflow, provenance, atomic writes, checkpoint files, record types, the
# store's manifest and validation, and the fetch-only readers (a lazy import in pipeline.py).
NUMERICALLY_NEUTRAL = {
    "harness.checkpoints",
    "harness.config",
    "harness.data.sources",
    "harness.data.split_arrays",
    "harness.data.store",
    "harness.errors",
    "harness.io_utils",
    "harness.paths",
    "harness.provenance",
    "harness.records",
    "harness.registry",
    "harness.tracking",
}
# what each stage runs: (entry modules, imported modules it never calls)
STAGE_CODE = {
    "tune": (("harness.pipeline", "harness.tuning"), {"harness.seed_runs", "harness.workers"}),
    "train": (("harness.pipeline",), {"harness.tuning", "harness.study_storage"}),
}


def _harness_imports(module: str) -> set[str]:
    """harness.* modules imported anywhere in `module`'s source (function-level imports too)."""
    import ast

    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("harness"))
    return {m for m in found if (REPO / (m.replace(".", "/") + ".py")).is_file()}


def _reached(entries: tuple[str, ...], skipped: set[str]) -> set[str]:
    reached, frontier = set(), list(entries)
    while frontier:
        module = frontier.pop()
        if module in reached or module in skipped:
            continue
        reached.add(module)
        frontier.extend(_harness_imports(module))
    return reached


def test_tune_and_train_stages_list_every_module_that_can_change_their_numbers() -> None:
    for stage, (entries, unused) in STAGE_CODE.items():
        deps = [d for d in STAGES[stage]["deps"] if d.startswith("harness")]
        for module in sorted(_reached(entries, unused | NUMERICALLY_NEUTRAL)):
            path = module.replace(".", "/") + ".py"
            covered = any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)
            assert covered, f"dvc.yaml: stage {stage} does not list {path} in deps"
