"""The step cache never serves a wrong value: an entry edited through a run folder, truncated,
with a broken manifest or garbage metrics is found, named, quarantined and recomputed;
`--no-cache` rewrites entries; a run killed with SIGKILL is marked failed by the next run,
its temp files removed."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.runner import RunOptions, run_pipeline

from .conftest import assert_clear_error, cli

EXPECTED = {"forecast_total": 300.0}  # (120 + 80) * 1.5


def _write_notebook(path: Path, cells: list[tuple[list[str], str]]) -> Path:
    notebook = new_notebook(cells=[new_code_cell(source, metadata={"tags": tags})
                                   for tags, source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


def sales_forecast(folder: Path) -> Path:
    return _write_notebook(folder / "Sales_Forecast.ipynb", [
        (["parameters"], "growth = 1.5"),
        (["step:load-sales"], 'weekly_sales = {"north": 120.0, "south": 80.0}'),
        (["step:forecast"], "forecast_total = sum(weekly_sales.values()) * growth"),
        (["metrics"], "forecast_total"),
    ])


def _run(folder: Path, **options):
    stream = io.StringIO()
    options.setdefault("jobs", 1)
    result = run_pipeline(folder / "Sales_Forecast.ipynb", RunOptions(
        out=folder / ".mlops", track=False, stream=stream, **options))
    return result, stream.getvalue()


def _entry(folder: Path, result, step: str) -> Path:
    return folder / ".mlops" / "cache" / result.steps[step].cache_key


def _overwrite(path: Path, data: bytes) -> None:
    """What a user (or a full disk) can do to a file, read-only or not."""
    path.chmod(0o644)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    folder = tmp_path_factory.mktemp("Sales_Team")
    sales_forecast(folder)
    result, _ = _run(folder)
    assert result.ok, result.failures
    assert result.metrics == EXPECTED
    return folder, result


@pytest.fixture
def workspace(cold, tmp_path):
    """A copy of the cold run's folder, its cache and run folder included."""
    folder = tmp_path / "Sales_Team"
    shutil.copytree(cold[0], folder)
    return folder, cold[1]


@pytest.mark.fault("wrong")
def test_editing_a_value_in_a_run_folder_leaves_the_cache_entry_as_it_was(workspace):
    folder, cold = workspace
    value = folder / ".mlops" / "runs" / cold.run_id / "data" / "load-sales" / "weekly_sales.pkl"
    _overwrite(value, pickle.dumps({"north": 1.0, "south": 1.0}))  # a user trying a what-if

    result, _ = _run(folder, from_step="forecast")
    assert result.ok, result.failures
    assert result.steps["load-sales"].status == "cached"
    assert result.metrics == EXPECTED


@pytest.mark.fault("wrong")
def test_a_changed_cache_entry_is_quarantined_named_and_recomputed(workspace):
    folder, cold = workspace
    entry = _entry(folder, cold, "load-sales")
    _overwrite(entry / "data" / "weekly_sales.pkl", pickle.dumps({"north": 1.0, "south": 1.0}))

    result, progress = _run(folder)
    assert result.ok, result.failures
    assert result.steps["load-sales"].status == "ok"  # ran again, not served
    assert result.metrics == EXPECTED
    line = next(line for line in progress.splitlines() if "cached result was not used" in line)
    assert "load-sales" in line and "data/weekly_sales.pkl was changed or damaged" in line
    assert list((folder / ".mlops" / "cache" / "quarantine").glob(f"{entry.name}-*"))
    again, _ = _run(folder)  # the recomputed entry is served from now on
    assert again.steps["load-sales"].status == "cached" and again.metrics == EXPECTED


