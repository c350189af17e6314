"""With each shipped notebook executed as a user does, GET /mlops/api/runs?notebook=<it> lists
its runs wherever they were logged: 01's session and cell runs in `quickstart`, 02's pipeline
runs from `jupyter-mlops run` (a relative path) and from Run locally in `02-tagged-pipeline`,
03's sweeps in `03-sweep` and `03-sweep-pipeline`. The notebooks are copied unchanged into the
server's root; runs go to mlflow.db beside them, the default store."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_mlops.steps.mlflow_vocabulary import STEP_METRICS

from .conftest import TOKEN, fetch_json

SHIPPED = Path(__file__).resolve().parents[2] / "notebooks"
QUICKSTART, PIPELINE, SWEEP = ("01_tracking_quickstart.ipynb", "02_tagged_pipeline.ipynb",
                               "03_sweep_and_compare.ipynb")
STEPS = {"load", "features", "train-forest", "train-logreg", "evaluate"}
POLLS = 900  # of 0.2 s: a bound on waiting for runs handed to the background sender
SMALL = {"n_customers": 600, "n_estimators": 40}  # 02's data, small: the runs are what counts

# A notebook executed in a fixture runs within its first test: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shipped")
    for notebook in SHIPPED.glob("*.ipynb"):
        shutil.copy(notebook, folder / notebook.name)
    return folder


@pytest.fixture
def jp_root_dir(root: Path) -> Path:
    return root


@pytest.fixture
def jp_server_config(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """No tracking URI: the server reads mlflow.db in the notebook's folder, as kernels write."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
            "IdentityProvider": {"token": TOKEN},
            "MlopsExtension": {"min_refresh_seconds": 0.0}}


def _execute(root: Path, out: Path, name: str, **parameters: object) -> None:
    """Top to bottom in a kernel started as Jupyter Server starts one: in the notebook's folder,
    JPY_SESSION_NAME naming it."""
    import papermill

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("JPY_SESSION_NAME", str(root / name))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        papermill.execute_notebook(str(root / name), str(out / name), parameters=parameters,
                                   cwd=str(root), kernel_name="python3", progress_bar=False,
                                   execution_timeout=600)


