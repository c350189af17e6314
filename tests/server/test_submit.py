"""Submit to Kubeflow: the host is the server's setting; a request cannot choose another one.

Against the KFP tests' local stand-in of the KFP API server (the only fake allowed).
"""

from __future__ import annotations

import json

import pytest

from .conftest import fetch_json

pytestmark = pytest.mark.usefixtures("no_ambient_kfp")


async def _submit(jp_fetch, body: dict) -> tuple[int, dict]:  # noqa: ANN001
    return await fetch_json(jp_fetch, "mlops", "api", "submit", method="POST",
                            body=json.dumps(body))


async def test_config_says_submission_is_enabled(jp_fetch, notebooks, kfp_api) -> None:  # noqa: ANN001
    code, body = await fetch_json(jp_fetch, "mlops", "api", "config")
    assert code == 200 and body["kfp_enabled"] is True and body["kfp_hint"] is None
    assert kfp_api.url not in json.dumps(body)  # the host itself stays on the server


async def test_submit_goes_to_the_configured_host_only(jp_fetch, notebooks, kfp_api) -> None:  # noqa: ANN001
    code, body = await _submit(jp_fetch, {"path": "example.ipynb", "parameters": {"seed": 11},
                                          "host": "http://127.0.0.1:9"})
    assert code == 201, body
    assert body["kind"] == "run" and body["id"] == "run-1"
    assert body["url"] == f"{kfp_api.url}/#/runs/details/run-1"
    (run,) = kfp_api.posted("/apis/v2beta1/runs")
    assert run.body["pipeline_spec"]["pipelineInfo"]["name"] == "example"
    assert run.body["runtime_config"]["parameters"] == {"seed": 11}
    (experiment,) = kfp_api.posted("/apis/v2beta1/experiments")
    assert experiment.body["display_name"] == body["experiment"]


async def test_a_refusing_kfp_server_is_a_502_with_a_message(jp_fetch, notebooks,  # noqa: ANN001
                                                            kfp_api) -> None:
    kfp_api.behaviour.status = 403
    code, body = await _submit(jp_fetch, {"path": "example.ipynb"})
    assert (code, body["code"]) == (502, "kfp-submit-failed")
    assert body["message"] and "Traceback" not in body["message"]
    assert str(notebooks) not in body["message"]


async def test_submit_checks_the_notebook_first(jp_fetch, notebooks, kfp_api) -> None:  # noqa: ANN001
    code, body = await _submit(jp_fetch, {"path": "cycle.ipynb"})
    assert (code, body["code"]) == (400, "invalid-notebook")
    code, body = await _submit(jp_fetch, {"path": "../example.ipynb"})
    assert (code, body["code"]) == (404, "not-found")
    code, body = await _submit(jp_fetch, {"path": "example.ipynb", "parameters": "x"})
    assert (code, body["code"]) == (400, "bad-parameters")
    code, body = await _submit(jp_fetch, {"path": "example.ipynb", "experiment": ["x"]})
    assert (code, body["code"]) == (400, "bad-experiment")
    assert kfp_api.behaviour.requests == []



async def test_a_schedule_creates_a_recurring_run_in_kfp_cron(jp_fetch, notebooks,  # noqa: ANN001
                                                             kfp_api) -> None:
    code, body = await _submit(jp_fetch, {"path": "example.ipynb", "schedule": "30 6 * * MON-FRI"})
    assert code == 201, body
    assert (body["kind"], body["id"], body["schedule"]) == ("recurring run", "rec-1",
                                                            "0 30 6 * * MON-FRI")
    (job,) = kfp_api.behaviour.recurring_runs
    assert job["trigger"]["cron_schedule"]["cron"] == "0 30 6 * * MON-FRI"
    assert job["pipeline_spec"]["pipelineInfo"]["name"] == "example"
    assert kfp_api.posted("/apis/v2beta1/runs") == []


@pytest.mark.parametrize(("schedule", "named"), [
    ("61 * * * *", "the minute field '61': '61' is out of range 0-59"),
    ("0 6 * * 1-9", "the day-of-week field '1-9': '9' is out of range 0-6"),
    ("every day", "it has 2 fields"),
])
async def test_a_bad_schedule_is_refused_naming_the_field_before_anything_is_sent(  # noqa: ANN001
        jp_fetch, notebooks, kfp_api, schedule, named) -> None:
    code, body = await _submit(jp_fetch, {"path": "example.ipynb", "schedule": schedule})
    assert (code, body["code"]) == (400, "bad-schedule")
    assert named in body["message"] and "6 fields, seconds minute hour" in body["message"]
    assert kfp_api.behaviour.requests == []
