"""`jupyter-mlops run` with its default tracking (a SQLite store in the working folder) hands the
run's records to the sender process and ends without waiting for MLflow: it says where the run
will appear, and the records arrive after the command has exited. A store that hangs does not
hold the command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.tracking.destination import open_client
from jupyter_mlops.tracking.spool import sessions

CLI = Path(sys.executable).parent / "jupyter-mlops"
STORE_DEADLINE = 240.0  # seconds for the detached sender to store the run on a loaded machine


def _notebook(folder: Path) -> Path:
    cells = [new_code_cell("n_customers = 200\nthreshold = 0.5", metadata={"tags": ["parameters"]}),
             new_code_cell("import random", metadata={"tags": ["setup"]}),
             new_code_cell("random.seed(7)\nscores = [random.random() for _ in range(n_customers)]",
                           metadata={"tags": ["step:load-scores"]}),
             new_code_cell("churned = [s > threshold for s in scores]",
                           metadata={"tags": ["step:flag-churn"]}),
             new_code_cell("churn_rate = sum(churned) / len(churned)",
                           metadata={"tags": ["step:churn-rate"]}),
             new_code_cell("churn_rate", metadata={"tags": ["metrics"]})]
    path = folder / "Churn_Report.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "JUPYTER_MLOPS_SPOOL_DIR")}
    return env | extra


def _run(notebook: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.CompletedProcess,
                                                                     float]:
    start = time.monotonic()
    done = subprocess.run([str(CLI), "run", str(notebook), "--jobs", "1", *extra],
                          cwd=notebook.parent, env=env, capture_output=True, text=True,
                          timeout=600)
    return done, time.monotonic() - start


def _stored_runs(client, run_id: str) -> tuple[object, list] | None:
    """The pipeline's parent run (found by its run folder's id) and its children, once all
    of them are FINISHED; None before."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return None
    parents = client.search_runs(experiments, f"tags.`mlops.run_id` = '{run_id}' and "
                                              "tags.`mlops.kind` = 'pipeline'")
    if not parents or parents[0].info.status != "FINISHED":
        return None
    parent = parents[0]
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    if len(children) < 3 or any(c.info.status != "FINISHED" for c in children):
        return None
    return parent, children


def test_the_command_ends_before_mlflow_has_the_run_and_the_run_arrives(tmp_path):
    notebook = _notebook(tmp_path)
    done, _ = _run(notebook, _env())
    assert done.returncode == 0, done.stdout + done.stderr
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = re.search(r"run folder: .*/runs/(\S+)", done.stdout).group(1)
    assert f"MLflow: run pipeline-{run_id} in experiment " in done.stdout
    assert f" at {uri} (sent in the background" in done.stdout
    assert f"view it: mlflow ui --backend-store-uri {uri}" in done.stdout
    assert "warning" not in done.stderr.lower()

    # Opened under the store's creation lock: the sender may be creating mlflow.db right now.
    client = open_client(uri)
    deadline = time.monotonic() + STORE_DEADLINE
    stored = None
    while stored is None and time.monotonic() < deadline:
        stored = _stored_runs(client, run_id)
        time.sleep(0.5)
    assert stored is not None, f"the run never arrived in {uri}: " + _spool_log(tmp_path)
    parent, children = stored
    experiment = client.get_experiment(parent.info.experiment_id).name
    assert f"in experiment {experiment!r}" in done.stdout  # where the message said
    assert parent.data.metrics["churn_rate"] > 0
    assert parent.data.params["n_customers"] == "200"
    assert {c.data.tags["mlops.step"] for c in children} == {
        "load-scores", "flag-churn", "churn-rate"}
    # The sender finished its work and cleaned the spool up after itself.
    spool = tmp_path / ".jupyter_mlops" / "spool"
    deadline = time.monotonic() + 60
    while list(sessions(spool)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(sessions(spool))
    assert not list(spool.glob("*.rejected.jsonl"))  # nothing refused by the store


def _spool_log(folder: Path) -> str:
    return "\n".join(p.read_text()[-2000:] for p in folder.rglob("spool/*.log"))


def test_a_store_that_hangs_does_not_hold_the_command(tmp_path):
    """An MLflow server that takes connections and never answers (a stuck server): before,
    the command waited for it; now it ends at once and the records wait in the spool."""
    notebook = _notebook(tmp_path)
    warm, _ = _run(notebook, _env(), "--no-track")  # a cached re-run needs no kernel
    assert warm.returncode == 0, warm.stderr
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(16)  # connections complete in the backlog; nothing ever answers
    uri = f"http://127.0.0.1:{stuck.getsockname()[1]}"
    spool = tmp_path / "spool"
    try:
        done, elapsed = _run(notebook, _env(MLFLOW_TRACKING_URI=uri,
                                            JUPYTER_MLOPS_SPOOL_DIR=str(spool),
                                            MLFLOW_HTTP_REQUEST_TIMEOUT="120"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert elapsed < 45, f"the command waited {elapsed:.0f} s for the store"
        assert f"at {uri} (sent in the background; `jupyter-mlops sync` reports" in done.stdout
        assert f"view it: open {uri}" in done.stdout
        records = (spool / f"{next(sessions(spool))}.jsonl").read_text()
        assert '"op":"end"' in records and "pipeline-" in records  # all kept on disk
    finally:
        stuck.close()  # the sender's requests fail now; it keeps the records and exits


def test_a_steps_tracked_cells_name_the_notebook(tmp_path):
    """`%mlops start` in a step knows the notebook, as in JupyterLab: the session run is named
    after it and every tracked cell's run carries its tag, which the panel lists runs by."""
    cells = [new_code_cell("n_estimators = 5", metadata={"tags": ["parameters"]}),
             new_code_cell("%load_ext jupyter_mlops\n%mlops start --experiment Churn_Forest\n"
                           "from sklearn.ensemble import RandomForestClassifier",
                           metadata={"tags": ["setup"]}),
             new_code_cell("%%mlops track forest --params n_estimators --model forest\n"
                           "forest = RandomForestClassifier(n_estimators=n_estimators)\n"
                           "forest.fit([[0], [1], [2], [3]], [0, 1, 0, 1])",
                           metadata={"tags": ["step:train"]}),
             new_code_cell("%mlops end")]  # the step's too
    notebook = tmp_path / "Churn_Forest.ipynb"
    nbformat.write(new_notebook(cells=cells), notebook)
    done, _ = _run(notebook, _env(), "--no-track")
    assert done.returncode == 0, done.stdout + done.stderr
    client = open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("Churn_Forest").experiment_id
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}
    assert set(runs) == {"Churn_Forest", "forest"}  # the session was 'session', untagged
    assert {r.data.tags.get("mlops.notebook") for r in runs.values()} == {
        os.path.realpath(notebook)}
    assert runs["forest"].info.status == "FINISHED"
    assert runs["forest"].data.params == {"n_estimators": "5"}
