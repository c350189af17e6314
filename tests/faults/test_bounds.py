"""Bounded resources: a step printing without end, absurd retries/timeouts/GPUs, a FIFO or a
device given as the notebook, a params file of nested aliases. Each is bounded or refused with
one line naming the file, cell or tag, never a hang."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.notebook.tags import MAX_RETRIES

from .conftest import assert_clear_error, cli, wait_for

QUICK = 90  # seconds: a refusal is immediate; the old code hung until killed


def _write_notebook(path: Path, cells: list[tuple[list[str], str]]) -> Path:
    notebook = new_notebook(cells=[new_code_cell(source, metadata={"tags": tags})
                                   for tags, source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


def _churn_model(folder: Path, *tags: str) -> Path:
    return _write_notebook(folder / "Churn_Model.ipynb", [
        (["parameters"], "n_trees = 50"),
        (["step:train", *tags], "score = 0.8 + n_trees / 1000"),
        (["metrics"], "score"),
    ])


@pytest.mark.fault("lost")
def test_a_step_printing_without_end_keeps_memory_and_notebook_bounded(tmp_path, monkeypatch):
    """The default cap's code path with a lower cap (the env variable), to stay fast: 1 MB of
    output against a 100 kB cap; the rest is in the run folder's log, named in the notebook."""
    _write_notebook(tmp_path / "Noisy_Training.ipynb", [
        (["step:fit"], "for epoch in range(1000):\n"
                       "    print(f'epoch {epoch:05d} ' + 'loss ' * 200)\n"
                       "print('training done')\nfinal_loss = 0.25"),
        (["metrics"], "final_loss"),
        (["step:report"], "print('report')"),
    ])
    monkeypatch.setenv("JUPYTER_MLOPS_STEP_OUTPUT_CAP", "100000")
    result = cli("run", "Noisy_Training.ipynb", "--no-track", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.split("run folder:")[1].split()[0])
    notebook = run_dir / "fit.ipynb"
    assert notebook.stat().st_size < 300_000
    log = run_dir / "logs" / "fit.output.log"
    assert f"the rest is in {log}" in notebook.read_text()
    kept = "".join(out.get("text", "") for cell in nbformat.read(notebook, 4).cells
                   for out in cell.get("outputs", []) if out.get("name") == "stdout")
    whole = kept + log.read_text()
    assert whole.count("epoch ") == 1000 and "epoch 00999" in log.read_text()
    assert "training done" in whole
    assert json.loads((run_dir / "run.json").read_text())["metrics"] == {"final_loss": 0.25}


@pytest.mark.fault("traceback")
@pytest.mark.parametrize("tag, named", [
    ("retries:1000000", f"retries must be at most {MAX_RETRIES}"),
    ("timeout:99999999999", "timeout must be a positive number of seconds up to"),
    ("resources:gpu=99999999999999999999", "gpu takes a whole number of GPUs"),
    ("resources:gpu=0.5", "gpu takes a whole number of GPUs"),
])
def test_out_of_range_step_options_are_refused_at_graph_time(tmp_path, tag, named):
    _churn_model(tmp_path, tag)
    for command in ("graph", "compile"):
        result = cli(command, "Churn_Model.ipynb", cwd=tmp_path, timeout=QUICK)
        assert_clear_error(result, "Churn_Model.ipynb", "cell 2 (", tag, named)


@pytest.mark.fault("lost")
def test_each_retry_is_shown_in_the_progress(tmp_path):
    _write_notebook(tmp_path / "Flaky_Download.ipynb", [
        (["step:download", "retries:2"], "raise ConnectionError('mirror unreachable')"),
    ])
    result = cli("run", "Flaky_Download.ipynb", "--no-track", cwd=tmp_path)
    assert result.returncode == 1
    for attempt in (2, 3):
        line = next(line for line in result.stderr.splitlines()
                    if f"retrying (attempt {attempt} of 3)" in line)
        assert "download" in line and "ConnectionError: mirror unreachable" in line
    assert "retrying (attempt 4" not in result.stderr


