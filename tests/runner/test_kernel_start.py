"""Kernels that die at start: replaced within a bounded number of attempts, each one shown in the
progress, or the run fails fast naming the kernel. The kernels are real: a `python3` kernel spec
found first on JUPYTER_PATH runs a wrapper that exits at once for its first invocations (counted
in a file), then becomes an ordinary IPython kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.runner.kernels import START_ATTEMPTS

CLI = Path(sys.executable).parent / "jupyter-mlops"

WRAPPER = textwrap.dedent("""\
    import os, sys
    connection_file, counter, failures = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(counter, "a") as handle:
        handle.write("x")
    with open(counter) as handle:
        started = len(handle.read())
    if started <= failures:
        print(f"broken environment: cannot load libfeature.so (start {started})", file=sys.stderr)
        sys.exit(3)
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file])
    """)


def _flaky_kernel_env(folder: Path, failures: int) -> tuple[dict[str, str], Path]:
    """An environment whose `python3` kernel dies at start `failures` times, then works."""
    spec = folder / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    wrapper, counter = folder / "flaky_kernel.py", folder / "kernel_starts.txt"
    wrapper.write_text(WRAPPER)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(wrapper), "{connection_file}", str(counter), str(failures)],
        "display_name": "Python 3 (flaky)", "language": "python"}))
    return {**os.environ, "JUPYTER_PATH": str(folder / "jupyter")}, counter


def _notebook(folder: Path) -> Path:
    cells = [new_code_cell("n_rows = 40", metadata={"tags": ["parameters"]}),
             new_code_cell("rows = list(range(n_rows))", metadata={"tags": ["step:load-rows"]}),
             new_code_cell("total = sum(rows)", metadata={"tags": ["step:sum-rows"]}),
             new_code_cell("total", metadata={"tags": ["metrics"]})]
    path = folder / "Feature_Prep.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def _run(notebook: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run(
        [str(CLI), "run", str(notebook), "--no-track", "--jobs", "1",
         "--out", str(notebook.parent / "out")],
        cwd=notebook.parent, env=env, capture_output=True, text=True, timeout=300)
    return done, time.monotonic() - start


def test_a_kernel_that_dies_at_start_is_replaced_and_the_run_succeeds(tmp_path):
    env, counter = _flaky_kernel_env(tmp_path, failures=1)
    done, _ = _run(_notebook(tmp_path), env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "died at start (the kernel exited with code 3: broken environment" in output
    assert f"starting another kernel (attempt 2 of {START_ATTEMPTS})" in output
    assert "load-rows" in output and "sum-rows" in output and "ok" in output
    assert len(counter.read_text()) >= 2  # the dead one and its replacement
    summary = json.loads(next((tmp_path / "out" / "runs").glob("*/run.json")).read_text())
    assert {name: step["status"] for name, step in summary["steps"].items()} == {
        "load-rows": "ok", "sum-rows": "ok"}


def test_a_kernel_that_always_dies_fails_the_run_fast_naming_the_kernel(tmp_path):
    env, counter = _flaky_kernel_env(tmp_path, failures=1000)
    done, elapsed = _run(_notebook(tmp_path), env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert (f"step 'load-rows' failed: the 'python3' kernel died at start {START_ATTEMPTS} "
            "times in a row (kernel-") in output
    assert "the kernel exited with code 3" in output
    assert "cannot load libfeature.so" in output  # the kernel's own last words
    assert "upstream step 'load-rows' failed" in output  # the next step is skipped, not run
    # Bounded: the starter's attempts and, at worst, the step's own.
    assert START_ATTEMPTS <= len(counter.read_text()) <= 2 * START_ATTEMPTS
    # Fast: no wait for a kernel that is gone (the command's own start-up included).
    assert elapsed < 45, output