@pytest.mark.fault("traceback")
def test_a_truncated_cache_pickle_is_named_and_recomputed(workspace):
    folder, cold = workspace
    value = _entry(folder, cold, "load-sales") / "data" / "weekly_sales.pkl"
    _overwrite(value, value.read_bytes()[:10])

    result = cli("run", "Sales_Forecast.ipynb", "--no-track", "--jobs", "1", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "load-sales" in result.stderr and "weekly_sales.pkl was changed or damaged" in \
        result.stderr
    summary = _latest_summary(folder)
    assert summary["status"] == "ok" and summary["metrics"] == EXPECTED


@pytest.mark.fault("wrong")
def test_no_cache_rewrites_the_entries_it_recomputes(workspace):
    folder, cold = workspace
    value = _entry(folder, cold, "load-sales") / "data" / "weekly_sales.pkl"
    whole = value.read_bytes()
    _overwrite(value, whole[:10])

    result, _ = _run(folder, cache=False)
    assert result.ok, result.failures
    assert value.read_bytes() == whole
    assert value.stat().st_mode & 0o222 == 0  # entries are read-only from the user's side


@pytest.mark.fault("wrong")
def test_a_broken_value_manifest_in_the_cache_is_recomputed_not_a_killed_run(workspace):
    folder, cold = workspace
    _overwrite(_entry(folder, cold, "load-sales") / "data" / "weekly_sales.json", b"{broken")

    result, progress = _run(folder)
    assert result.ok, (result.failures, progress)
    assert {name: step.status for name, step in result.steps.items()} == {
        "load-sales": "ok", "forecast": "cached"}  # same value again: its key still matches
    assert "interrupted" not in progress and "cannot save" not in progress
    assert "data/weekly_sales.json was changed or damaged" in progress
    summary = _latest_summary(folder)
    assert summary["status"] == "ok" and set(summary["steps"]) == {"load-sales", "forecast"}
    assert summary["metrics"] == EXPECTED


@pytest.mark.fault("lost")
def test_garbage_cached_metrics_are_recomputed_not_dropped(workspace):
    folder, cold = workspace
    _overwrite(_entry(folder, cold, "forecast") / "metrics.json", b"garbage")

    result, progress = _run(folder)
    assert result.ok, result.failures
    assert result.steps["forecast"].status == "ok"
    assert result.metrics == EXPECTED
    assert "metrics.json was changed or damaged" in progress


def _latest_summary(folder: Path) -> dict:
    summaries = (folder / ".mlops" / "runs").glob("*/run.json")
    return json.loads(max(summaries, key=lambda path: path.stat().st_mtime_ns).read_text())


def _children(pid: int) -> list[int]:
    """The processes `pid` started (its kernels), read from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


@pytest.mark.fault("lost")
@pytest.mark.parametrize("settler", ["run", "sync"])
def test_a_run_killed_with_sigkill_is_marked_failed_by_a_later_run_or_sync(tmp_path, settler,
                                                                            monkeypatch):
    folder = tmp_path / "Sales_Team"
    folder.mkdir()
    _write_notebook(folder / "Slow_Forecast.ipynb", [
        (["step:wait-for-data"], "import time\nprint('waiting', flush=True)\ntime.sleep(120)"),
    ])
    sales_forecast(folder)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    argv = [sys.executable, "-m", "jupyter_mlops.cli", "run", "Slow_Forecast.ipynb", "--no-track"]
    runner = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        for line in runner.stderr:
            if "started" in line:
                break
        runs = list((folder / ".mlops" / "runs").iterdir())
        assert len(runs) == 1
        kernels = _children(runner.pid)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        runner.kill()
        for pid in _children(runner.pid) if runner.poll() is None else kernels:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    summary = runs[0] / "run.json"
    assert json.loads(summary.read_text())["status"] == "running"
    assert list(temp.glob("mlops-*")), "the killed run left no kernel log or sockets to clean"

    monkeypatch.setenv("TMPDIR", str(temp))  # the later command looks where the run kept them
    if settler == "run":
        later = cli("run", "Sales_Forecast.ipynb", "--no-track", "--jobs", "1", cwd=folder)
    else:
        monkeypatch.setenv("HOME", str(tmp_path))  # no other spool on this machine is replayed
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        later = cli("sync", cwd=folder)
    assert later.returncode == 0, later.stderr
    dead = json.loads(summary.read_text())
    assert dead["status"] == "failed"
    assert "ended without finishing" in dead["error"]
    told = later.stdout + later.stderr
    assert f"{runs[0].name} marked failed" in told  # the user is told which run was settled
    assert list(temp.glob("mlops-*")) == []  # its kernel logs and socket folders removed


@pytest.mark.fault("traceback")
def test_a_cache_entry_that_cannot_be_read_fails_only_with_only_and_names_the_step(workspace):
    folder, cold = workspace
    _overwrite(_entry(folder, cold, "load-sales") / "data" / "weekly_sales.pkl", b"")

    result = cli("run", "Sales_Forecast.ipynb", "--no-track", "--only", "forecast", cwd=folder)
    assert_clear_error(result, "load-sales", "weekly_sales.pkl was changed or damaged")