def _fifo(folder: Path) -> Path:
    path = folder / "Shared_Pipe.ipynb"
    os.mkfifo(path)
    return path


def _huge(folder: Path) -> Path:
    path = folder / "Huge_Export.ipynb"
    with path.open("wb") as stream:
        stream.truncate(300 * 2**20)  # sparse: no disk used
    return path


@pytest.mark.fault("traceback")
@pytest.mark.parametrize("make, named", [
    (_fifo, "not a regular file (a FIFO)"),
    (lambda folder: Path("/dev/zero"), "not a regular file (a device)"),
    (_huge, "larger than 256 MiB"),
], ids=["fifo", "dev-zero", "300MB"])
def test_a_notebook_that_is_no_regular_file_or_too_big_is_refused(tmp_path, make, named):
    path = make(tmp_path)
    for command in ("graph", "run"):
        result = cli(command, path, cwd=tmp_path, timeout=QUICK)
        assert_clear_error(result, path.name, named)


@pytest.mark.fault("traceback")
def test_a_params_file_of_nested_aliases_is_refused(tmp_path):
    _churn_model(tmp_path)
    lines = ['base: &l0 ["oak", "ash", "elm", "yew", "fir", "box", "bay", "fig", "lime"]']
    lines += [f"level{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)]
    (tmp_path / "Grid_Params.yaml").write_text("\n".join(lines) + "\nn_trees: 10\n")
    result = cli("run", "Churn_Model.ipynb", "--no-track", "-f", "Grid_Params.yaml",
                 cwd=tmp_path, timeout=QUICK)
    assert_clear_error(result, "Grid_Params.yaml", "aliases expand to more than")


@pytest.mark.fault("traceback")
def test_a_params_file_that_is_a_fifo_is_refused(tmp_path):
    _churn_model(tmp_path)
    os.mkfifo(tmp_path / "Params_Pipe.yaml")
    result = cli("run", "Churn_Model.ipynb", "--no-track", "-f", "Params_Pipe.yaml",
                 cwd=tmp_path, timeout=QUICK)
    assert_clear_error(result, "Params_Pipe.yaml", "not a regular file (a FIFO)")


def _rss_mb(pid: int) -> float:
    """The median of five samples over a second: buffers in flight make single samples swing."""
    samples = []
    for _ in range(5):
        status = Path(f"/proc/{pid}/status").read_text()
        samples.append(int(status.split("VmRSS:")[1].split()[0]) / 1024)
        time.sleep(0.2)
    return statistics.median(samples)


@pytest.mark.fault("lost")
def test_endless_output_leaves_the_runner_bounded_and_ctrl_c_acts_at_once(tmp_path):
    """The default cap: the runner's memory stays flat while the log grows by 100 MB, and
    Ctrl-C ends the run promptly, recorded as killed."""
    _write_notebook(tmp_path / "Endless_Log.ipynb", [
        (["step:tail-logs"], "line = 'x' * 999\nwhile True:\n    print(line)"),
    ])
    argv = [sys.executable, "-m", "jupyter_mlops.cli", "run", "Endless_Log.ipynb", "--no-track"]
    runner = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        logs = tmp_path / ".mlops" / "runs"

        def logged_mb() -> float:
            return sum(p.stat().st_size for p in logs.glob("*/logs/*.output.log")) / 2**20

        # Kept output would grow the runner by the 400 MB printed after the first sample; the
        # messages in flight (ZeroMQ's queues) grow with a slow reader: up to 120 MB was seen
        # on a loaded machine.
        assert wait_for(lambda: logged_mb() > 40, 120), "the step's output never reached the log"
        before = _rss_mb(runner.pid)
        assert wait_for(lambda: logged_mb() > 440, 300)
        assert _rss_mb(runner.pid) - before < 200  # MB
        interrupted = time.monotonic()
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=60)
        assert time.monotonic() - interrupted < 10, output
    finally:
        runner.kill()
        runner.wait()
    assert runner.returncode == 130, output
    assert "tail-logs" in output and "killed (interrupted)" in output
    summary = json.loads(next(logs.glob("*/run.json")).read_text())
    assert summary["status"] == "killed"
