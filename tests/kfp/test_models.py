"""A compiled step tagged `model:forest register:Forest_From_Pipeline` logs its forest as the local
runner does: a READY MLflow model of the step's run, registered, run by kfp.local."""

from __future__ import annotations

from kfp_helpers import ROOT, run_local

from jupyter_mlops.kfp import compile_notebook

TRAIN_FOREST = ROOT / "tests" / "data" / "runner" / "Train_Forest.ipynb"


def test_a_compiled_step_logs_its_model_on_its_run(tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    compiled = compile_notebook(TRAIN_FOREST, install_packages=False)
    run_local(compiled.pipeline, tmp_path / "kfp", MLFLOW_TRACKING_URI=tracking,
              n_estimators=15)

    client = MlflowClient(tracking, registry_uri=tracking)
    experiment = client.get_experiment_by_name("train-forest")
    runs = client.search_runs([experiment.experiment_id])
    steps = {r.data.tags["mlops.step"]: r for r in runs
             if r.data.tags.get("mlops.kind") == "pipeline-step"}
    assert {r.info.status for r in steps.values()} == {"FINISHED"}
    [model] = client.search_logged_models([experiment.experiment_id])
    assert model.source_run_id == steps["fit"].info.run_id and model.name == "forest"
    assert str(model.status).endswith("READY")
    [version] = client.search_model_versions("name = 'Forest_From_Pipeline'")
    assert version.run_id == steps["fit"].info.run_id

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(tracking)
    forest = mlflow.sklearn.load_model("models:/Forest_From_Pipeline/1")
    assert len(forest.estimators_) == 15  # the pipeline argument reached the step
