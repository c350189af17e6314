"""`--model` stores every object as an MLflow model the store calls READY, `--register` makes a
version of it, and both load back: a real kernel runs tests/data/tracking/Churn_Models.ipynb
(a forest, a boosting model, a scaler+SVC Pipeline and a rule class written in the notebook)
against a SQLite store. An object that cannot be saved is an error naming it, never skipped.
"""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest

# cell run name -> (registered model name, whether it is scikit-learn)
TRACKED = {
    "Random_Forest": ("Churn_Forest", True),
    "Gradient_Boosting": ("Churn_Boosting", True),
    "Scaled_SVC": ("Churn_SVC", True),
    "Threshold_Rule": ("Churn_Rule", False),
}
VARIABLES = {"Random_Forest": "forest", "Gradient_Boosting": "boosting",
             "Scaled_SVC": "svc_pipeline", "Threshold_Rule": "rule"}  # their --model


@pytest.fixture
def loading_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # mlflow >= 3.17 loads no pickled (nor skops) model unless the user says so.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


def _ready_models(client, experiment_id: str, expected: int, timeout: float = 120) -> list:
    """The experiment's logged models once `expected` of them are READY (or the last answer)."""
    deadline = time.monotonic() + timeout
    while True:
        models = client.search_logged_models([experiment_id])
        if sum(str(m.status).endswith("READY") for m in models) >= expected:
            return models
        if time.monotonic() > deadline:
            return models
        time.sleep(0.5)


def test_every_tracked_model_is_ready_registered_and_loads_back(h, workdir, loading_allowed):
    import mlflow

    shutil.copy(h.template_db(), workdir / "mlflow.db")
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    executed = h.run_papermill(workdir, "Churn_Models")
    said = h.outputs_text(executed)
    assert "REJECTED" not in said and "unreachable" not in said, said
    client = h.client_for(uri)
    runs = h.runs_by_name(client, "churn_models")
    models = _ready_models(client, runs["Random_Forest"].info.experiment_id, len(TRACKED))
    by_run = {m.source_run_id: m for m in models}

    mlflow.set_tracking_uri(uri)
    rows = np.random.default_rng(1).normal(size=(4, 6))
    for run_name, (registered, sklearn) in TRACKED.items():
        run = runs[run_name]
        assert run.info.status == "FINISHED", run_name
        model = by_run.get(run.info.run_id)
        assert model is not None, f"{run_name}: no logged model"
        assert str(model.status).endswith("READY"), (run_name, model.status)
        assert model.name == VARIABLES[run_name]  # as the card names it
        [version] = client.search_model_versions(f"name = '{registered}'")
        assert version.run_id == run.info.run_id and version.status == "READY"
        uri_of_version = f"models:/{registered}/{version.version}"
        predicted = mlflow.pyfunc.load_model(uri_of_version).predict(rows)
        assert set(np.asarray(predicted).tolist()) <= {0, 1}, run_name
        if sklearn:
            estimator = mlflow.sklearn.load_model(uri_of_version)
            assert np.array_equal(estimator.predict(rows), predicted), run_name
    rule = mlflow.pyfunc.load_model("models:/Churn_Rule/1").unwrap_python_model().model
    assert type(rule).__name__ == "ThresholdRule" and rule.threshold == 0.0
    assert list(rule.predict(np.array([[1.0], [-1.0]]))) == [1, 0]


def test_an_object_that_cannot_be_saved_raises_naming_it(h, tmp_path):
    """The sender turns this error into a rejected record with the reason (sink.py)."""
    from sklearn.preprocessing import FunctionTransformer

    from jupyter_mlops.steps.model_logging import ModelLoggingError, log_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shutil.copy(h.template_db(), tmp_path / "mlflow.db")
    client = h.client_for(uri)
    experiment = client.create_experiment("Broken_Models",
                                          artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment, run_name="Locked_Transformer")
    transformer = FunctionTransformer().fit(np.zeros((2, 2)))
    transformer.lock = threading.Lock()  # no pickler can save a lock
    with pytest.raises(ModelLoggingError) as raised:
        log_model(client, run.info.run_id, transformer, name="scaler", register="Broken")
    message = str(raised.value)
    assert "'scaler'" in message and "FunctionTransformer" in message
    assert "lock" in message.lower()
    [model] = client.search_logged_models([experiment])
    assert str(model.status).endswith("FAILED")  # what MLflow's UI shows for it
    assert client.search_registered_models() == []
