"""Real parts for tracking tests: kernels driven by papermill/nbclient, SQLite stores, an
`mlflow server` on 127.0.0.1 started and stopped by pid."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "tracking"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """`mlflow server` on a SQLite file; killable and restartable on the same port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        db = self.folder / "server.db"
        if not db.exists() and _TEMPLATE_DB is not None:
            shutil.copy(_TEMPLATE_DB, db)  # skips the server's schema migration (seconds)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        cmd = [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port",
               str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
               "--artifacts-destination", str(self.folder / "artifacts")]
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115
        # Own session: the server and its uvicorn worker are stopped together by the pid.
        self.proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=log, stderr=log,
                                     start_new_session=True)
        deadline = time.monotonic() + 300  # ≈ 6 s alone; minutes on 2 loaded cores
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError((self.folder / "server.log").read_text()[-3000:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.proc = None


_TEMPLATE_DB: Path | None = None


@pytest.fixture(scope="session", autouse=True)
def _server_db_template(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One migrated MLflow database, copied for each server the tests start."""
    global _TEMPLATE_DB
    db = tmp_path_factory.mktemp("template") / "server.db"
    client_for(f"sqlite:///{db}").search_experiments(max_results=1)
    _TEMPLATE_DB = db


@pytest.fixture
def mlflow_server(tmp_path: Path):
    folder = tmp_path / "server"
    folder.mkdir()
    server = MlflowServer(folder)
    server.start()
    yield server
    server.kill(signal.SIGTERM)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the test notebooks; kernels inherit a clean tracking environment."""
    work = tmp_path / "work"
    work.mkdir()
    for notebook in DATA.glob("*.ipynb"):
        shutil.copy(notebook, work / notebook.name)
    for var in ("MLFLOW_TRACKING_URI", "JPY_SESSION_NAME", "JUPYTER_MLOPS_NOTEBOOK",
                "JUPYTER_MLOPS_SPOOL_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # fail fast, not in minutes
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.jupyter_mlops stays in the test
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    return work


def run_papermill(workdir: Path, name: str, **parameters: object):
    """Execute a notebook in a fresh kernel (cwd = workdir); returns the executed notebook.

    Cells tagged `raises-exception` may fail; papermill still raises at the end, so the
    executed notebook is read back from its output file.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source, output = workdir / f"{name}.ipynb", workdir / f"{name}.out.ipynb"
    # What `papermill --inject-paths` does on the command line.
    parameters = {"PAPERMILL_INPUT_PATH": str(source), **parameters}
    try:
        papermill.execute_notebook(
            str(source), str(output), parameters=parameters, cwd=str(workdir),
            kernel_name="python3", progress_bar=False)
    except PapermillExecutionError:
        pass
    return nbformat.read(output, as_version=4)


def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def runs_by_name(client, experiment: str) -> dict:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} missing"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return {run.info.run_name: run for run in runs}


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or str(output.get("evalue", "")))
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def template_db() -> Path:
    """A migrated, empty MLflow database to copy: a fresh one costs seconds of migrations."""
    assert _TEMPLATE_DB is not None
    return _TEMPLATE_DB


class Helpers:
    """The helpers above, handed to tests as a fixture (tests import only jupyter_mlops)."""

    run_papermill = staticmethod(run_papermill)
    client_for = staticmethod(client_for)
    runs_by_name = staticmethod(runs_by_name)
    outputs_text = staticmethod(outputs_text)
    template_db = staticmethod(template_db)
    data = DATA
    venv_bin = VENV_BIN
    free_port = staticmethod(free_port)
    MlflowServer = MlflowServer


@pytest.fixture
def h() -> Helpers:
    return Helpers()