@pytest.fixture(scope="module")
def quickstart(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _execute(root, tmp_path_factory.mktemp("executed"), QUICKSTART, n_samples=600)
    return root


@pytest.fixture(scope="module")
def sweeps(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _execute(root, tmp_path_factory.mktemp("executed"), SWEEP, n_customers=400)
    return root


async def _runs(jp_fetch, notebook: str, **params: object) -> dict:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "runs",
                                  params={"notebook": notebook, **params})
    assert code == 200, body
    return body


async def _wait_runs(jp_fetch, notebook: str, done: Callable[[dict], bool],
                     **params: object) -> dict:
    """The notebook's runs once `done(body)`: records may still be on their way to the store."""
    for _ in range(POLLS):
        body = await _runs(jp_fetch, notebook, **params)
        if done(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"{notebook}: the runs listed never became complete: "
                         f"{sorted((r['run_name'], r['status']) for r in body['runs'])}")


def _finished(body: dict) -> bool:
    return all(run["status"] in ("FINISHED", "FAILED") for run in body["runs"])


def _names(body: dict) -> list[str]:
    return sorted(run["run_name"] for run in body["runs"])


def _experiments(body: dict) -> list[tuple[str, int]]:
    return [(e["name"], e["runs"]) for e in body["experiments"]]


async def test_01_lists_the_session_and_cell_runs(jp_fetch, quickstart) -> None:
    body = await _wait_runs(jp_fetch, QUICKSTART, lambda b: b["total"] == 4 and _finished(b))
    assert _names(body) == ["01_tracking_quickstart", "boosting", "forest", "logreg"]
    assert _experiments(body) == [("quickstart", 4)]  # `%mlops start --experiment quickstart`
    assert {run["status"] for run in body["runs"]} == {"FINISHED"}


async def test_02_lists_pipeline_runs_of_the_cli_and_of_run_locally(jp_fetch, root) -> None:
    params = [arg for name, value in SMALL.items() for arg in ("-p", name, str(value))]
    cli = Path(sys.executable).parent / "jupyter-mlops"
    done = subprocess.run([str(cli), "run", PIPELINE, *params], cwd=root, capture_output=True,
                          text=True, timeout=900, check=False)  # a relative path, as typed
    assert done.returncode == 0, done.stdout + done.stderr
    ours = {"experiment": "02-tagged-pipeline"}  # 03's sweeps (other experiments) run 02 too

    def complete(pipelines: int) -> Callable[[dict], bool]:
        return lambda b: b["total"] == pipelines * (1 + len(STEPS)) and _finished(b)

    body = await _wait_runs(jp_fetch, PIPELINE, complete(1), **ours)
    assert {r["run_name"] for r in body["runs"]} - STEPS == {
        r["run_name"] for r in body["runs"] if r["tags"]["mlops.kind"] == "pipeline"}
    assert ("02-tagged-pipeline", 6) in _experiments(body)
    await _user_metrics_listed_bookkeeping_in_details(jp_fetch, body["runs"])

    code, job = await fetch_json(jp_fetch, "mlops", "api", "local-runs", method="POST",
                                 body=json.dumps({"path": PIPELINE, "parameters": SMALL}))
    assert code == 201, job
    body = await _wait_runs(jp_fetch, PIPELINE, complete(2), **ours)
    assert sum(r["tags"]["mlops.kind"] == "pipeline" for r in body["runs"]) == 2
    assert {r["status"] for r in body["runs"]} == {"FINISHED"}


async def _user_metrics_listed_bookkeeping_in_details(jp_fetch, runs: list[dict]) -> None:  # noqa: ANN001
    """The list's metrics are the user's (the panel's columns): the pipeline's from its
    `metrics` cell, none of the runner's bookkeeping; a step's details have that too."""
    pipeline = next(r for r in runs if r["tags"]["mlops.kind"] == "pipeline")
    assert set(pipeline["metrics"]) == {"accuracy", "f1"}
    assert not any(set(STEP_METRICS) & set(r["metrics"]) for r in runs)
    step = next(r for r in runs if r["run_name"] == "load")
    code, details = await fetch_json(jp_fetch, "mlops", "api", "runs", step["run_id"])
    assert code == 200 and set(STEP_METRICS) <= set(details["metrics"])
    assert (details["kind"], details["error"]) == ("pipeline-step", None)


async def test_03_lists_its_sweeps_in_their_experiments(jp_fetch, sweeps) -> None:
    body = await _wait_runs(jp_fetch, SWEEP, lambda b: b["total"] == 6 and _finished(b))
    assert _experiments(body) == [("03-sweep", 4), ("03-sweep-pipeline", 2)]
    picked = await _runs(jp_fetch, SWEEP, experiment="03-sweep")
    assert picked["total"] == 4 and {r["status"] for r in picked["runs"]} == {"FINISHED"}
    assert {r["params"]["max_depth"] for r in picked["runs"]} == {"3", "8"}
    failing = await _runs(jp_fetch, SWEEP, experiment="03-sweep-pipeline")  # one on purpose
    errors = [r["tags"].get("mlops.error", "")[:300] for r in failing["runs"]]
    assert sorted(r["status"] for r in failing["runs"]) == ["FAILED", "FINISHED"], errors
    failed = next(r for r in failing["runs"] if r["status"] == "FAILED")
    code, details = await fetch_json(jp_fetch, "mlops", "api", "runs", failed["run_id"])
    assert code == 200 and details["kind"] == "sweep"  # the panel shows the error by the status
    assert "test_size" in details["error"] and details["error"] == details["tags"]["mlops.error"]

    # The sweeps ran 02's code: 02's panel lists them too, in their own experiments.
    swept = await _runs(jp_fetch, PIPELINE, experiment="03-sweep")
    assert {r["run_id"] for r in swept["runs"]} == {r["run_id"] for r in picked["runs"]}
