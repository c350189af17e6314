"""SIGINT or SIGTERM mid-run: kernels are shut down, runs are marked killed, nothing is orphaned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from jupyter_mlops.tracking.destination import open_client

from .conftest import copy_notebook, sqlite_uri

CLI = Path(sys.executable).parent / "jupyter-mlops"


def _tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment carries `tag` (the runner's children inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or a zombie
    return found


# Deadlines for killed kernels and orphans to be gone: waits end on the event, so a generous
# one costs nothing when the machine is fast, and a loaded one (2 cores, load 6+) needs it.
GONE_DEADLINE = 60.0


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_cleanly(tmp_path, signum):
    notebook = copy_notebook("slow", tmp_path)
    pids = tmp_path / "pids"
    pids.mkdir()
    tag = f"MLOPS_TEST_TAG={uuid.uuid4().hex}"
    env = {**os.environ, "MLOPS_TEST_TAG": tag.split("=")[1],
           "MLFLOW_TRACKING_URI": sqlite_uri(tmp_path)}
    proc = subprocess.Popen(
        [str(CLI), "run", str(notebook), "-p", "pid_dir", str(pids), "--jobs", "2",
         "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: len(list(pids.glob("*.pid"))) == 2, 90), "steps never started"
        kernels = [int(p.stem) for p in pids.glob("*.pid")]
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    for pid in kernels:
        assert _wait_for(lambda pid=pid: not _running(pid), GONE_DEADLINE), \
            f"kernel {pid} left running"
    summary = json.loads(next((tmp_path / "out" / "runs").glob("*/run.json")).read_text())
    assert summary["status"] == "killed"
    assert {n: s["status"] for n, s in summary["steps"].items()} == {
        "slow-a": "killed", "slow-b": "killed", "after": "killed"}
    # The command does not wait for MLflow: the sender process stores the runs after it ended.
    # Opened under the store's creation lock: the sender may be creating mlflow.db right now.
    client = open_client(sqlite_uri(tmp_path))
    assert _wait_for(lambda: _killed_runs(client, summary["run_id"]) == {
        "slow-a": "KILLED", "slow-b": "KILLED", "after": "KILLED"}, 240), \
        _killed_runs(client, summary["run_id"])
    # Then nothing of the run is left: the sender exits once it has sent everything.
    assert _wait_for(lambda: not _tagged_processes(tag.split("=")[1]), GONE_DEADLINE), \
        f"orphans: {_tagged_processes(tag.split('=')[1])}"


def _running(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


def _killed_runs(client, run_id: str) -> dict[str, str] | None:
    """The step runs' statuses once the pipeline's parent run is stored KILLED; else None."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(experiments, f"tags.`mlops.run_id` = '{run_id}'") \
        if experiments else []
    if not parents or parents[0].info.status != "KILLED":
        return None
    children = client.search_runs([parents[0].info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    return {c.data.tags["mlops.step"]: c.info.status for c in children}


def test_a_signal_while_the_notebook_is_read_stops_the_kernel_booting_early(tmp_path):
    """The first kernel boots before the runner has read the notebook; a SIGTERM as soon as it
    exists (the runner is then still loading) stops it and removes its staging log."""
    notebook = copy_notebook("slow", tmp_path)
    tag = uuid.uuid4().hex
    staging = tmp_path / "tmp"
    staging.mkdir()
    env = {**os.environ, "MLOPS_TEST_TAG": tag, "TMPDIR": str(staging)}
    proc = subprocess.Popen(
        [str(CLI), "run", str(notebook), "-p", "pid_dir", str(tmp_path), "--no-track",
         "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def kernels() -> list[int]:
        return [pid for pid in _tagged_processes(tag) if pid != proc.pid]

    try:
        assert _wait_for(kernels, 60), "no kernel started"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert _wait_for(lambda: not _tagged_processes(tag), GONE_DEADLINE), \
        f"orphans: {_tagged_processes(tag)}"
    assert not list(staging.glob("mlops-*"))
