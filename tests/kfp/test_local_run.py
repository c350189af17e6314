"""The compiled pipeline, executed by kfp.local, gives what the local runner gives."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from kfp_helpers import EXAMPLE, KALE, SMALL, Reference, kfp_metrics, run_local, run_reference
from nbformat.v4 import new_code_cell, new_notebook

import jupyter_mlops
from jupyter_mlops.kfp import compile_notebook
from jupyter_mlops.kfp.names import HTML_OUTPUT, NOTEBOOK_OUTPUT, VALUES_OUTPUT
from jupyter_mlops.monitoring.profile import Profile
from jupyter_mlops.steps import serializers
from jupyter_mlops.steps.mlflow_vocabulary import REFERENCE_PROFILE_ARTIFACT

SMALL_ARGUMENTS = {"n": 4, "scale": 2.0, "label": "kfp", "weights": [3], "options": {"k": 5}}


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, np.ndarray):
        return isinstance(right, np.ndarray) and np.array_equal(left, right)
    if hasattr(left, "equals"):  # DataFrame, Series
        return bool(left.equals(right))
    if hasattr(left, "get_params"):  # an estimator: compared by its serialized bytes below
        return type(left) is type(right)
    return left == right


def _assert_matches(compiled, run: Path, reference: Reference) -> None:
    """Every value a step passes on and every metric equal the local runner's."""
    for step in compiled.graph.steps:
        for name in step.outputs:
            ours, local = run / step.name / VALUES_OUTPUT, reference.values[step.name]
            assert _same(serializers.load(ours, name), serializers.load(local, name)), \
                (step.name, name)
            manifests = [serializers.read_manifest(folder, name) for folder in (ours, local)]
            assert manifests[0]["serializer"] == manifests[1]["serializer"], (step.name, name)
            if manifests[0]["serializer"] in ("joblib", "npy", "parquet"):  # byte-stable formats
                assert manifests[0]["sha256"] == manifests[1]["sha256"], (step.name, name)
        if step.metrics:
            assert kfp_metrics(run, step.name) == pytest.approx(reference.metrics[step.name])
            assert set(reference.metrics[step.name]) == set(step.metrics)


