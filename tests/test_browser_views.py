"""What a researcher sees in a real headless browser (Debian's chromium): the MLflow UI's run
page served from a project folder, and `dvc plots show`'s page opened offline. Skipped, saying
why, where no chromium is installed; slow (the MLflow server takes 10-30 s to start here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from test_mlflow_portable import mlflow_ui

from harness.reports.comparison_figures import seed_points_figure
from harness.reports.figures import save_figure

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH (Debian: apt-get install "
        "chromium); the browser checks need a real browser",
    ),  # fmt: skip
]

LOG_A_TRAINING_RUN = textwrap.dedent(
    """
    import json
    from harness.tracking import (Tracker, log_final, log_text_artifact, set_description,
                                  standard_tags)
    tracker = Tracker("sqlite:///mlflow.db")
    with tracker.run("synth", "train/synth/tfn/seed-1", "tfn-seed1",
                     standard_tags("train", "synth", method="tfn", seed=1)) as run:
        log_final({"mae": 0.8881, "corr": 0.7712}, prefix="test_")
        set_description("Seed 1 of **tfn** on synth: the headline of this run")
        log_text_artifact("seed,mae\\n1,0.8881\\n", "tables/scores.csv")
    print(json.dumps({"run_id": run.info.run_id,
                      "experiment_id": run.info.experiment_id}))
    """
)


def _chromium(tmp_path: Path, *args: str) -> str:
    """Run headless chromium with `args`; its stdout (the DOM for --dump-dom)."""
    profile = tmp_path / "chromium-profile"
    command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_the_mlflow_run_page_shows_the_runs_name_metrics_and_description(tmp_path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", LOG_A_TRAINING_RUN], cwd=project, capture_output=True,
        text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    ids = json.loads(out.stdout.strip().splitlines()[-1])
    with mlflow_ui(project) as url:
        page = f"{url}/#/experiments/{ids['experiment_id']}/runs/{ids['run_id']}"
        dom = _chromium(tmp_path, "--virtual-time-budget=30000", "--dump-dom", page)
    assert "tfn-seed1" in dom  # the run page rendered (the UI is a script-built page)
    assert "test_mae" in dom and "0.888" in dom
    assert "the headline of this run" in dom
    assert "msabench.stage" in dom


def _white_fraction(png: Path) -> float:
    pixels = matplotlib.image.imread(png)[..., :3]
    return float(np.mean(np.all(pixels > 0.97, axis=-1)))


def test_dvc_plots_page_shows_its_figures_with_no_network(tmp_path) -> None:
    """`dvc plots show` on the project's plot kind (images written by the stages) gives a page
    that needs nothing from the network, and the browser draws the figure on it."""
    project = tmp_path / "plots-project"
    figure_dir = project / "results" / "figures" / "synth"
    figure_dir.mkdir(parents=True)
    frame = pd.DataFrame(
        [{"method": m, "metric": "mae", "seeds": [1, 2, 3], "values": v, "mean": float(np.mean(v)),
          "ci_low": min(v), "ci_high": max(v), "is_best": m == "tfn", "higher_is_better": False}
         for m, v in (("tfn", [0.90, 0.91, 0.89]), ("lmf", [1.0, 1.1, 1.6]))]
    )  # fmt: skip
    save_figure(seed_points_figure(frame, ("mae",), "synth: test scores per seed"),
                figure_dir / "seed-scores")  # fmt: skip
    (project / "dvc.yaml").write_text("plots:\n  - results/figures/synth/seed-scores.png\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=project, check=True, env=env)
    subprocess.run([*dvc, "plots", "show", "-o", "shown"], cwd=project, check=True, env=env,
                   capture_output=True)  # fmt: skip
    html = (project / "shown" / "index.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    page = project / "shown" / "index.html"
    drawn = _screenshot(tmp_path, page, "drawn")
    for image in (project / "shown" / "static").glob("*.png"):
        image.unlink()  # the same page with its figure missing: what a broken link shows
    broken = _screenshot(tmp_path, page, "broken")
    inked, inked_broken = 1 - _white_fraction(drawn), 1 - _white_fraction(broken)
    assert inked > 0.01 and inked > 3 * inked_broken, (inked, inked_broken)


def _screenshot(tmp_path: Path, page: Path, name: str) -> Path:
    shot = tmp_path / f"{name}.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri())
    return shot
