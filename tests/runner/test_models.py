"""A step tagged `model:forest register:Forest_From_Pipeline` (tests/data/runner/Train_Forest.ipynb)
logs its forest as a READY MLflow model of the step's run, registered and loadable; an
unchanged re-run takes the step from the cache and logs no second model."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from .conftest import copy_notebook, run, sqlite_uri, statuses


def _step_runs(client, run_id: str) -> dict:
    """The MLflow runs of the pipeline run `run_id`'s steps, by step name."""
    experiment = client.get_experiment_by_name("train-forest")
    [parent] = client.search_runs([experiment.experiment_id],
                                  f"tags.`mlops.run_id` = '{run_id}'")
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {r.data.tags["mlops.step"]: r for r in children}


def _settled_models(client, experiment_id: str, timeout: float = 120) -> list:
    """The experiment's logged models once none is still PENDING (the sender may lag)."""
    deadline = time.monotonic() + timeout
    while True:
        models = client.search_logged_models([experiment_id])
        if (models and all(not str(m.status).endswith("PENDING") for m in models)) \
                or time.monotonic() > deadline:
            return models
        time.sleep(0.5)


@pytest.fixture(scope="module")
def forest_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("Train_Forest")
    notebook = copy_notebook("Train_Forest", folder)
    uri = sqlite_uri(folder)
    first = run(notebook, folder / "out", tracking_uri=uri)
    second = run(notebook, folder / "out", tracking_uri=uri)
    return first, second, uri


def test_the_model_tag_logs_the_steps_model_ready_and_registered(forest_runs, mlflow_client_for,
                                                               monkeypatch):
    import mlflow

    first, _, uri = forest_runs
    assert first.ok, first.failures
    client = mlflow_client_for(uri)
    steps = _step_runs(client, first.run_id)
    models = _settled_models(client, steps["fit"].info.experiment_id)
    [model] = models
    assert model.source_run_id == steps["fit"].info.run_id  # the step's run, not the pipeline's
    assert model.name == "forest" and str(model.status).endswith("READY")
    [version] = client.search_model_versions("name = 'Forest_From_Pipeline'")
    assert version.run_id == steps["fit"].info.run_id and version.status == "READY"

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(uri)
    forest = mlflow.sklearn.load_model(f"models:/Forest_From_Pipeline/{version.version}")
    assert type(forest).__name__ == "RandomForestClassifier" and len(forest.estimators_) == 20
    assert set(forest.predict(np.zeros((3, 5))).tolist()) <= {0, 1}
    assert steps["load"].info.status == "FINISHED" and "fit" in steps


def test_a_cached_step_logs_no_second_model(forest_runs, mlflow_client_for):
    _, second, uri = forest_runs
    assert statuses(second) == {"load": "cached", "fit": "cached"}
    client = mlflow_client_for(uri)
    fit = _step_runs(client, second.run_id)["fit"]
    assert fit.info.status == "FINISHED"  # its records, a model's included, came before its end
    models = client.search_logged_models([fit.info.experiment_id])
    assert len(models) == 1 and models[0].source_run_id != fit.info.run_id
    assert len(client.search_model_versions("name = 'Forest_From_Pipeline'")) == 1


def test_step_runs_carry_their_values_as_datasets_and_the_version_its_lineage(
        forest_runs, mlflow_client_for):
    """Each step's run has the values it read (`input`) and wrote (`output`) as MLflow dataset
    inputs, digested as the runner's manifests and cache digest them; the registered version
    answers which run, notebook, parameters and data it came from."""
    from jupyter_mlops.models.lineage import lineage, run_datasets
    from jupyter_mlops.steps import serializers

    first, _, uri = forest_runs
    client = mlflow_client_for(uri)
    steps = _step_runs(client, first.run_id)
    load_values = first.run_dir / "data" / "load"
    sha = {name: serializers.content_hash(load_values, name) for name in ("X", "y")}

    used = {(d.name, d.context): d for d in run_datasets(steps["fit"])}
    assert {("X", "input"), ("y", "input"), ("forest", "output")} <= set(used)
    for name in ("X", "y"):
        assert used[name, "input"].digest == sha[name][:32]
        assert used[name, "input"].tags["mlops.sha256"] == sha[name]
    features = json.loads(json.loads(used["X", "input"].schema)["mlflow_tensorspec"]["features"])
    assert used["X", "input"].rows == 200 and features[0]["tensor-spec"]["shape"] == [-1, 5]
    written = {(d.name, d.context): d for d in run_datasets(steps["load"])}
    assert written["X", "output"].digest == used["X", "input"].digest  # one value, one digest

    [version] = client.search_model_versions("name = 'Forest_From_Pipeline'")
    found = lineage(client, "Forest_From_Pipeline", version.version)
    assert found.run_id == steps["fit"].info.run_id and found.step == "fit"
    [pipeline] = client.search_runs([steps["fit"].info.experiment_id],
                                    f"tags.`mlops.run_id` = '{first.run_id}'")
    assert found.parent_run_id == pipeline.info.run_id
    assert found.notebook and found.notebook.endswith("Train_Forest.ipynb")
    assert found.params["n_estimators"] == "20"
    assert found.digests["X"] == sha["X"][:32] and "output:forest" in found.digests
    shown = {(d["name"], d["context"]): d for d in found.to_dict()["datasets"]}
    assert shown["X", "input"]["rows"] == 200 and shown["X", "input"]["sha256"] == sha["X"]
