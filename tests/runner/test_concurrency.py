"""Independent steps run at the same time, never more than --jobs; kernels start ahead of need."""

from __future__ import annotations

import tempfile
import time
from datetime import datetime

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.runner.kernels import KernelPool
from jupyter_mlops.steps import serializers

from .conftest import copy_notebook, run, statuses


def _window(path):
    meta = nbformat.read(path, as_version=4).metadata["papermill"]
    return datetime.fromisoformat(meta["start_time"]), datetime.fromisoformat(meta["end_time"])


def test_two_branches_run_at_the_same_time_with_two_jobs(tmp_path):
    notebook = copy_notebook("meet", tmp_path)
    (tmp_path / "meet").mkdir()
    # Each branch waits (up to 20 s) until the other has started: both succeed only together.
    result = run(notebook, tmp_path / "out", jobs=2,
                 parameters={"meet_dir": str(tmp_path / "meet")})
    assert result.ok, result.failures
    data = result.run_dir / "data"
    assert serializers.load(data / "branch-a", "saw_b") is True
    assert serializers.load(data / "branch-b", "saw_a") is True


def test_on_a_cold_run_the_second_branch_does_not_wait_for_the_first_kernel(tmp_path):
    """Both kernels warm up at once: the second is ready when the branches are, though the
    setup's import takes longer than the first branch (then it used to run after it)."""
    # A setup import as slow as a heavy library on a cold disk, beside the notebook.
    (tmp_path / "churn_features.py").write_text("import time\ntime.sleep(6)\n")
    cells = [new_code_cell("import time\nimport churn_features", metadata={"tags": ["setup"]}),
             new_code_cell("rows = 100", metadata={"tags": ["step:load"]})]
    cells += [new_code_cell(f"time.sleep(4)\n{name}_rows = rows",
                            metadata={"tags": [f"step:train-{name}"]})
              for name in ("forest", "logreg")]
    notebook = tmp_path / "Churn_Branches.ipynb"
    nbformat.write(new_notebook(cells=cells), notebook)
    result = run(notebook, tmp_path / "out", jobs=2)
    assert result.ok, result.failures
    (start_f, end_f), (start_l, end_l) = (_window(result.run_dir / f"train-{name}.ipynb")
                                          for name in ("forest", "logreg"))
    assert start_f < end_l and start_l < end_f  # the two executions overlapped


def test_one_job_runs_one_step_at_a_time(tmp_path):
    notebook = copy_notebook("meet", tmp_path)
    (tmp_path / "meet").mkdir()
    result = run(notebook, tmp_path / "out", jobs=1,
                 parameters={"meet_dir": str(tmp_path / "meet"), "wait_s": 0.0})
    assert statuses(result) == {"start": "ok", "branch-a": "ok", "branch-b": "ok", "end": "ok"}
    windows = sorted(_window(result.run_dir / f"{step}.ipynb") for step in result.steps)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert end <= start  # no two step notebooks executing at once
    assert serializers.load(result.run_dir / "data" / "branch-a", "saw_b") is False


@pytest.fixture
def pool(tmp_path):
    with KernelPool(tmp_path, tmp_path, warm_code="import json") as kernels:
        yield kernels


def test_the_pool_starts_kernels_before_they_are_taken(pool):
    pool.want(2)
    deadline = time.monotonic() + 240  # kernels start in ≈ 1 s alone, far slower under load
    while pool.idle_count < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.idle_count == 2
    asked = time.monotonic()
    kernel = pool.take()
    assert kernel.started < asked  # launched ahead of need, not on the step's path
    assert kernel.km.is_alive()
    pids = pool.live_pids()
    assert len(pids) >= 2
    pool.release(kernel)
    pool.close()
    assert pool.live_pids() == []
    for pid in pids:
        assert not _running(pid)


def test_a_step_asking_while_the_starter_warms_a_kernel_gets_that_kernel(tmp_path):
    with KernelPool(tmp_path, tmp_path, warm_code="import json") as pool:
        pool.want(1)
        deadline = time.monotonic() + 120
        while not pool.live_pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        kernel = pool.take()  # while kernel-1 boots and warms: it waits for it
        assert kernel.name == "kernel-1" and kernel.ready  # not a second one started for it
        assert kernel.km.is_alive()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _run_code(kernel, code: str) -> dict:
    client = kernel.km.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        outputs: list = []
        reply = client.execute_interactive(code, timeout=60, output_hook=outputs.append)
        texts = [o["content"].get("text", "") for o in outputs if o["msg_type"] == "stream"]
        return {"status": reply["content"]["status"], "count": reply["content"].get(
            "execution_count"), "text": "".join(texts)}
    finally:
        client.stop_channels()


def test_a_reused_kernel_keeps_nothing_of_the_step_before(tmp_path):
    with KernelPool(tmp_path, tmp_path, reuse=True) as pool:
        kernel = pool.take()
        (tmp_path / "elsewhere").mkdir()
        _run_code(kernel, "import os, json\nleaked = 42\nos.chdir('elsewhere')")
        pool.release(kernel, reusable=True)
        again = pool.take()
        assert again is kernel  # reset and handed out again, warm
        seen = _run_code(again, "import os, sys\n"
                                "print('leaked' in globals(), 'json' in globals(), os.getcwd())\n"
                                "print('json' in sys.modules)")
        assert seen["text"].split() == ["False", "False", str(tmp_path), "True"]
        assert seen["count"] == 1  # numbering restarts: the step notebook reads In [1], ...


def test_a_failed_steps_kernel_is_never_reused(tmp_path):
    with KernelPool(tmp_path, tmp_path, reuse=True) as pool:
        kernel = pool.take()
        pid = pool.live_pids()[0]
        pool.release(kernel, reusable=False)
        assert pool.take() is not kernel
        deadline = time.monotonic() + 120
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid)


def test_a_kernel_launched_before_the_run_has_a_folder_is_warmed_and_logs_into_it(tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with KernelPool(tmp_path, reuse=True) as pool:
        pool.launch()  # as run_pipeline does before it reads the notebook
        logs = tmp_path / "logs"
        logs.mkdir()
        pool.log_dir, pool.warm_code = logs, "import colorsys"  # known once it was read
        kernel = pool.take()
        seen = _run_code(kernel, "import sys\nprint('colorsys' in sys.modules)\n"
                                 "print('kernel-side note', file=sys.__stderr__, flush=True)")
        assert seen["text"].split() == ["True"]  # warmed with the code set after the launch
        pool.release(kernel, reusable=True)
    assert "kernel-side note" in (logs / "kernel-1.log").read_text()  # the kernel's own output
    assert list((tmp_path / "tmp").iterdir()) == []  # the staging log moved, none left behind
