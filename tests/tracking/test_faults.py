"""Fault tests with real parts: a server killed mid-cell, a server down for a whole session,
a kernel SIGKILLed mid-cell, and 8 kernels starting together on a fresh store."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

FLUSH = "from jupyter_mlops.tracking.session import current\nassert current().tracker.flush(120)"


def _client(workdir, name):
    nb = nbformat.read(workdir / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=180,
                            resources={"metadata": {"path": str(workdir)}})
    return nb, client


def _history(client, run, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def test_server_killed_mid_cell_and_restarted(h, workdir, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    nb, client = _client(workdir, "faults")
    with client.setup_kernel():
        for index in (0, 1):
            client.execute_cell(nb.cells[index], index)
        nb.cells.append(new_code_cell(FLUSH))
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)  # writer online and caught up
        killer = threading.Timer(1.2, mlflow_server.kill)  # dies while cell 2 logs
        killer.start()
        client.execute_cell(nb.cells[2], 2)
        killer.join()
        client.execute_cell(nb.cells[3], 3)  # logged while the server is down
        mlflow_server.start()
        end = client.execute_cell(nb.cells[4], 4)
    assert "all records stored" in end.outputs[0]["text"]

    store = h.client_for(mlflow_server.uri)
    runs = h.runs_by_name(store, "faults")
    assert set(runs) == {"session", "before", "during", "after"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert _history(store, runs["during"], "step_metric") == [(i, float(i)) for i in range(8)]
    assert _history(store, runs["during"], "during_metric") == [(0, 2.0)]
    assert _history(store, runs["after"], "after_metric") == [(0, 3.0)]
    assert _history(store, runs["before"], "before_metric") == [(0, 1.0)]
    assert runs["after"].data.params == {"p": "x"}


def test_server_down_for_the_session_then_sync(h, workdir, tmp_path, monkeypatch):
    port = h.free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    # The papermill command, without --inject-paths: the notebook is found on its command line.
    done = subprocess.run([str(h.venv_bin / "papermill"), "tiny.ipynb", "tiny.out.ipynb",
                           "-k", "python3", "--no-progress-bar"], cwd=workdir,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(workdir / "tiny.out.ipynb", as_version=4)
    assert "records kept in the spool" in h.outputs_text(executed)
    assert "mlops: ended 'tiny' (not created yet) FINISHED" in h.outputs_text(executed)
    spool = tmp_path / "home" / ".jupyter_mlops" / "spool"
    assert list(spool.rglob("*.jsonl"))

    server = h.sqlite_server(tmp_path / "server", port)
    server.start()
    try:
        done = subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "sync"], cwd=workdir,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "replayed" in done.stdout
        store = h.client_for(server.uri)
        runs = h.runs_by_name(store, "tiny")
        assert set(runs) == {"tiny", "work"}
        assert all(run.info.status == "FINISHED" for run in runs.values())
        assert _history(store, runs["work"], "score") == [(0, 0.5)]
    finally:
        server.stop()
    assert not list(spool.rglob("*.jsonl"))  # fully replayed spools are removed


def _wait_until(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def _wait_for_output(kc, text, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["msg_type"] == "stream" and text in msg["content"]["text"]:
            return
    raise TimeoutError(text)


def _sender_pid(spool) -> int:
    def pid():
        states = [json.loads(p.read_text() or "{}") for p in spool.glob("*.state")]
        return states[0].get("pid") if states else None
    _wait_until(lambda: pid() is not None)
    return pid()


@pytest.mark.parametrize("sender", ["sending", "exited idle"])
def test_a_spool_folder_removed_while_the_kernel_runs_loses_nothing(h, workdir, monkeypatch,
                                                                    sender):
    """The user deletes the hidden .jupyter_mlops folder (or cleans the project) between two
    tracked cells, while the sender runs or after it exited idle: the next cell says so, the
    spool is written again from the kernel's open log, and every run and model is stored."""
    shutil.copy(h.template_db(), workdir / "mlflow.db")
    monkeypatch.setenv("JUPYTER_MLOPS_NOTEBOOK", str(workdir / "Churn_Training.ipynb"))
    monkeypatch.setenv("JUPYTER_MLOPS_SENDER_IDLE", "1" if sender == "exited idle" else "60")
    fit = ("from sklearn.ensemble import {0}\n"
           "{1} = {0}(n_estimators=5, random_state=0).fit([[0], [1], [2], [3]], [0, 1, 0, 1])\n"
           "accuracy = {2}")
    wait_idle = ("import time\nfrom jupyter_mlops.tracking.session import current\n"
                 "while not current().tracker.writer.state.startswith('idle'):\n"
                 "    time.sleep(0.1)") if sender == "exited idle" else "pass"
    cells = ["%load_ext jupyter_mlops\n%mlops start --experiment Churn_Spool",
             "%%mlops track forest --model forest --metrics accuracy\n"
             + fit.format("RandomForestClassifier", "forest", 0.75),
             FLUSH, wait_idle,
             "import shutil\nshutil.rmtree('.jupyter_mlops')",
             "%%mlops track boosted --model boosted --metrics accuracy\n"
             + fit.format("GradientBoostingClassifier", "boosted", 0.8),
             "%mlops end"]
    nb = nbformat.v4.new_notebook(cells=[new_code_cell(source) for source in cells])
    NotebookClient(nb, kernel_name="python3", timeout=180,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    said = [h.outputs_text(nbformat.v4.new_notebook(cells=[cell])) for cell in nb.cells]
    assert "was deleted while the kernel ran" in said[5], said[5]
    assert "2 finished; all records stored" in said[6], said[6]
    store = h.client_for(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = h.runs_by_name(store, "Churn_Spool")
    assert {name: run.info.status for name, run in runs.items()} == dict.fromkeys(
        ("Churn_Training", "forest", "boosted"), "FINISHED")
    assert runs["boosted"].data.metrics == {"accuracy": 0.8}
    for name in ("forest", "boosted"):
        models = store.search_logged_models(
            [runs[name].info.experiment_id],
            filter_string=f"source_run_id = '{runs[name].info.run_id}'")
        assert [(m.name, m.status) for m in models] == [(name, "READY")], name
    assert not list((workdir / ".jupyter_mlops").rglob("*.rejected.jsonl"))


@pytest.mark.parametrize("killed", ["kernel", "kernel-and-sender"])
def test_kernel_sigkilled_mid_cell_is_recovered(h, workdir, killed):
    """With its sender alive, the sender sends what the kernel left; with both killed,
    the next `%mlops start` replays the dead kernel's spool. Either way nothing is lost."""
    shutil.copy(h.template_db(), workdir / "mlflow.db")  # a fresh store is tested below
    spool = workdir / ".jupyter_mlops" / "spool"
    nb = nbformat.read(workdir / "killed.ipynb", as_version=4)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(workdir))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        for cell in nb.cells[:2]:
            assert kc.execute_interactive(cell.source, timeout=120)["content"]["status"] == "ok"
        pid = km.provisioner.process.pid
        kc.execute(nb.cells[2].source)  # logs a value, then sleeps
        _wait_for_output(kc, "logged")
        sender = _sender_pid(spool)
        if killed == "kernel-and-sender":
            os.kill(sender, signal.SIGSTOP)  # frozen: it sends nothing after the kernel dies
        os.kill(pid, signal.SIGKILL)
        km.provisioner.process.wait()
        if killed == "kernel-and-sender":
            os.kill(sender, signal.SIGKILL)
    finally:
        kc.stop_channels()
        km.cleanup_resources()
    # `%mlops start` settles the dead kernel's runs; the notebook has no `%mlops end`, so its
    # own session run is ended and sent at kernel shutdown.
    h.run_papermill(workdir, "recover")
    _wait_until(lambda: not list(spool.glob("*.jsonl")))  # every sender is done

    store = h.client_for(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = store.get_experiment_by_name("killed")
    runs = store.search_runs([exp.experiment_id])
    dead = {r.info.run_name: r for r in runs if r.data.tags.get("mlops.pid") == str(pid)}
    assert set(dead) == {"session", "done_before", "victim"}
    assert dead["session"].info.status == "FAILED"
    assert dead["victim"].info.status == "FAILED"
    assert "mlops.recovered" in dead["victim"].data.tags
    assert dead["victim"].data.metrics == {"logged_before_kill": 7.0}
    assert dead["done_before"].info.status == "FINISHED"
    assert dead["done_before"].data.metrics == {"early": 1.0}
    alive = [r for r in runs if r.data.tags.get("mlops.pid") != str(pid)]
    assert [r.info.status for r in alive] == ["FINISHED"]


def test_eight_kernels_start_together_on_a_fresh_store(h, workdir, monkeypatch):
    # As JupyterLab starts them: JPY_SESSION_NAME names the notebook.
    monkeypatch.setenv("JPY_SESSION_NAME", str(workdir / "tiny.ipynb"))
    notebooks = [nbformat.read(workdir / "tiny.ipynb", as_version=4) for _ in range(8)]
    clients = [NotebookClient(nb, kernel_name="python3", timeout=240,
                              resources={"metadata": {"path": str(workdir)}})
               for nb in notebooks]

    async def run_all():
        return await asyncio.gather(*(c.async_execute() for c in clients),
                                    return_exceptions=True)

    results = asyncio.run(run_all())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    for nb in notebooks:
        text = h.outputs_text(nb)
        assert "all records stored" in text and "Error" not in text
    store = h.client_for(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = store.search_runs(
        [store.get_experiment_by_name("tiny").experiment_id], max_results=100)
    assert sorted(r.info.run_name for r in runs) == ["tiny"] * 8 + ["work"] * 8
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.metrics["score"] for r in runs if r.info.run_name == "work"} == {0.5}
    assert len({r.data.tags["mlops.pid"] for r in runs}) == 8
