"""The notebook's KFP runs for the Runs panel: read from the configured host only, through
kfp.Client, against the KFP tests' local stand-in of the KFP API server."""

from __future__ import annotations

import pytest

from .conftest import fetch_json

RUNS = [
    {"run_id": "run-b", "display_name": "example 2026-12-01 10:20:00", "experiment_id": "exp-1",
     "state": "RUNNING", "created_at": "2026-12-01T10:20:00Z",
     "finished_at": "1970-01-01T00:00:00Z", "pipeline_spec": {"pipelineInfo": {"name": "example"}}},
    {"run_id": "run-x", "display_name": "another pipeline", "experiment_id": "exp-1",
     "state": "SUCCEEDED", "created_at": "2026-12-01T10:10:00Z",
     "finished_at": "2026-12-01T10:11:00Z", "pipeline_spec": {"pipelineInfo": {"name": "other"}}},
    {"run_id": "run-a", "display_name": "example 2026-12-01 10:00:00", "experiment_id": "exp-2",
     "state": "FAILED", "created_at": "2026-12-01T10:00:00Z",
     "finished_at": "2026-12-01T10:05:30Z", "pipeline_spec": {"pipelineInfo": {"name": "example"}}},
]


# The stand-in lists these runs.
LISTING = pytest.mark.parametrize("kfp_api", [{"runs": RUNS}], indirect=True, ids=["runs"])


@pytest.fixture(autouse=True)
def _no_ambient_kfp(no_ambient_kfp, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp/context.json


@LISTING
async def test_the_notebooks_pipeline_runs_come_from_the_configured_host(  # noqa: ANN001
        jp_fetch, notebooks, kfp_api) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "kfp-runs",
                                  params={"notebook": "example.ipynb", "host": "http://x:9"})
    assert code == 200, body
    assert body["pipeline"] == "example"
    assert body["runs"] == [
        {"id": "run-b", "name": "example 2026-12-01 10:20:00", "state": "RUNNING",
         "created_at": "2026-12-01T10:20:00Z", "finished_at": None,
         "url": f"{kfp_api.url}/#/runs/details/run-b"},
        {"id": "run-a", "name": "example 2026-12-01 10:00:00", "state": "FAILED",
         "created_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:05:30Z",
         "url": f"{kfp_api.url}/#/runs/details/run-a"}]
    (listed,) = [r for r in kfp_api.behaviour.requests if r.path.startswith("/apis/v2beta1/runs")]
    assert "sort_by=created_at" in listed.path and listed.method == "GET"


@LISTING
async def test_a_refusing_kfp_server_is_a_502_with_its_message(jp_fetch, notebooks,  # noqa: ANN001
                                                              kfp_api) -> None:
    kfp_api.behaviour.status = 403
    code, body = await fetch_json(jp_fetch, "mlops", "api", "kfp-runs",
                                  params={"notebook": "example.ipynb"})
    assert code == 502 and "refused these credentials (403 Forbidden)" in body["message"]


@pytest.mark.parametrize("kfp_host", [""])
async def test_without_a_host_the_route_says_how_to_configure_one(jp_fetch, notebooks,  # noqa: ANN001
                                                                  kfp_host) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "kfp-runs",
                                  params={"notebook": "example.ipynb"})
    assert (code, body["code"]) == (409, "kfp-not-configured")
    assert "MlopsExtension.kfp_host" in body["message"]
