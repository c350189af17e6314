"""Everything we write and read, through a team's `mlflow server` on PostgreSQL with proxied
artifacts: a real kernel's tracked cells (the card, the stored runs, their artifacts downloaded
through the proxy), its models registered, promoted and loaded back by alias, a pipeline run
by `jupyter-mlops run`, the runs browser in the kernel and the JupyterLab panel's REST API.
One server and one kernel for the module."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernel_driver import Kernel, Said
from mlflow import MlflowClient
from nbformat.v4 import new_code_cell, new_notebook
from pg_server import MlflowServer

# The panel's REST API is served by a real Jupyter Server (pytest-jupyter's fixtures).
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403

from jupyter_mlops.steps import mlflow_vocabulary as vocab

CLI = Path(sys.executable).parent / "jupyter-mlops"
REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "Churn_Team.ipynb"
EXPERIMENT = "Churn_Team"
STORE_DEADLINE = 240.0  # seconds for a detached sender to store a pipeline on a loaded machine
FOREST_CELL = """\
n_estimators, max_depth = 30, 4
forest = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=0)
forest.fit(X_train, y_train)
accuracy = forest.score(X_test, y_test)
print(f"forest accuracy {accuracy:.3f}")"""
PIPELINE_CELL = """\
scaled = Pipeline([("scale", StandardScaler()), ("logit", LogisticRegression())])
scaled.fit(X_train, y_train)
accuracy = scaled.score(X_test, y_test)"""
CELLS = [
    f"%load_ext jupyter_mlops\n%mlops start --experiment {EXPERIMENT}",
    "from sklearn.datasets import make_classification\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import Pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "X, y = make_classification(n_samples=300, n_features=6, random_state=0)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "%%mlops track Baseline_Forest --params n_estimators,max_depth --metrics auto "
    "--model forest\n" + FOREST_CELL,
    "%%mlops track Scaled_Logit --metrics auto --model scaled\n" + PIPELINE_CELL,
]


@dataclass
class Session:
    """The tracked notebook session on the team server."""

    server: MlflowServer
    folder: Path
    env: dict[str, str]
    kernel: Kernel
    said: list[Said]
    ended: Said

    @property
    def client(self) -> Any:
        return MlflowClient(tracking_uri=self.server.uri, registry_uri=self.server.uri)

    def runs(self, experiment: str = EXPERIMENT) -> dict[str, Any]:
        found = self.client.get_experiment_by_name(experiment)
        assert found is not None, f"experiment {experiment!r} missing"
        return {r.info.run_name: r for r in self.client.search_runs([found.experiment_id])}

    def cli(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CLI), *args], cwd=cwd or self.folder, env=self.env,
                              capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def session(team_server: MlflowServer,
            tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("Churn_Team_Project")
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in CELLS]), folder / NOTEBOOK)
    (folder / "home").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JPY_", "JUPYTER_MLOPS", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI=team_server.uri, HOME=str(folder / "home"),
               JUPYTER_MLOPS_NOTEBOOK=str(folder / NOTEBOOK),
               MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true", PYTHONPATH=str(REPO))
    kernel = Kernel(folder, env)
    try:
        said = [kernel.ok(cell) for cell in CELLS]
        ended = kernel.ok("%mlops end")
        yield Session(team_server, folder, env, kernel, said, ended)
    finally:
        kernel.stop()


def _download(client: Any, run_id: str, path: str, into: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(into))).read_text()


def test_tracked_cells_are_stored_and_their_artifacts_come_through_the_proxy(session,
                                                                             tmp_path):
    assert "all records stored" in session.ended.stdout, session.ended
    card = html.unescape(session.kernel.shown(session.said[2]))  # redrawn once stored
    assert 'data-status="FINISHED"' in card, card
    assert "n_estimators=<b>30</b>" in card and "accuracy=<b>" in card
    assert "model:</span> <b>forest</b> <span" in card and "→ stored, not registered" in card, card

    runs = session.runs()
    assert set(runs) == {"Churn_Team", "Baseline_Forest", "Scaled_Logit"}
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    forest = runs["Baseline_Forest"]
    assert forest.data.params == {"n_estimators": "30", "max_depth": "4"}
    assert 0.5 < forest.data.metrics["accuracy"] <= 1.0
    assert forest.data.tags["mlflow.parentRunId"] == runs["Churn_Team"].info.run_id
    assert forest.data.tags[vocab.NOTEBOOK_TAG] == str(session.folder / NOTEBOOK)
    # The artifacts live behind the server's proxy, not in a folder this process can see.
    assert forest.info.artifact_uri.startswith("mlflow-artifacts:/")
    client = session.client
    assert _download(client, forest.info.run_id, vocab.CELL_SOURCE_ARTIFACT,
                     tmp_path).rstrip() == FOREST_CELL
    assert "forest accuracy" in _download(client, forest.info.run_id, vocab.STDOUT_ARTIFACT,
                                          tmp_path)
    experiment = forest.info.experiment_id
    models = client.search_logged_models(experiment_ids=[experiment])
    assert {(m.name, str(m.status)) for m in models} == {
        ("forest", "READY"), ("scaled", "READY")}  # named by their variables
    assert all(m.artifact_location.startswith("mlflow-artifacts:/") for m in models)


def test_models_registered_promoted_and_loaded_by_alias_through_the_proxy(session, tmp_path,
                                                                          monkeypatch):
    import mlflow

    kernel = session.kernel
    forest_run = session.runs()["Baseline_Forest"].info.run_id
    said = kernel.ok(f"%mlops register {forest_run} --name Churn_Team_Forest --alias challenger")
    assert f"registered Churn_Team_Forest v1 @challenger from run {forest_run}" in said.stdout
    said = kernel.ok("%mlops register scaled --name Churn_Team_Pipeline --alias challenger")
    assert "registered Churn_Team_Pipeline v1 @challenger" in said.stdout, said

    done = session.cli("models", "promote", "Churn_Team_Forest", "--alias", "challenger",
                       "--to", "champion", "--if", "accuracy>=0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Churn_Team_Forest v1 is now @champion (was nobody)" in done.stdout
    done = session.cli("models", "show", "Churn_Team_Forest", "--alias", "champion")
    assert done.returncode == 0, done.stderr
    assert NOTEBOOK in done.stdout and forest_run in done.stdout
    assert "@champion" in kernel.ok("%mlops models Churn_Team_Forest").html
    # The champion's reference profile (stored beside it) is read back through the proxy.
    shown = kernel.ok("%mlops drift X_test --model Churn_Team_Forest@champion")
    assert "X_test against Churn_Team_Forest@champion: " in shown.stdout, shown
    [monitor] = session.client.search_runs(
        [session.runs()["Baseline_Forest"].info.experiment_id],
        f"tags.`{vocab.KIND_TAG}` = '{vocab.KIND_MONITOR}'")
    assert monitor.data.tags[vocab.MONITOR_VERSION_TAG] == "1"
    assert "Drift against Churn_Team_Forest@champion" in _download(
        session.client, monitor.info.run_id, vocab.DRIFT_REPORT_ARTIFACT, tmp_path)

    expected = json.loads(kernel.ok("import json\nprint(json.dumps({'forest': "
                                    "forest.predict(X_test).tolist(), 'scaled': "
                                    "scaled.predict(X_test).tolist()}))").stdout)
    X_test = json.loads(kernel.ok("print(json.dumps(X_test.tolist()))").stdout)
    # This process has no access to the server's artifact folder: models come by HTTP.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    monkeypatch.chdir(session.folder.parent)
    # mlflow's setters export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI for child processes and
    # set_registry_uri(None) leaves the latter: monkeypatch owns both, so later tests' kernels
    # do not register their models with this (soon stopped) server.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", session.server.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", session.server.uri)
    mlflow.set_tracking_uri(session.server.uri)
    mlflow.set_registry_uri(session.server.uri)
    try:
        champion = mlflow.pyfunc.load_model("models:/Churn_Team_Forest@champion")
        pipeline = mlflow.sklearn.load_model("models:/Churn_Team_Pipeline@challenger")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    import numpy as np

    assert champion.predict(np.array(X_test)).tolist() == expected["forest"]
    assert pipeline.predict(np.array(X_test)).tolist() == expected["scaled"]
    version = session.client.get_model_version("Churn_Team_Forest", "1")
    assert version.source.startswith("models:/") and version.status == "READY"


def _stored_pipeline(client: Any, run_folder_id: str) -> tuple[Any, list[Any]] | None:
    """The pipeline's parent run and its step runs once all are FINISHED; None before."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(experiments, f"tags.`{vocab.PIPELINE_RUN_TAG}` = "
                                              f"'{run_folder_id}' and tags.`{vocab.KIND_TAG}` = "
                                              f"'{vocab.KIND_PIPELINE}'")
    if not parents or parents[0].info.status != "FINISHED":
        return None
    children = client.search_runs([parents[0].info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    if len(children) < 2 or any(c.info.status != "FINISHED" for c in children):
        return None
    return parents[0], children


def test_a_pipeline_run_is_stored_and_its_model_registered_through_the_server(session):
    folder = session.folder / "pipeline"
    folder.mkdir()
    shutil.copy(REPO / "tests" / "data" / "runner" / "Train_Forest.ipynb", folder)
    done = session.cli("run", "Train_Forest.ipynb", "-p", "n_estimators", "10", "--jobs", "1",
                       cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"view it: open {session.server.uri}" in done.stdout
    assert "registered Forest_From_Pipeline v1 as @challenger" in done.stderr  # the progress
    run_folder_id = re.search(r"run folder: .*/runs/(\S+)", done.stdout).group(1)

    client = session.client
    deadline = time.monotonic() + STORE_DEADLINE
    stored = None
    while stored is None and time.monotonic() < deadline:  # the sender goes on after the CLI
        stored = _stored_pipeline(client, run_folder_id)
        time.sleep(0.5)
    assert stored is not None, f"the pipeline never arrived at {session.server.uri}"
    parent, children = stored
    assert {c.data.tags[vocab.STEP_TAG] for c in children} == {"load", "fit"}
    assert parent.data.params["n_estimators"] == "10" and parent.data.metrics["accuracy"] > 0.5
    version = client.get_model_version_by_alias("Forest_From_Pipeline", "challenger")
    fit = next(c for c in children if c.data.tags[vocab.STEP_TAG] == "fit")
    assert version.run_id == fit.info.run_id


def test_the_runs_browser_in_the_kernel_lists_the_sessions_runs(session):
    said = session.kernel.ok("import json\nimport jupyter_mlops\n"
                             "browser = jupyter_mlops.runs().wait()\n"
                             "print(json.dumps({r.name: r.status for r in browser.rows}))\n"
                             "browser.select([r.run_id for r in browser.rows "
                             "if r.name in ('Baseline_Forest', 'Scaled_Logit')])\n"
                             "print(browser.comparison.value)")
    listed, comparison = said.stdout.split("\n", 1)
    assert {"Churn_Team": "FINISHED", "Baseline_Forest": "FINISHED",
            "Scaled_Logit": "FINISHED"}.items() <= json.loads(listed).items()
    assert "Baseline_Forest" in comparison and "accuracy" in comparison


@pytest.fixture  # type: ignore[no-redef]
def jp_root_dir(session) -> Path:
    return session.folder


@pytest.fixture  # type: ignore[no-redef]
def jp_server_config(session) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
            "MlopsExtension": {"tracking_uri": session.server.uri, "min_refresh_seconds": 0.0}}


def test_the_panel_lists_the_notebooks_runs_and_opens_their_artifacts(session, jp_fetch,
                                                                      jp_asyncio_loop):
    async def get(*parts: str, **params: str) -> Any:
        reply = await jp_fetch("mlops", "api", *parts, params=params)
        return reply.body

    body = json.loads(jp_asyncio_loop.run_until_complete(get("runs", notebook=NOTEBOOK)))
    listed = {r["run_name"]: r for r in body["runs"]}
    assert set(listed) == {"Churn_Team", "Baseline_Forest", "Scaled_Logit"}
    assert {r["status"] for r in listed.values()} == {"FINISHED"}
    assert [e["name"] for e in body["experiments"]] == [EXPERIMENT]
    forest = listed["Baseline_Forest"]["run_id"]
    details = json.loads(jp_asyncio_loop.run_until_complete(get(f"runs/{forest}")))
    assert details["params"] == {"n_estimators": "30", "max_depth": "4"}, details
    assert details["source"].rstrip() == FOREST_CELL  # read through the proxy
    assert details["models"][0]["name"] == "forest"  # as its run card names it
    source = jp_asyncio_loop.run_until_complete(
        get(f"runs/{forest}/artifact", path=vocab.CELL_SOURCE_ARTIFACT))
    assert source.decode().rstrip() == FOREST_CELL