@contextlib.contextmanager
def _image_without_jupyter_mlops(folder: Path) -> Iterator[None]:
    """Python processes started here (kfp.local's tasks, their kernels) cannot import the
    installed jupyter_mlops, as in a cluster image that lacks it: a sitecustomize takes the
    project's folder (the editable install) off their sys.path. The components then run with
    the steps package they carry."""
    installed = str(Path(jupyter_mlops.__file__).resolve().parents[1])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"sys.path[:] = [p for p in sys.path if os.path.realpath(p or '.') != {installed!r}]\n")
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(folder)
    try:
        probe = "import importlib.util; print(importlib.util.find_spec('jupyter_mlops'))"
        assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              cwd=folder, check=True).stdout.strip() == "None"
        yield
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The small pipeline under kfp.local where jupyter-mlops is not installed: the steps, the
    values they pass and their MLflow runs all come from the package each component ships."""
    folder = tmp_path_factory.mktemp("small")
    tracking = f"sqlite:///{folder / 'mlflow.db'}"
    compiled = compile_notebook(SMALL, install_packages=False)
    with _image_without_jupyter_mlops(folder / "site"):
        run = run_local(compiled.pipeline, folder / "kfp", MLFLOW_TRACKING_URI=tracking,
                        **SMALL_ARGUMENTS)
    return compiled, run, tracking


def test_small_pipeline_outputs_and_metrics_equal_the_local_runners(small_run, tmp_path):
    compiled, run, _ = small_run
    reference = run_reference(SMALL, tmp_path, SMALL_ARGUMENTS)
    _assert_matches(compiled, run, reference)
    # the arguments reached the steps: 4 values scaled by 2 and squared, 3 from weights, k=5
    assert kfp_metrics(run, "report") == {"total": 56 + 4 * 3 + 5, "mean": (56 + 12 + 5) / 4,
                                          "count": 4}


def test_every_step_leaves_its_executed_notebook_and_html(small_run):
    compiled, run, _ = small_run
    for step in compiled.graph.steps:
        executed = json.loads((run / step.name / NOTEBOOK_OUTPUT).read_text())
        assert executed["metadata"]["papermill"]["parameters"]["_mlops_outputs_dir"]
        assert executed["metadata"]["mlops"]["step"] == step.name
        assert "<html" in (run / step.name / HTML_OUTPUT).read_text().lower()
    report = json.loads((run / "report" / NOTEBOOK_OUTPUT).read_text())
    assert any("total = float(squares.sum())" in "".join(c["source"]) for c in report["cells"])


def test_each_step_logs_a_child_mlflow_run_tagged_as_the_local_runner_does(small_run):
    from mlflow import MlflowClient

    compiled, _, tracking = small_run
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(compiled.graph.experiment or compiled.graph.name)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("mlops.kind") == "pipeline"]
    steps = {r.data.tags["mlops.step"]: r for r in runs
             if r.data.tags.get("mlops.kind") == "pipeline-step"}
    assert set(steps) == {s.name for s in compiled.graph.steps}
    assert {r.data.tags["mlflow.parentRunId"] for r in steps.values()} == {parent.info.run_id}
    assert {r.info.status for r in [parent, *steps.values()]} == {"FINISHED"}
    assert steps["report"].data.metrics["count"] == 4
    assert parent.data.metrics["total"] == 73
    assert steps["make"].data.params == {"n": "4", "scale": "2.0", "label": "kfp"}
    artifacts = client.list_artifacts(steps["make"].info.run_id)
    assert [a.path for a in artifacts] == ["make.ipynb"]


def test_each_steps_run_has_the_values_it_read_and_wrote_as_datasets(small_run):
    """As the local runner logs them: dataset inputs named by the value, `input` or `output`,
    with the digest the value's manifest records (its sha256, cut to MLflow's length)."""
    from mlflow import MlflowClient

    from jupyter_mlops.models.lineage import run_datasets

    compiled, run, tracking = small_run
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(compiled.graph.experiment or compiled.graph.name)
    steps = {r.data.tags["mlops.step"]: r for r in client.search_runs([experiment.experiment_id])
             if r.data.tags.get("mlops.kind") == "pipeline-step"}
    for step in compiled.graph.steps:
        logged = {(d.name, d.context): d.digest for d in run_datasets(steps[step.name])}
        expected = {(name, "input"): serializers.content_hash(run / producer / VALUES_OUTPUT,
                                                              name)[:32]
                    for name, producer in step.inputs.items()}
        expected |= {(name, "output"): serializers.content_hash(run / step.name / VALUES_OUTPUT,
                                                                name)[:32]
                     for name in step.outputs}
        assert logged == expected, step.name
    assert any(d.rows == 4 for d in run_datasets(steps["make"]))  # n=4 values, from the profile


def test_a_kale_notebook_compiles_unchanged_and_runs_under_kfp_local(tmp_path):
    compiled = compile_notebook(KALE, install_packages=False)
    assert compiled.name == "kale-small"
    run = run_local(compiled.pipeline, tmp_path / "kfp", offset=1.5)
    _assert_matches(compiled, run, run_reference(KALE, tmp_path / "local", {"offset": 1.5}))
    shifted = serializers.load(run / "train-model" / VALUES_OUTPUT, "shifted")
    assert min(shifted) >= 1.5 and len(shifted) == 20
    assert set(kfp_metrics(run, "evaluate-model")) == {"score", "spread"}  # Kale's print(...)


def test_the_example_notebook_gives_the_local_runners_values_metrics_and_models(tmp_path):
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus

    compiled = compile_notebook(EXAMPLE, install_packages=False)
    arguments = {"n_customers": 400, "n_estimators": 10}
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = run_local(compiled.pipeline, tmp_path / "kfp", MLFLOW_TRACKING_URI=tracking,
                    **arguments)
    _assert_matches(compiled, run, run_reference(EXAMPLE, tmp_path / "local", arguments))
    assert 0.5 < kfp_metrics(run, "evaluate")["accuracy"] <= 1.0
    written = {name: serializers.read_manifest(run / step / VALUES_OUTPUT, name)["serializer"]
               for step, name in (("load", "customers"), ("features", "X_train_scaled"),
                                  ("train-forest", "forest"))}
    assert written == {"customers": "parquet", "X_train_scaled": "npy", "forest": "joblib"}
    # model:forest and model:logreg: each training step's run holds its model, READY
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(compiled.graph.experiment or compiled.graph.name)
    steps = {r.info.run_id: r.data.tags["mlops.step"]
             for r in client.search_runs([experiment.experiment_id])
             if r.data.tags.get("mlops.kind") == "pipeline-step"}
    models = client.search_logged_models([experiment.experiment_id])
    assert {(steps[m.source_run_id], m.name, m.status) for m in models} == {
        ("train-forest", "forest", LoggedModelStatus.READY),
        ("train-logreg", "logreg", LoggedModelStatus.READY)}
    # the forest's step read X_train: its training data's profile, with the forest's predictions
    forest_run = next(run for run, step in steps.items() if step == "train-forest")
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(forest_run, REFERENCE_PROFILE_ARTIFACT, folder)
        profile = Profile.from_json(Path(path).read_bytes())
    assert profile.rows == 300 and profile.predictions is not None  # 400 customers, 25 % held


def _timeout_notebook(path: Path) -> Path:
    cells = [new_code_cell("seconds = 120", metadata={"tags": ["parameters"]}),
             new_code_cell("import time", metadata={"tags": ["setup"]}),
             new_code_cell("time.sleep(seconds)", metadata={"tags": ["step:slow", "timeout:2"]})]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_a_step_over_its_timeout_fails_and_tracking_from_the_environment_records_it(tmp_path):
    """`timeout:` bounds the whole step as locally; MLFLOW_TRACKING_URI set in the
    container's environment (not as a parameter) is enough for the steps to log."""
    from mlflow import MlflowClient

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    compiled = compile_notebook(_timeout_notebook(tmp_path / "slow.ipynb"),
                                install_packages=False, env={"MLFLOW_TRACKING_URI": tracking})
    log = io.StringIO()
    with pytest.raises(RuntimeError, match="slow"):
        run_local(compiled.pipeline, tmp_path / "kfp", log)
    assert "TimeoutError: step 'slow' timed out after 2 s" in log.getvalue()
    run = next((tmp_path / "kfp" / "out").iterdir())
    executed = json.loads((run / "slow" / NOTEBOOK_OUTPUT).read_text())
    assert "time.sleep(seconds)" in "".join(executed["cells"][-2]["source"])
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("slow").experiment_id])
    status = {r.data.tags.get("mlops.step", "pipeline"): r.info.status for r in runs}
    assert status == {"pipeline": "FAILED", "slow": "FAILED"}
