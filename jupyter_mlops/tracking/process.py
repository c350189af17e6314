"""Identity of the current process, recorded on runs so a dead kernel's runs can be found,
and settling them: RUNNING runs of a dead local process become FAILED."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from jupyter_mlops.steps.mlflow_vocabulary import HOST_TAG, PID_TAG, RECOVERED_TAG, START_TAG
from jupyter_mlops.tracking.sink import set_status


def _start_ticks(pid: int) -> str:
    """The process start time in clock ticks since boot ('' where /proc is absent).

    Together with the pid it tells a live process apart from a later one that reused the pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


_identity: dict[int, dict[str, str]] = {}


def identity_tags() -> dict[str, str]:
    """Read once per process (a forked child gets its own)."""
    pid = os.getpid()
    if pid not in _identity:
        _identity[pid] = {PID_TAG: str(pid), HOST_TAG: socket.gethostname(),
                          START_TAG: _start_ticks(pid)}
    return dict(_identity[pid])


def is_alive(pid: int, start: str = "") -> bool:
    """Whether the process that had `pid` (and started at `start`, if known) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start and _start_ticks(pid) not in ("", start):
        return False
    state = _state(pid)
    return state not in ("Z", "X")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def run_is_orphaned(tags: dict[str, str]) -> bool:
    """A run recorded by a process on this host that no longer exists."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    return not is_alive(int(tags[PID_TAG]), tags.get(START_TAG, ""))


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
