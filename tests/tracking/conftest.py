"""Real parts for tracking tests: kernels driven by papermill/nbclient, SQLite stores, an
`mlflow server` on 127.0.0.1 started and stopped by pid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pg_server import VENV_BIN, MlflowServer, free_port

DATA = Path(__file__).resolve().parents[1] / "data" / "tracking"


def sqlite_server(folder: Path, port: int | None = None) -> MlflowServer:
    """`mlflow server` on a SQLite file in `folder`; killable and restartable on the same port."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "server.db"
    if not db.exists():
        shutil.copy(template_db(), db)  # skips the server's schema migration (seconds)
    return MlflowServer(f"sqlite:///{db}", folder, port)


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
    server = sqlite_server(tmp_path / "server")
    server.start()
    yield server
    server.stop()


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
    sqlite_server = staticmethod(sqlite_server)


@pytest.fixture
def h() -> Helpers:
    return Helpers()
