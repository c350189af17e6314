"""GET /mlops/api/runs/<id> and /runs/<id>/artifact: a cell run's details name its session,
say which tags are bookkeeping, list the model it logged, give the cell back with its
`%%mlops track` line; its artifacts stream as text, a download, or a script-less page."""

from __future__ import annotations

import time

import mlflow
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jupyter_mlops.steps import mlflow_vocabulary as vocab

from .conftest import fetch_json

SOURCE = "forest = RandomForestClassifier(n_estimators=5).fit(X_train, y_train)\n"


def _cell_run(uri: str) -> tuple[str, str]:
    """A session run and a tracked cell run under it, as the kernel's sender writes them."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("Churn Details")
    now = int(time.time() * 1000)
    session = client.create_run(experiment, start_time=now, run_name="churn_session",
                                tags={vocab.KIND_TAG: vocab.KIND_SESSION}).info.run_id
    cell = client.create_run(experiment, start_time=now + 1, run_name="train forest", tags={
        vocab.KIND_TAG: vocab.KIND_CELL, vocab.PARENT_RUN_TAG: session, vocab.PID_TAG: "4242",
        vocab.START_TAG: "17", vocab.RUN_KEY_TAG: "k1"}).info.run_id
    client.log_text(cell, SOURCE, vocab.CELL_SOURCE_ARTIFACT)
    client.log_text(cell, "<p>drift</p><script>alert(1)</script>", vocab.DRIFT_REPORT_ARTIFACT)
    client.log_dict(cell, {"a": 1}, "figures/data.bin")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(run_id=cell):
            import numpy as np

            model = make_pipeline(StandardScaler(), LogisticRegression())
            mlflow.sklearn.log_model(model.fit(np.eye(4), [0, 1, 0, 1]), name="model")
    finally:
        mlflow.set_tracking_uri(previous)
    client.set_terminated(session)
    return session, cell


async def test_a_cell_runs_details_and_artifacts(jp_fetch, mlflow_store) -> None:
    session, cell = _cell_run(str(mlflow_store["uri"]))
    code, run = await fetch_json(jp_fetch, "mlops", "api", "runs", cell)
    assert code == 200, run
    assert run["parent"] == {"run_id": session, "run_name": "churn_session"}
    assert run["parent_id"] == session
    assert (run["kind"], run["error"]) == (vocab.KIND_CELL, None)  # a cell, which did not fail
    assert {vocab.PID_TAG, vocab.START_TAG, vocab.RUN_KEY_TAG, vocab.PARENT_RUN_TAG} \
        <= set(run["internal_tags"])
    assert vocab.KIND_TAG not in run["internal_tags"]
    assert [(m["name"], m["model_type"] is None or isinstance(m["model_type"], str))
            for m in run["models"]] == [("model", True)]
    assert run["models"][0]["state"] == "stored, not registered"  # as the run card says it
    assert run["source"] == SOURCE
    # Logged before runs kept their line: one naming the run.
    assert run["cell"] == f"%%mlops track 'train forest'\n{SOURCE}"
    line = "%%mlops track 'train forest' --metrics auto --model forest"
    MlflowClient(tracking_uri=str(mlflow_store["uri"])).set_tag(cell, vocab.TRACK_LINE_TAG, line)
    _, run = await fetch_json(jp_fetch, "mlops", "api", "runs", cell)
    assert run["cell"] == f"{line}\n{SOURCE}"
    assert vocab.TRACK_LINE_TAG in run["internal_tags"]

    async def artifact(path: str) -> object:
        return await jp_fetch("mlops", "api", "runs", cell, "artifact", params={"path": path},
                              raise_error=False)

    text = await artifact(vocab.CELL_SOURCE_ARTIFACT)
    assert text.code == 200 and text.body.decode() == SOURCE
    assert text.headers["Content-Type"].startswith("text/plain")
    report = await artifact(vocab.DRIFT_REPORT_ARTIFACT)
    assert report.headers["Content-Type"].startswith("text/html")
    assert report.headers["Content-Security-Policy"] == "sandbox"  # its script cannot run
    binary = await artifact("figures/data.bin")
    assert binary.headers["Content-Disposition"].startswith("attachment")
    missing = await artifact("nothing.txt")
    assert missing.code == 404 and b"nothing.txt" in missing.body
    escape = await artifact("../../mlflow.db")
    assert escape.code == 400


async def test_a_failed_pipelines_details_say_which_step_failed(jp_fetch, mlflow_store) -> None:
    """The pipeline run holds no error of its own: its details name the failed step and why,
    and a step that never ran says why, not only KILLED (as the runner writes them)."""
    client = MlflowClient(tracking_uri=str(mlflow_store["uri"]))
    experiment = client.create_experiment("Churn_Pipeline Failing")
    pipeline = client.create_run(experiment, run_name="pipeline-20261202-1", tags={
        vocab.KIND_TAG: vocab.KIND_PIPELINE, vocab.STATUS_TAG: "failed"}).info.run_id
    error = ("step 'train-forest' failed in cell 3 (\"forest.fit(X, y)\"): ValueError: column"
             " churn is missing\n-----\nTraceback (most recent call last): ...")
    steps = {}
    for name, status, tags in [
            ("load", "FINISHED", {vocab.STATUS_TAG: "ok"}),
            ("train-forest", "FAILED", {vocab.STATUS_TAG: "failed", vocab.ERROR_TAG: error}),
            ("report", "KILLED", {vocab.STATUS_TAG: "skipped",
                                  vocab.REASON_TAG: "upstream step 'train-forest' failed"})]:
        step = client.create_run(experiment, run_name=name, tags={
            vocab.KIND_TAG: vocab.KIND_STEP, vocab.PARENT_RUN_TAG: pipeline, **tags})
        client.set_terminated(step.info.run_id, status)
        steps[name] = step.info.run_id
    client.set_terminated(pipeline, "FAILED")

    async def error_of(run_id: str) -> object:
        code, run = await fetch_json(jp_fetch, "mlops", "api", "runs", run_id)
        assert code == 200, run
        return run["error"]

    assert await error_of(pipeline) == error.split("\n")[0]
    assert await error_of(steps["train-forest"]) == error
    assert await error_of(steps["report"]) == "not run: upstream step 'train-forest' failed"
    assert await error_of(steps["load"]) is None
