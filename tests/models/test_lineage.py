"""Lineage from a notebook: `%%mlops track --inputs X_train,...` logs the values as the run's MLflow
datasets (digest, schema, rows), the run card shows them, and the registered version answers
which run, notebook, git commit, parameters and data it came from. One real kernel runs
tests/data/models/Forest_Lineage.ipynb, committed to a git repository, against SQLite.
(Pipeline steps' datasets: tests/runner/test_models.py and tests/kfp/test_local_run.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from jupyter_mlops.models.lineage import lineage, run_datasets

DATA = Path(__file__).resolve().parents[1] / "data" / "models"


def _git(folder: Path, *args: str) -> str:
    who = ["-c", "user.name=Data Scientist", "-c", "user.email=ds@example.org"]
    return subprocess.run(["git", *who, *args], cwd=folder, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """The notebook executed by papermill in a fresh kernel; (executed notebook, client, commit)."""
    import papermill
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("Forest_Lineage")
    notebook = folder / "Forest_Lineage.ipynb"
    shutil.copy(DATA / notebook.name, notebook)
    _git(folder, "init", "-q")
    _git(folder, "add", notebook.name)
    _git(folder, "commit", "-q", "-m", "forest")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        env.setenv("HOME", str(folder))  # the spool stays in the test's folder
        env.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
        for name in ("JPY_SESSION_NAME", "JUPYTER_MLOPS_NOTEBOOK", "JUPYTER_MLOPS_SPOOL_DIR"):
            env.delenv(name, raising=False)
        papermill.execute_notebook(str(notebook), str(folder / "executed.ipynb"),
                                   parameters={"PAPERMILL_INPUT_PATH": str(notebook)},
                                   cwd=str(folder), kernel_name="python3", progress_bar=False)
    executed = nbformat.read(folder / "executed.ipynb", as_version=4)
    return executed, MlflowClient(tracking_uri=uri, registry_uri=uri), _git(folder, "rev-parse",
                                                                           "HEAD")


def _training_frame():
    """The notebook's X_train, made again (make_classification is seeded)."""
    import pandas as pd
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=120, n_features=4, random_state=7)
    return pd.DataFrame(features, columns=["Age", "Income", "Tenure", "Visits"]), labels


def _train_run(client):
    experiment = client.get_experiment_by_name("Forest_Lineage")
    [run] = client.search_runs([experiment.experiment_id], "attributes.run_name = 'Train_Forest'")
    return run


def _cell_outputs(executed, marker: str) -> str:
    [cell] = [c for c in executed.cells if c.source.startswith(marker)]
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/html", "")
                     for o in cell.outputs)


def test_a_description_is_what_mlflow_data_would_log():
    """Digest, schema and profile computed without mlflow equal from_pandas/from_numpy's, for
    the dtypes notebooks hold (strings, mixed objects, booleans, int32, dates, a Series)."""
    import mlflow
    import numpy as np
    import pandas as pd

    from jupyter_mlops.steps.datasets import describe

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"Income": rng.normal(size=300), "Visits": rng.integers(0, 9, 300),
                          "Small": rng.integers(0, 9, 300).astype("int32"),
                          "Churned": rng.random(300) > 0.5,
                          "City": rng.choice(["Paris", "Lyon"], 300),
                          "Mixed": [1, "a", 2.0] * 100,
                          "Day": pd.date_range("2026-01-01", periods=300)})
    for value in (frame.drop(columns="Mixed"), frame, frame["Income"], rng.normal(size=(300, 4))):
        ours = describe("X", value)
        theirs = (mlflow.data.from_numpy(value) if isinstance(value, np.ndarray) else
                  mlflow.data.from_pandas(pd.DataFrame(value))).to_dict()
        assert (ours.digest, ours.profile) == (theirs["digest"], theirs["profile"])
        if "Mixed" not in getattr(value, "columns", ()):  # MLflow infers no schema for it
            assert ours.schema == theirs["schema"]


def test_the_tracked_cells_inputs_are_the_runs_datasets_with_rows_and_schema(tracked):
    import mlflow

    executed, client, _ = tracked
    run = _train_run(client)
    assert run.info.status == "FINISHED"
    found = {d.name: d for d in run_datasets(run)}
    assert set(found) == {"X_train", "y_train"}
    frame, labels = _training_frame()
    x_train = found["X_train"]
    assert x_train.context == "training" and x_train.rows == 120
    assert x_train.digest == mlflow.data.from_pandas(frame).digest  # MLflow's own digest
    columns = json.loads(x_train.schema)["mlflow_colspec"]
    assert [(c["name"], c["type"]) for c in columns] == [
        ("Age", "double"), ("Income", "double"), ("Tenure", "double"), ("Visits", "double")]
    assert found["y_train"].rows == 120
    assert found["y_train"].digest == mlflow.data.from_numpy(labels).digest


def test_an_unknown_or_unsupported_input_is_named_in_the_cell_and_the_card_shows_the_data(tracked):
    executed, client, _ = tracked
    said = _cell_outputs(executed, "%%mlops track")
    assert "mlops: cell run 'Train_Forest': --inputs X_valid: no such variable, not logged" in said
    assert "mlops: cell run 'Train_Forest': --inputs notes: input 'notes' is a list, not a " \
        "pandas DataFrame or Series or a numpy array; not logged" in said
    assert "LimitWarning" not in said and "cell.py" not in said  # no warning into our code
    digest = {d.name: d.digest for d in run_datasets(_train_run(client))}["X_train"]
    assert "mlops-datasets" in said and f"<code>{digest[:8]}</code>, 120 rows" in said


def test_the_registered_version_answers_run_notebook_commit_params_and_data(tracked):
    _, client, commit = tracked
    run = _train_run(client)
    found = lineage(client, "Forest_Lineage", 1)
    assert found.run_id == run.info.run_id and found.run_name == "Train_Forest"
    assert found.notebook is not None and os.path.basename(found.notebook) == "Forest_Lineage.ipynb"
    assert found.git_commit == commit
    assert found.params["n_estimators"] == "30" and found.params["max_depth"] == "4"
    assert found.digests == {d.name: d.digest for d in run_datasets(run)}
    shown = {d["name"]: d["rows"] for d in found.to_dict()["datasets"]}
    assert shown == {"X_train": 120, "y_train": 120}


def test_the_panels_run_details_list_the_datasets(tracked):
    from jupyter_mlops.server.mlflow_reads import run_details

    _, client, _ = tracked
    run = _train_run(client)
    details = run_details(client, run.info.run_id)  # GET /mlops/runs/<id>'s body
    digest = {d.name: d.digest for d in run_datasets(run)}["X_train"]
    assert {(d["name"], d["context"], d["digest"], d["rows"]) for d in details["datasets"]} \
        >= {("X_train", "training", digest, 120)}
