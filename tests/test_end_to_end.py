"""`dvc repro` end to end in a temporary copy of the repository, with a tiny budget."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _dvc(*args: str, cwd: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _copy_repository(target: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for path in ("dvc.lock",):  # start from a clean pipeline state
        (target / path).unlink(missing_ok=True)


def _tiny_params(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    raw["seeds"] = [1111, 1112]
    # one torch thread per process: beside the suite's other xdist worker, two oversubscribe the
    # 2 cores (conftest.one_torch_thread; the stages run as their own processes)
    raw["num_threads"] = 1
    raw["datasets"]["synth"]["synthetic"].update(n_train=96, n_valid=48, n_test=48)
    raw["tune"].update(n_trials=2, max_epochs=2, patience=2)
    raw["train"].update(max_epochs=2, patience=2)
    raw["benchmark"]["methods"] = ["lf_dnn", "tfn", "fine"]  # fine: the probe stage runs too
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _commit(cwd: Path, message: str) -> None:
    _run(["git", "add", "-A"], cwd)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], cwd)


def _mlflow_runs(project: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("msabench/synth")
    return client.search_runs([experiment.experiment_id], max_results=1000)


@pytest.mark.slow
def test_dvc_repro_end_to_end(tmp_path: Path) -> None:
    project = tmp_path / "repo"
    project.mkdir()
    _copy_repository(project)
    _tiny_params(project / "params.yaml")
    _run(["git", "init", "-q"], project)
    _commit(project, "copy")

    _dvc("repro", cwd=project)
    table = (project / "results" / "tables" / "synth.md").read_text()
    assert "lf_dnn" in table and "tfn" in table and "fine" in table and "p-values" in table
    csv = (project / "results" / "tables" / "synth.csv").read_text().splitlines()
    assert len(csv) == 1 + 3 * 8 and all(",2,2," in line for line in csv[1:])
    probe = json.loads((project / "results" / "probes" / "synth" / "fine.json").read_text())
    assert "shared_text->shared" in probe
    robustness = project / "results" / "robustness" / "synth"
    records = json.loads((robustness / "records.json").read_text())
    assert records["schema_version"] == 2
    assert len(records["records"]) == 3 * 2 * 7 * 10  # methods x seeds x conditions x rates
    assert (robustness / "curves-intra.png").is_file() and (
        robustness / "curves-intra.pdf"
    ).is_file()
    areas = json.loads((project / "results" / "robustness" / "synth.json").read_text())
    assert set(areas) == {"intra", "drop-text", "drop-audio", "drop-vision", "drop-text-audio",
                          "drop-text-vision", "drop-audio-vision"}  # fmt: skip
    assert set(areas["intra"]) == {"lf_dnn", "tfn", "fine"}
    runs = _mlflow_runs(project)
    assert len([r for r in runs if r.data.tags.get("msabench.stage") == "robustness"]) == 6 + 1
    train = [r for r in runs if r.data.tags.get("msabench.stage") == "train"]
    trials = [r for r in runs if "msabench.trial" in r.data.tags]
    assert len(train) == 6 and len(trials) == 6
    for run in train:  # every named loss term has a per-epoch curve
        method = run.data.tags["msabench.method"]
        expected = {"task"} | (
            {"up", "cl", "aux", "sha", "uni", "recon", "str", "utr"} if method == "fine" else set()
        )
        assert {f"train_{t}" for t in expected} <= set(run.data.metrics), method
    assert all("mlflow.parentRunId" in r.data.tags for r in trials)

    # issue 7's reports: figures, ranks (one dataset: explained, no diagram), paper tables
    for name in ("seed-scores.png", "seed-scores.pdf", "tuning-history.png", "tuning-best.csv"):
        assert (project / "results" / "figures" / "synth" / name).is_file(), name
    assert "at least 2" in (project / "results" / "ranks" / "ranks.md").read_text()
    papers = project / "results" / "papers"  # no paper dataset is run: only the index
    assert [p.name for p in papers.iterdir()] == ["README.md"]
    index = (papers / "README.md").read_text()
    assert "0 of 11 written" in index and "add `mosi_bclstm` to `benchmark.datasets`" in index
    compare_runs = [r for r in runs if r.data.tags.get("msabench.stage") == "compare"]
    assert len(compare_runs) == 1 and "fine/mae" in compare_runs[0].data.metrics
    shown = _dvc("metrics", "show", "--json", cwd=project)
    assert "results/metrics/synth/tfn.json" in shown and "results/ranks.json" not in shown
    assert max(len(line) for line in _dvc("metrics", "show", cwd=project).splitlines()) < 120
    _dvc("plots", "show", "-o", str(tmp_path / "plots"), cwd=project)
    html = (tmp_path / "plots" / "index.html").read_text()
    assert "seed-scores.png" in html and "tuning-history.png" in html
    assert "http" not in html  # offline: no CDN script

    # nothing changed: a quick no-op that adds no MLflow runs
    out = _dvc("repro", cwd=project)
    assert "Data and pipelines are up to date" in out
    assert len(_mlflow_runs(project)) == len(runs)

    # editing one method's parameter re-runs only that method's stages and the comparison
    _commit(project, "after first repro")
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["methods"]["tfn"]["hparams"] = {"text_hidden": 16}
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    out = _dvc("repro", cwd=project)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    expected = {"tune@synth-tfn", "train@synth-tfn", "compare", "robustness@synth", "rank", "paper"}
    assert ran == expected, out
    diff = _dvc("metrics", "diff", "--json", cwd=project)  # the edit, seen against HEAD
    assert '"results/metrics/synth/tfn.json"' in diff and '"MAE"' in diff
    assert "results/metrics/synth/lmf.json" not in diff  # only the edited method moved

    # editing code invalidates exactly the stages that run it (dvc.yaml deps = the code each
    # stage runs): the paper stage alone, the probe alone (not robustness), and so on
    for module, expected in (
        ("harness/stages/paper.py", {"paper"}),
        ("harness/stages/probe.py", {"probe@synth-fine"}),
        ("harness/reports/cd_diagram.py", {"compare", "rank"}),
        ("methods/tfn.py", {"tune@synth-tfn", "train@synth-tfn", "robustness@synth"}),
        ("harness/tracking.py", set()),
    ):
        path = project / module
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        status = json.loads(_dvc("status", "--json", cwd=project).strip().splitlines()[-1])
        stages = {name for name in status if not name.endswith(".dvc")}  # datasets.dvc: no data
        assert stages == expected, (module, sorted(stages))
        path.write_text(original)

    # forcing a finished stage again replaces its MLflow runs instead of duplicating them
    _dvc("repro", "-f", "-s", "train@synth-lf_dnn", cwd=project)
    train = [r for r in _mlflow_runs(project) if r.data.tags.get("msabench.stage") == "train"]
    assert len(train) == 6

    # a profile runs as a DVC experiment (`dvc exp run -S ... --temp`): the workspace's
    # params.yaml is untouched and `dvc exp show` holds the experiment with its params
    (project / "profiles" / "quick.yaml").write_text(
        "description: one more trial\nset_params:\n  - tune.n_trials=3\n", encoding="utf-8"
    )
    _commit(project, "a profile")
    before = (project / "params.yaml").read_text()
    command = ["profile", "quick", "--run", "--", "--temp", "-n", "quick"]
    _run([str(BIN / "msabench"), *command], project)
    assert (project / "params.yaml").read_text() == before
    shown = _dvc("exp", "show", "--json", cwd=project)
    assert '"quick"' in shown and re.search(r'"n_trials":\s*3\b', shown)


BUNDLE = REPO.parent / "shared" / "data" / "mosi-bclstm"


@pytest.mark.slow
@pytest.mark.skipif(not (BUNDLE / "label.csv").is_file(), reason="../shared MOSI bundle absent")
def test_dvc_repro_on_real_mosi_by_url_and_a_dropped_in_mmsa_pickle(tmp_path: Path) -> None:
    """mosi_bclstm declared by URL (served on 127.0.0.1) and an MMSA-layout pickle put under
    datasets/ both run every stage of `dvc repro`."""
    from loopback_http import LoopbackServer
    from test_formats_pickles import mmsa_payload, write_pickle

    project = tmp_path / "repo"
    project.mkdir()
    _copy_repository(project)
    _tiny_params(project / "params.yaml")
    write_pickle(project / "datasets" / "mmsa_tiny" / "unaligned_50.pkl", mmsa_payload())
    with LoopbackServer(BUNDLE) as server:
        raw = yaml.safe_load((project / "params.yaml").read_text())
        for entry in raw["datasets"]["mosi_bclstm"]["files"]:
            entry["url"] = f"{server.url}/{entry['path']}"
        raw["datasets"]["mmsa_tiny"] = {
            "source": "file",
            "format": "mmsa",
            "kind": "mosi",
            "path": "mmsa_tiny",
        }
        raw["benchmark"] = {"datasets": ["mosi_bclstm", "mmsa_tiny"], "methods": ["lf_dnn"]}
        raw["probe"] = {"datasets": [], "methods": []}  # no synthetic latents here
        raw["seeds"] = [1111]
        (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        _run(["git", "init", "-q"], project)
        _commit(project, "copy")
        out = _dvc("repro", cwd=project)
    for stage in (
        "fetch@mosi_bclstm",
        "fetch@mmsa_tiny",
        "train@mosi_bclstm-lf_dnn",
        "train@mmsa_tiny-lf_dnn",
        "compare",
    ):
        assert f"Running stage '{stage}'" in out
    from harness.records import load_records

    records = {r.dataset: r for r in load_records(project / "results" / "runs")}
    assert set(records) == {"mosi_bclstm", "mmsa_tiny"}
    assert 0.6 < records["mosi_bclstm"].metrics["acc2_non0"] < 0.9  # real features, real signal
    assert (project / "datasets" / "mosi_bclstm" / "label.csv").is_file()  # raw download kept
    assert (project / "results" / "tables" / "mosi_bclstm.md").is_file()
