"""`jupyter-mlops submit -p` reads values by the one parameter grammar, as `run` does.

The shared cases of tests/data/parameters (the same ones the runner, REST and sweep tests
run), submitted to the local stand-in of the KFP API: what was accepted arrives typed in the
run's runtime config; what was refused is never sent and says the grammar's message.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from kfp_api_standin import KfpApiStandIn
from kfp_helpers import ROOT

from jupyter_mlops.cli import main

PARAMS = ROOT / "tests" / "data" / "parameters"
CASES = json.loads((PARAMS / "cases.json").read_text())
NOTEBOOK = CASES["notebook"]


@pytest.fixture(autouse=True)
def _in_the_notebooks_folder(no_ambient_kfp, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp/context.json
    shutil.copy(PARAMS / NOTEBOOK, tmp_path / NOTEBOOK)
    monkeypatch.chdir(tmp_path)


def _pairs(given: dict[str, str]) -> list[str]:
    return [arg for name, text in given.items() for arg in ("-p", name, text)]


@pytest.mark.parametrize("case", CASES["accepted"], ids=["literals", "json"])
def test_submit_sends_values_typed_by_the_notebook(case, capsys):
    tracking = "http://mlflow.example:5000"  # a pipeline input the compiler adds, not a parameter
    with KfpApiStandIn() as api:
        code = main(["submit", NOTEBOOK, "--host", api.url, *_pairs(case["given"]),
                     "-p", "MLFLOW_TRACKING_URI", tracking])
    assert code == 0, capsys.readouterr().err
    (run,) = api.posted("/apis/v2beta1/runs")
    assert run.body["runtime_config"]["parameters"] == case["values"] | {
        "MLFLOW_TRACKING_URI": tracking}


def test_a_compiled_pipeline_reads_values_by_its_input_types(tmp_path, capsys):
    assert main(["compile", NOTEBOOK, "-o", "churn.yaml"]) == 0
    inputs = yaml.safe_load(Path("churn.yaml").read_text())["root"]["inputDefinitions"]
    assert inputs["parameters"]["C"]["parameterType"] == "NUMBER_DOUBLE"
    case = CASES["accepted"][0]
    with KfpApiStandIn() as api:
        assert main(["submit", "churn.yaml", "--host", api.url, *_pairs(case["given"])]) == 0
        (run,) = api.posted("/apis/v2beta1/runs")
        assert run.body["runtime_config"]["parameters"] == case["values"]
        refused = CASES["refused"][0]  # the same message, naming the file submitted
        assert main(["submit", "churn.yaml", "--host", api.url,
                     "-p", refused["name"], refused["text"]]) == 1
    assert f"error: churn.yaml: {refused['message']}" in capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("case", CASES["refused"],
                         ids=[f"{c['name']}={c['text']}" for c in CASES["refused"]])
def test_submit_refuses_with_the_grammars_message_before_sending(case, capsys):
    with KfpApiStandIn() as api:
        code = main(["submit", NOTEBOOK, "--host", api.url, "-p", case["name"], case["text"]])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {NOTEBOOK}: {case['message']}" in err.splitlines(), err
    assert api.behaviour.requests == []
