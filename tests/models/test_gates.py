"""Gates: the grammar, the verdicts, and the champion's metrics read from a real SQLite registry."""

from __future__ import annotations

import re

import pytest

from jupyter_mlops.errors import MlopsError
from jupyter_mlops.models.gates import (
    ConditionError,
    GateFailed,
    champion_of,
    check,
    parse_condition,
    version_metrics,
)
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.steps.gates import GateSyntaxError, evaluate, parse_gate


@pytest.mark.parametrize("text, metric, op, value, relative", [
    ("accuracy>=0.8", "accuracy", ">=", 0.8, False),
    ("f1>=champion", "f1", ">=", 0.0, True),
    ("auc >= champion+0.01", "auc", ">=", 0.01, True),
    ("rmse<champion-1e-3", "rmse", "<", -0.001, True),
    ("loss<=.5", "loss", "<=", 0.5, False),
    ("val.acc==1", "val.acc", "==", 1.0, False),
    ("delta>-2", "delta", ">", -2.0, False),
])
def test_conditions_parse_into_typed_gates(text, metric, op, value, relative):
    gate = parse_gate(text)
    assert (gate.metric, gate.op, gate.value, gate.relative) == (metric, op, value, relative)
    assert str(gate) == text


@pytest.mark.parametrize("text", ["accuracy>=", "accuracy=>0.8", "accuracy>=champion+",
                                  ">=0.8", "accuracy>=best", "accuracy>=0.8 extra"])
def test_a_malformed_condition_is_named_in_the_error(text):
    with pytest.raises(GateSyntaxError, match=re.escape(f"'{text}' is not a gate")):
        parse_gate(text)
    with pytest.raises(ConditionError, match=re.escape(f"--if: '{text}' is not a gate")) as caught:
        parse_condition(text)
    assert isinstance(caught.value, MlopsError)


def test_several_conditions_join_with_and_or_commas():
    gates = parse_condition("accuracy>=0.8 and f1>=champion,auc>champion+0.01")
    assert [str(g) for g in gates] == ["accuracy>=0.8", "f1>=champion", "auc>champion+0.01"]


def test_a_verdict_names_the_metric_its_value_and_the_threshold():
    passed = evaluate(parse_gate("accuracy>=0.8"), {"accuracy": 0.84})
    assert passed.passed and (passed.value, passed.threshold) == (0.84, 0.8)
    failed = evaluate(parse_gate("accuracy>=0.8"), {"accuracy": 0.72})
    assert not failed.passed
    assert failed.message == "gate accuracy>=0.8: failed, accuracy = 0.72, threshold >= 0.8"
    missing = evaluate(parse_gate("f1>0.5"), {"accuracy": 0.9})
    assert not missing.passed and "reported no metric 'f1'" in missing.message


def test_relative_gates_add_the_margin_to_the_champions_value():
    gate = parse_gate("auc>=champion+0.01")
    beaten = evaluate(gate, {"auc": 0.90}, {"auc": 0.85}, "churn v3 (champion)")
    assert beaten.passed and beaten.threshold == pytest.approx(0.86)
    assert "churn v3 (champion)'s auc 0.85 + 0.01" in beaten.message
    assert not evaluate(gate, {"auc": 0.90}, {"auc": 0.895}).passed
    alone = evaluate(gate, {"auc": 0.5}, None)
    assert alone.passed and alone.threshold is None
    assert "no champion to compare with" in alone.message


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A SQLite store with model `Churn_Model`: v1 from a cell's run, v2 from a pipeline step
    whose metrics the pipeline run reports; v2 holds `champion`. The versions point at their
    runs' artifacts (what the metrics are read from is the run, not the model files)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path_factory.mktemp('gates') / 'mlflow.db'}")
    experiment = client.create_experiment("Churn Gates")
    cell = client.create_run(experiment, run_name="train cell")
    client.log_metric(cell.info.run_id, "accuracy", 0.81)
    pipeline = client.create_run(experiment, run_name="pipeline-1",
                                 tags={vocab.KIND_TAG: vocab.KIND_PIPELINE})
    client.log_metric(pipeline.info.run_id, "accuracy", 0.88)
    client.log_metric(pipeline.info.run_id, "f1", 0.86)
    step = client.create_run(experiment, run_name="train", tags={
        vocab.KIND_TAG: vocab.KIND_STEP, vocab.PARENT_RUN_TAG: pipeline.info.run_id})
    client.log_metric(step.info.run_id, "f1", 0.87)  # the step's own value wins
    client.create_registered_model("Churn_Model")
    for run in (cell, step):
        client.create_model_version("Churn_Model", f"{run.info.artifact_uri}/forest",
                                    run_id=run.info.run_id)
    client.set_registered_model_alias("Churn_Model", "champion", "2")
    return client


def test_a_versions_metrics_come_from_its_run_and_a_step_run_from_its_pipeline(registry):
    assert version_metrics(registry, "Churn_Model", 1) == {"accuracy": 0.81}
    assert version_metrics(registry, "Churn_Model", "2") == {"accuracy": 0.88, "f1": 0.87}


def test_gates_against_the_champion_read_the_version_holding_the_alias(registry):
    champion = champion_of(registry, "Churn_Model")
    assert (champion.version, champion.label) == ("2", "Churn_Model v2 (champion)")
    results = check(parse_condition("accuracy>=0.8, f1>=champion+0.01"),
                    {"accuracy": 0.9, "f1": 0.875}, champion)
    assert [r.passed for r in results] == [True, False]
    assert results[1].threshold == pytest.approx(0.88)
    error = GateFailed(results, "Train_Churn.ipynb")
    assert str(error) == ("Train_Churn.ipynb: gate f1>=champion+0.01: failed, f1 = 0.875, "
                          "threshold >= 0.88 (Churn_Model v2 (champion)'s f1 0.87 + 0.01)")


def test_a_model_without_a_champion_passes_and_says_so(registry):
    for champion in (champion_of(registry, "Churn_Model", "ghost"),
                     champion_of(registry, "Never_Registered")):
        assert champion.version is None
        (result,) = check([parse_gate("f1>=champion")], {"f1": 0.1}, champion)
        assert result.passed and "no champion to compare with" in result.message


def test_a_condition_on_a_metric_the_version_lacks_suggests_the_close_one(registry, capsys):
    from jupyter_mlops.cli import main

    code = main(["models", "promote", "Churn_Model", "--version", "2", "--to", "challenger",
                 "--if", "f2>=0.5", "--tracking-uri", registry.tracking_uri])
    # it said only "the run reported no metric 'f2'"
    assert code == 3
    assert capsys.readouterr().err.endswith(
        "Churn_Model v2 not promoted to @challenger (@challenger stays on nobody): gate "
        "f2>=0.5: failed, the run reported no metric 'f2'; did you mean 'f1'?\n")
    assert registry.get_registered_model("Churn_Model").aliases == {"champion": 2}
