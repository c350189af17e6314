"""Settling runs whose kernel died: RUNNING runs of a dead local process become FAILED."""

from __future__ import annotations

import time
from typing import Any

from jupyter_mlops.steps.mlflow_vocabulary import HOST_TAG, PID_TAG, RECOVERED_TAG
from jupyter_mlops.tracking.process import run_is_orphaned
from jupyter_mlops.tracking.sink import set_status


def fail_dead_runs(client: Any, host: str) -> list[str]:
    """Mark FAILED every RUNNING run recorded by a process of `host` that no longer runs."""
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    failed: list[str] = []
    if not exp_ids:
        return failed
    query = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    token = None
    while True:
        page = client.search_runs(exp_ids, query, max_results=500, page_token=token)
        for run in page:
            if run_is_orphaned(run.data.tags):
                _fail(client, run)
                failed.append(run.info.run_id)
        token = page.token
        if not token:
            return failed


def _fail(client: Any, run: Any) -> None:
    pid = run.data.tags.get(PID_TAG)
    client.set_tag(run.info.run_id, RECOVERED_TAG, f"process {pid} ended without closing the run")
    set_status(client, run.info.run_id, "FAILED", int(time.time() * 1000))
