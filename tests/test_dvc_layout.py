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
from harness.reports.headline import headline_dir
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
    compare_outs = [str(paths.tables_dir()), str(paths.figures_dir("synth").parent),
                    str(paths.metrics_file())]  # fmt: skip
    assert _resolve(STAGES["compare"]["outs"]) == compare_outs
    assert _resolve(STAGES["rank"]["outs"]) == [str(paths.ranks_dir()), "results/ranks.json"]
    assert _resolve(STAGES["paper"]["outs"]) == [str(paths.papers_dir())]
    assert _resolve(STAGES["compare"]["metrics"]) == [str(headline_dir())]
    assert str(paths.all_runs()) in STAGES["compare"]["deps"]
    robustness = STAGES["robustness"]["do"]
    assert _resolve(robustness["outs"], item="synth") == [
        str(paths.robustness_dir("synth")), str(paths.robustness_metrics("synth"))
    ]  # fmt: skip
    assert "results/runs/${item}" in robustness["deps"]
    probe = _resolve(STAGES["probe"]["outs"], dataset="synth", method="fine")
    assert probe == [str(f) for f in reversed(paths.probe_files("synth", "fine"))]
    probe = _resolve(STAGES["probe"]["deps"], dataset="synth", method="fine")
    assert str(paths.runs_dir("synth", "fine")) in probe


def _outputs(kind: str) -> dict[str, dict]:
    """{stage: {path: options}} of every stage's `kind` ("outs" or "metrics") entries."""
    found = {}
    for name, stage in STAGES.items():
        entries = stage.get("do", stage).get(kind, [])
        found[name] = {
            next(iter(e)) if isinstance(e, dict) else e: next(iter(e.values()))
            if isinstance(e, dict) else {}
            for e in entries
        }  # fmt: skip
    return found


def test_dvc_metrics_show_reads_only_the_headline_files() -> None:
    """`dvc metrics show` merges every metrics file into one table (one row per file, one
    column per key): only the compare stage's headline folder is a metric, so the table is
    methods x four metrics; the full summaries are plain, git-tracked outputs."""
    metrics = {stage: files for stage, files in _outputs("metrics").items() if files}
    assert metrics == {"compare": {str(headline_dir()): {"cache": False}}}
    summaries = {
        "compare": str(paths.metrics_file()),
        "rank": "results/ranks.json",
        "robustness": "results/robustness/${item}.json",
        "probe": "results/probes/${item.dataset}/${item.method}.json",
    }
    outs = _outputs("outs")
    for stage, path in summaries.items():
        assert outs[stage][path] == {"cache": False}, stage


def test_dvc_plots_are_images_that_stages_write() -> None:
    """The default `dvc plots show` page embeds images only: no Vega script, no network."""
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    assert plots and all(isinstance(p, str) and p.endswith(".png") for p in plots)
    written = [*_resolve(STAGES["compare"]["outs"]), *_resolve(
        STAGES["robustness"]["do"]["outs"], item="synth")]  # fmt: skip
    for plot in plots:
        assert any(plot.startswith(out + "/") for out in written), plot


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
