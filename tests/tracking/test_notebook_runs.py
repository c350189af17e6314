"""A real kernel runs tests/data/tracking/train.ipynb; the runs are read back from the store,
first the embedded SQLite default, then an `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest


def _git_repo(folder) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c",
                               "user.email=t@t", *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    git("init", "-q")
    git("add", "train.ipynb")
    git("commit", "-qm", "init")
    return git("rev-parse", "HEAD")


@pytest.fixture(params=["sqlite", "server"])
def store_uri(request, workdir, monkeypatch, h) -> str:
    if request.param == "sqlite":
        # The default (nothing set); migrated beforehand: a fresh store is tested elsewhere.
        shutil.copy(h.template_db(), workdir / "mlflow.db")
        return f"sqlite:///{workdir / 'mlflow.db'}"
    server = request.getfixturevalue("mlflow_server")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    return server.uri


def test_train_notebook_is_tracked(h, workdir, store_uri):
    commit = _git_repo(workdir)
    executed = h.run_papermill(workdir, "train", label="injected")
    text = h.outputs_text(executed)
    client = h.client_for(store_uri)
    runs = h.runs_by_name(client, "train")  # experiment named after the notebook

    session = runs["train"]
    assert session.info.status == "FINISHED"
    assert session.data.tags["mlflow.source.name"].endswith("train.ipynb")
    assert session.data.tags["mlflow.source.git.commit"] == commit
    assert session.data.tags["mlops.git.dirty"] == "false"  # outputs are untracked files
    assert session.data.params["label"] == "injected"  # papermill's value, not the default
    assert session.data.params["extra"] == "3"
    assert session.data.tags["stage"] == "final"
    history = client.get_metric_history(session.info.run_id, "session_metric")
    assert [(m.step, m.value) for m in history] == [(0, 1.5), (1, 2.5)]

    fit = runs["fit"]
    assert fit.info.status == "FINISHED"
    assert fit.data.tags["mlflow.parentRunId"] == session.info.run_id
    assert fit.data.tags["stage"] == "dev"
    assert fit.data.tags["mlops.track_line"] == (  # "Insert into notebook" puts it back
        "%%mlops track fit --params note,long_note --metrics auto --model model"
        " --register train-model --tags stage=dev")
    assert fit.data.params["n_estimators"] == "5" and fit.data.params["seed"] == "0"
    assert fit.data.params["note"] == "short"
    metrics = fit.data.metrics
    assert 0.5 < metrics["accuracy"] <= 1.0
    assert math.isnan(metrics["nan_metric"]) and metrics["inf_metric"] > 1e300
    assert "flag" not in metrics and "n_estimators" not in metrics
    # the 7000-char param: marked prefix, full value as an artifact, a warning naming it
    assert len(fit.data.params["long_note"]) <= 6000
    assert "cut by jupyter-mlops" in fit.data.params["long_note"]
    assert "long_note" in text and "LimitWarning" in text
    fit_files = _artifacts(client, fit.info.run_id)
    assert {"cell.py", "stdout.txt", "params/long_note.txt"} <= fit_files
    cell_source = client.download_artifacts(fit.info.run_id, "cell.py")
    assert "LogisticRegression" in open(cell_source).read()
    models = client.search_logged_models([fit.info.experiment_id])
    model = next(m for m in models if m.source_run_id == fit.info.run_id)
    import mlflow
    from mlflow.models import get_model_info

    mlflow.set_tracking_uri(store_uri)
    info = get_model_info(f"models:/{model.model_id}")
    assert info.signature is not None and info.saved_input_example_info is not None
    assert info.flavors.keys() >= {"sklearn", "python_function"}
    versions = client.search_model_versions("name = 'train-model'")
    assert [v.run_id for v in versions] == [fit.info.run_id]

    plot_files = _artifacts(client, runs["plot"].info.run_id)
    assert {"figures/figure_0.png", "figures/figure_1.png", "stdout.txt"} <= plot_files
    stdout = open(client.download_artifacts(runs["plot"].info.run_id, "stdout.txt")).read()
    assert "stdout cut at 100000 of 150001 characters" in stdout

    broken = runs["broken"]
    assert broken.info.status == "FAILED"
    assert broken.data.tags["mlops.error"] == "ValueError: broken on purpose"
    trace = open(client.download_artifacts(broken.info.run_id, "error.txt")).read()
    assert "broken on purpose" in trace
    assert "broken on purpose" in text  # the exception still reached the notebook
    assert runs["interrupted"].info.status == "KILLED"
    assert f"store:      {store_uri}" in text  # `%mlops status`
    assert "session:    'train' in 'train', run id " in text
    assert all(r.info.status != "RUNNING" for r in runs.values())


def _artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found |= _artifacts(client, run_id, item.path)
        else:
            found.add(item.path)
    return found
