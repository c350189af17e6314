"""A pipeline step's `model:` carries its training data's reference profile too: the local
runner logs it beside the model on the step's run, where a drift report finds it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.runner import RunOptions, run_pipeline


def test_a_model_step_stores_its_reference_profile(tmp_path):
    from mlflow import MlflowClient

    from jupyter_mlops.monitoring.profile import Profile

    cells = [
        new_code_cell("rows = 400", metadata={"tags": ["parameters"]}),
        new_code_cell("import numpy as np, pandas as pd\n"
                      "from sklearn.ensemble import GradientBoostingClassifier",
                      metadata={"tags": ["setup"]}),
        new_code_cell("rng = np.random.default_rng(0)\n"
                      "X_train = pd.DataFrame({'tenure_months': rng.gamma(3, 8, rows),\n"
                      "                        'plan': rng.choice(['basic', 'pro'], rows)})\n"
                      "y_train = (X_train.tenure_months < 20).astype(int)",
                      metadata={"tags": ["step:data"]}),
        new_code_cell("boosting = GradientBoostingClassifier(n_estimators=10)\n"
                      "boosting.fit(X_train[['tenure_months']], y_train)",
                      metadata={"tags": ["step:train", "model:boosting"]}),
    ]
    notebook = tmp_path / "Churn_Pipeline.ipynb"
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), notebook)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_pipeline(notebook, RunOptions(out=tmp_path / "out", tracking_uri=uri, quiet=True,
                                               jobs=1, wait_for_store=True))
    assert result.exit_code == 0, result.failures

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(result.mlflow_experiment).experiment_id
    [run] = client.search_runs([experiment], "tags.`mlops.step` = 'train'")
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run.info.run_id, "reference_profile.json", folder)
        profile = Profile.from_json(Path(path).read_bytes())
    # X_train as the step had it (both columns); predictions on it fail (the model saw one
    # column), so the profile has none: the step still passed
    assert profile.rows == 400 and list(profile.columns) == ["tenure_months", "plan"]
    assert profile.predictions is None
