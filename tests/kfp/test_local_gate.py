"""notebooks/05_gate_and_promote.ipynb compiled and run under kfp.local against a SQLite registry
whose champion it beats: the gate task judges the gates inside the pipeline, registers the
winner as @challenger with its gates' verdicts and promotes it; a failing quality gate fails the
task, registering none."""

from __future__ import annotations

import io

import pytest
from kfp_helpers import ROOT, run_local

from jupyter_mlops.kfp import compile_notebook
from jupyter_mlops.kfp.gate import GATE_TASK
from jupyter_mlops.models.gates import GateFailed
from jupyter_mlops.models.release import ReleasePlan, release_pipeline_run
from jupyter_mlops.steps import mlflow_vocabulary as vocab

NOTEBOOK = ROOT / "notebooks" / "05_gate_and_promote.ipynb"
MODEL = "Churn_Classifier"


def _seed_champion(uri: str) -> None:
    """v1 of the model, a boosting model whose run scored f1 0.8, holding @champion."""
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.ensemble import GradientBoostingClassifier

    from jupyter_mlops.models import registry
    from jupyter_mlops.steps.model_logging import log_model

    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("Churn Baseline"), run_name="baseline")
    client.log_metric(run.info.run_id, "f1", 0.8)
    rng = np.random.default_rng(3)
    baseline = GradientBoostingClassifier(n_estimators=5).fit(rng.normal(size=(50, 12)),
                                                              rng.integers(0, 2, 50))
    info = log_model(client, run.info.run_id, baseline, name="winner")
    client.set_terminated(run.info.run_id)
    registry.register(info.model_id, MODEL, alias="champion", store=client)


@pytest.fixture(scope="module")
def kfp_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("Churn_KFP")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    _seed_champion(uri)
    compiled = compile_notebook(NOTEBOOK, install_packages=False)
    log = io.StringIO()
    run = run_local(compiled.pipeline, folder / "kfp", log, MLFLOW_TRACKING_URI=uri,
                    label_noise=0.02)
    return compiled, run, uri, log.getvalue()


def test_the_gate_task_registers_the_winner_and_promotes_it_over_the_champion(kfp_run):
    from mlflow import MlflowClient

    compiled, run, uri, log = kfp_run
    assert f"comp-{GATE_TASK}:" in compiled.yaml
    assert (run / GATE_TASK / "executor_output.json").is_file()  # it ran, after the steps
    assert "gate accuracy>=0.7: passed" in log
    assert "gate f1>champion: passed" in log and f"{MODEL} v1 (champion)'s f1 0.8" in log
    assert f"registered {MODEL} v2 as @challenger" in log
    assert f"{MODEL} v2 is now @champion (was v1)" in log
    client = MlflowClient(uri)
    aliases = {k: int(v) for k, v in client.get_registered_model(MODEL).aliases.items()}
    assert aliases == {"champion": 2, "challenger": 2}
    version = client.get_model_version(MODEL, "2")
    assert version.tags[vocab.previous_holder_tag("champion")] == "1"
    assert version.tags[vocab.gate_tag("f1>champion")].startswith(  # recorded, as locally
        "gate f1>champion: passed, f1 = 0.")
    step = client.get_run(version.run_id).data.tags
    assert (step[vocab.STEP_TAG], step[vocab.BACKEND_TAG]) == ("choose", vocab.BACKEND_KFP)


def test_a_failing_quality_gate_fails_the_gate_task_and_registers_nothing(kfp_run):
    from mlflow import MlflowClient

    compiled, _, uri, _ = kfp_run
    plan = ReleasePlan.of(compiled.graph)
    assert plan is not None
    with pytest.raises(GateFailed, match=r"pipeline run run-2: gate accuracy>=0\.7: failed, "
                                         r"accuracy = 0\.61, threshold >= 0\.7"):
        release_pipeline_run(plan, {"accuracy": 0.61, "f1": 0.99}, uri,
                             compiled.graph.name, "run-2")
    assert len(MlflowClient(uri).search_model_versions(f"name = '{MODEL}'")) == 2
