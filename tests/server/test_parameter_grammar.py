"""The REST API reads parameter values by the one parameter grammar, as the command line does.

The shared cases of tests/data/parameters (the same ones the runner, KFP and sweep tests run),
posted to POST /local-runs and POST /submit (against the KFP tests' stand-in of the KFP API):
a value may come as text (a form's field) or as JSON data; a refusal is a 400 with the
grammar's message, before any run starts or anything is sent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import fetch_json
from .test_local_runs import _poll, _start

PARAMS = Path(__file__).resolve().parents[1] / "data" / "parameters"
CASES = json.loads((PARAMS / "cases.json").read_text())
NOTEBOOK = CASES["notebook"]
REFUSED_IDS = [f"{c['name']}={c['text']}" for c in CASES["refused"]]


@pytest.fixture
def churn(jp_root_dir: Path, no_ambient_kfp) -> Path:  # noqa: ANN001
    shutil.copy(PARAMS / NOTEBOOK, jp_root_dir / NOTEBOOK)
    return jp_root_dir


async def _post(jp_fetch, endpoint: str, parameters: dict) -> tuple[int, dict]:  # noqa: ANN001
    return await fetch_json(jp_fetch, "mlops", "api", endpoint, method="POST",
                            body=json.dumps({"path": NOTEBOOK, "parameters": parameters}))


@pytest.mark.parametrize("case", CASES["refused"], ids=REFUSED_IDS)
async def test_a_refused_value_is_a_400_with_the_grammars_message(jp_fetch, churn, kfp_api,  # noqa: ANN001
                                                                  case) -> None:
    for endpoint in ("local-runs", "submit"):
        code, body = await _post(jp_fetch, endpoint, {case["name"]: case["text"]})
        assert (code, body["code"]) == (400, "parameter-error"), body
        assert body["message"] == f"{NOTEBOOK}: {case['message']}"
    _, listed = await fetch_json(jp_fetch, "mlops", "api", "local-runs")
    assert listed["runs"] == []  # no run started
    assert kfp_api.behaviour.requests == []  # nothing sent to Kubeflow


@pytest.mark.parametrize("case", CASES["accepted"], ids=["literals", "json"])
async def test_submit_sends_text_and_json_values_typed(jp_fetch, churn, kfp_api, case) -> None:  # noqa: ANN001
    for parameters in (case["given"], case["values"]):  # a form's text, a client's JSON
        code, body = await _post(jp_fetch, "submit", parameters)
        assert code == 201, body
    runs = kfp_api.posted("/apis/v2beta1/runs")
    assert [r.body["runtime_config"]["parameters"] for r in runs] == [case["values"]] * 2


async def test_a_local_run_gets_the_values_typed(jp_fetch, churn) -> None:  # noqa: ANN001
    case = CASES["accepted"][0]
    job = await _start(jp_fetch, NOTEBOOK, parameters=case["given"])
    job, log = await _poll(jp_fetch, job["id"], lambda j, _: j["status"] != "running")
    assert job["status"] == "succeeded", log
    (summary,) = (churn / ".mlops" / "runs").glob("*/run.json")
    assert json.loads(summary.read_text())["parameters"] == case["values"]
