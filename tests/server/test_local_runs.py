"""Local runs in the background: start, poll the log, see the end; cancel a long one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from .conftest import _notebook, fetch_json

POLL_LIMIT = 600  # polls of 0.2 s: a bound on the loop, not a timing assertion


@pytest.fixture
def small(notebooks: Path) -> Path:
    nb = _notebook([(["parameters"], "n = 3"), (["step:make"], "values = list(range(n))"),
                    (["step:total"], "total = sum(values)\nprint('total', total)")])
    (notebooks / "small.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    slow = _notebook([(["step:wait"], "import time\ntime.sleep(120)")])
    (notebooks / "slow.ipynb").write_text(json.dumps(slow), encoding="utf-8")
    failing = _notebook([(["step:boom"], "raise ValueError('no data')")])
    (notebooks / "failing.ipynb").write_text(json.dumps(failing), encoding="utf-8")
    return notebooks


async def _start(jp_fetch, path: str, **extra: object) -> dict:
    code, job = await fetch_json(jp_fetch, "mlops", "api", "local-runs", method="POST",
                                 body=json.dumps({"path": path, **extra}))
    assert code == 201, job
    return job


async def _poll(jp_fetch, job_id: str, until) -> tuple[dict, str]:  # noqa: ANN001
    log, offset = "", 0
    for _ in range(POLL_LIMIT):
        _, job = await fetch_json(jp_fetch, "mlops", "api", "local-runs", job_id,
                                  params={"offset": offset})
        log, offset = log + job["log"], job["offset"]
        if until(job, log):
            return job, log
        await asyncio.sleep(0.2)
    raise AssertionError(f"gave up polling; last status {job['status']}, log:\n{log}")


async def test_a_local_run_runs_to_the_end(jp_fetch, small) -> None:
    job = await _start(jp_fetch, "small.ipynb", parameters={"n": 5})
    assert job["status"] == "running" and job["path"] == "small.ipynb"
    job, log = await _poll(jp_fetch, job["id"], lambda j, _: j["status"] != "running")
    assert job["status"] == "succeeded", log
    assert "local run finished" in log
    # Each step's state, its executed notebook and the run's folder, by API path; the runner's time.
    assert {name: s["status"] for name, s in job["steps"].items()} == {"make": "ok", "total": "ok"}
    run = job["run"]
    assert run["status"] == "ok" and run["duration"] > 0
    assert run["folder"] == f".mlops/runs/{run['run_id']}"
    assert job["steps"]["total"]["notebook"] == f"{run['folder']}/total.ipynb"
    assert (small / job["steps"]["total"]["notebook"]).is_file()
    _, listed = await fetch_json(jp_fetch, "mlops", "api", "local-runs")
    assert [j["id"] for j in listed["runs"]] == [job["id"]]


async def test_a_local_run_can_be_cancelled(jp_fetch, small) -> None:
    job = await _start(jp_fetch, "slow.ipynb")
    job, log = await _poll(jp_fetch, job["id"], lambda j, log: "started" in log
                           or j["status"] != "running")
    assert job["status"] == "running", log
    code, cancelled = await fetch_json(jp_fetch, "mlops", "api", "local-runs", job["id"],
                                       method="DELETE")
    assert code == 200 and cancelled["status"] == "cancelled"


async def test_local_run_errors(jp_fetch, small) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "local-runs", method="POST",
                                  body=json.dumps({"path": "cycle.ipynb"}))
    assert (code, body["code"]) == (400, "invalid-notebook")
    code, body = await fetch_json(jp_fetch, "mlops", "api", "local-runs", method="POST",
                                  body=json.dumps({"path": "small.ipynb", "parameters": [1]}))
    assert (code, body["code"]) == (400, "bad-parameters")
    code, body = await fetch_json(jp_fetch, "mlops", "api", "local-runs", "ffff")
    assert (code, body["code"]) == (404, "job-not-found")


async def test_a_failing_step_makes_a_failed_run(jp_fetch, small) -> None:
    job = await _start(jp_fetch, "failing.ipynb")
    job, log = await _poll(jp_fetch, job["id"], lambda j, _: j["status"] != "running")
    assert (job["status"], job["returncode"]) == ("failed", 1), log
    assert "boom" in log and "local run finished: failed" in log


async def test_stopping_the_server_ends_its_local_runs(jp_fetch, jp_serverapp, small) -> None:
    job = await _start(jp_fetch, "slow.ipynb")
    await _poll(jp_fetch, job["id"], lambda j, log: "started" in log or j["status"] != "running")
    extension = jp_serverapp.web_app.settings["jupyter_mlops"]
    jobs = extension.jobs
    folder = jobs.get(job["id"]).log_path.parent
    await jp_serverapp.extension_manager.stop_all_extensions()  # what a server stop calls
    assert jobs.get(job["id"]).status == "cancelled"
    assert not folder.exists()
