"""A portable MLflow store: the project folder (mlflow.db and mlartifacts/) can be copied or
moved and the MLflow UI still serves every artifact; logging works with and without a server."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.tracking import (
    DESCRIPTION_TAG,
    Tracker,
    experiment_description,
    local_artifact_root,
    log_text_artifact,
    standard_tags,
)

REPO = Path(__file__).resolve().parents[1]
MLFLOW = Path(sys.executable).parent / "mlflow"
PAYLOAD = "seed,mae\n1,0.888\n"

# a stage process in the project folder: the default tracking URI, relative to the cwd
LOG_ONE_RUN = textwrap.dedent(
    """
    import json
    from harness.tracking import Tracker, log_text_artifact, standard_tags
    tracker = Tracker("sqlite:///mlflow.db")
    with tracker.run("synth", "train/synth/tfn/seed-1", "tfn-seed1",
                     standard_tags("train", "synth", method="tfn", seed=1)) as run:
        log_text_artifact({payload!r}, "tables/scores.csv")
    print(json.dumps({{"run_id": run.info.run_id}}))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cells_naming(database: Path, text: str) -> list[tuple[str, str, str]]:
    """(table, column, the row's name or id) of every cell of the SQLite file holding `text`."""
    found = []
    with closing(sqlite3.connect(database)) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        for (table,) in tables.fetchall():
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                cells = dict(zip(columns, row, strict=True))
                label = str(cells.get("name", cells.get("run_uuid", "?")))
                found += [(table, c, label) for c, v in cells.items() if text in str(v)]
    return found


def _get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


@contextmanager
def mlflow_ui(project: Path) -> Iterator[str]:
    """The real MLflow server started as the docs say (cwd = the project folder, the SQLite
    store, artifacts served from its default ./mlartifacts; one worker, to start faster);
    yields its base URL. The server and its workers are stopped as a process group."""
    port = _free_port()
    command = [str(MLFLOW), "server", "--backend-store-uri", "sqlite:///mlflow.db",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    log_file = (project.parent / "server.log").open("wb")
    server = subprocess.Popen(
        command, cwd=project, env=env, stdout=log_file, stderr=log_file, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(f"{url}/health", timeout=2) == b"OK":
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log_file.flush()
                tail = (project.parent / "server.log").read_text()[-2000:]
                pytest.fail(f"mlflow server did not start at {url}: {tail}")
            time.sleep(0.25)
        yield url
    finally:
        _stop_group(server)
        log_file.close()


def _stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it and the workers it spawned), SIGKILL after 5 s."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        server.wait()


def test_experiments_get_a_served_artifact_location_and_a_description(tmp_path) -> None:
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = tracker.client.get_experiment(tracker.experiment_id("synth"))
    assert experiment.artifact_location == "mlflow-artifacts:/synth"  # no absolute path
    assert experiment.tags[DESCRIPTION_TAG] == experiment_description("synth")
    assert "tags.msabench.stage = 'train'" in experiment.tags[DESCRIPTION_TAG]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI view
    assert local_artifact_root(f"sqlite:///{tmp_path / 'mlflow.db'}") == tmp_path / "mlartifacts"


def test_without_a_server_artifacts_land_in_mlartifacts_beside_the_database(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    with tracker.run("synth", "k", "r", standard_tags("train", "synth")) as run:
        log_text_artifact(PAYLOAD, "tables/scores.csv")
    run_id = run.info.run_id
    stored = tmp_path / "mlartifacts" / "synth" / run_id / "artifacts" / "tables" / "scores.csv"
    assert stored.read_text() == PAYLOAD
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.artifact_uri == f"mlflow-artifacts:/synth/{run_id}/artifacts"
    assert [a.path for a in client.list_artifacts(run_id, "tables")] == ["tables/scores.csv"]


def test_an_old_experiment_with_an_absolute_location_warns_once(tmp_path, caplog) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    old = (tmp_path / "elsewhere" / "mlartifacts" / "synth").as_uri()
    MlflowClient(uri).create_experiment("msabench/synth", artifact_location=old)
    tracker = Tracker(uri)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        tracker.experiment_id("synth")
        tracker.experiment_id("synth")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "msabench/synth" in warnings[0] and old in warnings[0]
    experiment = tracker.client.get_experiment_by_name("msabench/synth")
    assert experiment.tags[DESCRIPTION_TAG] == experiment_description("synth")  # added


@pytest.mark.slow  # the MLflow server takes 10-30 s to start on 2 cores
def test_a_copied_project_folder_serves_its_artifacts_in_the_mlflow_ui(tmp_path) -> None:
    original, moved = tmp_path / "original", tmp_path / "moved"
    original.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", LOG_ONE_RUN.format(payload=PAYLOAD)],
        cwd=original, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    run_id = json.loads(out.stdout.strip().splitlines()[-1])["run_id"]
    shutil.copytree(original, moved)
    shutil.rmtree(original)
    assert _cells_naming(moved / "mlflow.db", str(original)) == [
        ("experiments", "artifact_location", "Default")  # MLflow's own, unused experiment 0
    ]
    with mlflow_ui(moved) as url:
        # the endpoints the UI's artifact view calls
        listing = json.loads(
            _get(f"{url}/ajax-api/2.0/mlflow/artifacts/list?run_uuid={run_id}&path=tables")
        )
        assert [f["path"] for f in listing["files"]] == ["tables/scores.csv"]
        served = _get(f"{url}/get-artifact?path=tables/scores.csv&run_uuid={run_id}")
        assert served == PAYLOAD.encode()
        client = MlflowClient(url)
        local = client.download_artifacts(run_id, "tables/scores.csv", str(tmp_path))
        assert Path(local).read_bytes() == PAYLOAD.encode()
        # a stage logging through the server: its artifacts land in the served folder
        tracker = Tracker(url)
        with tracker.run("synth", "k2", "r2", standard_tags("train", "synth")) as run:
            log_text_artifact("through the server", "note.txt")
        stored = moved / "mlartifacts" / "synth" / run.info.run_id / "artifacts" / "note.txt"
        assert stored.read_text() == "through the server"
