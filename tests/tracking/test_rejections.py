"""A record the store rejects reaches the user, in a real kernel on a real SQLite store: on the
run card of its cell, in `%mlops end`, in `%mlops status` and in `jupyter-mlops sync`; and a
store that does not answer is called unreachable, quickly."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
import time

import nbformat
from nbclient import NotebookClient


def _execute(workdir, name):
    """Run every cell; returns the notebook and each cell's wall time."""
    nb = nbformat.read(workdir / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=240,
                            resources={"metadata": {"path": str(workdir)}})
    took = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            started = time.monotonic()
            client.execute_cell(cell, index)
            took.append(time.monotonic() - started)
    return nb, took


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _card(cell) -> str:
    [card] = [o for o in cell.outputs if "text/html" in o.get("data", {})]
    return card.data["text/html"]


def test_a_param_relogged_with_another_value_is_reported_everywhere(h, workdir):
    shutil.copy(h.template_db(), workdir / "mlflow.db")
    nb, _ = _execute(workdir, "Forest_Tuning")
    track, end, status = nb.cells[1], nb.cells[2], nb.cells[3]
    [quarantine] = (workdir / ".jupyter_mlops" / "spool").glob("*.rejected.jsonl")

    card = html.unescape(_card(track))  # redrawn in place once the store had answered
    assert 'data-status="FINISHED"' in card
    assert "param 'n_estimators' = 200 rejected by the store" in card, card
    assert "Changing param values is not allowed" in card and str(quarantine) in card

    said = _text(end)
    assert "1 record REJECTED by the store" in said and str(quarantine) in said
    assert "run 'Tuned_Forest': param 'n_estimators' = 200 rejected" in said
    assert "all records stored" not in said and "unreachable" not in said
    assert any(o.get("name") == "stderr" for o in end.outputs)  # shown as an error

    shown = _text(status)
    assert f"rejected:   1 record the store refused, kept in {quarantine}" in shown
    assert "param 'n_estimators' = 200 rejected by the store" in shown

    [entry] = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert entry["run"] == "Tuned_Forest" and entry["record"]["params"] == {"n_estimators": "200"}
    store = h.client_for(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = h.runs_by_name(store, "forest_tuning")
    assert runs["Tuned_Forest"].data.params["n_estimators"] == "50"  # the first value stays
    assert runs["Tuned_Forest"].data.metrics == {"accuracy": 0.875}  # the rest was stored
    assert {r.info.status for r in runs.values()} == {"FINISHED"}

    done = subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "sync"], cwd=workdir,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode != 0, done.stdout + done.stderr
    assert f"REJECTED by the store: 1 record kept in {quarantine}" in done.stdout
    assert "run 'Tuned_Forest': param 'n_estimators' = 200 rejected" in done.stdout


def test_an_unreachable_store_is_said_so_without_a_long_wait(h, workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{h.free_port()}")
    nb, took = _execute(workdir, "tiny")
    track, end = nb.cells[1], nb.cells[2]
    said = _text(end)
    assert "store unreachable" in said and "records kept in the spool" in said
    assert "all records stored" not in said and "REJECTED" not in said
    assert took[2] < 15, f"`%mlops end` took {took[2]:.1f} s"
    assert "does not answer; the run's records wait in the spool" in html.unescape(_card(track))


def test_a_model_the_sender_cannot_store_is_quarantined_with_its_payload(h, workdir,
                                                                        monkeypatch):
    """The model record's payload does not load (as when the sender lacks the model's class):
    its entry names the model and keeps the payload; the run's other records are stored."""
    from jupyter_mlops.tracking.client import Tracker
    from jupyter_mlops.tracking.delivery import run_problems
    from jupyter_mlops.tracking.records import Model

    shutil.copy(h.template_db(), workdir / "mlflow.db")
    monkeypatch.chdir(workdir)
    tracker = Tracker(f"sqlite:///{workdir / 'mlflow.db'}")
    run = tracker.start_run("Churn_Forest", "churn")
    tracker.log_metrics(run, {"auc": 0.81})
    tracker.writer.put(Model(run.key, "forest", "churn", artifact="model.pkl"), b"not a pickle")
    tracker.end_run(run)
    assert tracker.flush(120)  # answered for: nothing waits on a retry
    lines, final = run_problems(tracker, run)
    tracker.close()

    assert final and lines[0].startswith(
        "model 'forest' (to register as 'churn') rejected by the store: model 'forest' could "
        "not be read back from the spool")
    [entry] = tracker.rejections(run)
    assert open(entry["payload"], "rb").read() == b"not a pickle"
    store = h.client_for(f"sqlite:///{workdir / 'mlflow.db'}")
    stored = h.runs_by_name(store, "churn")["Churn_Forest"]
    assert stored.data.metrics == {"auc": 0.81} and stored.info.status == "FINISHED"


def test_a_script_is_told_at_exit_what_the_store_rejected(h, tmp_path):
    shutil.copy(h.template_db(), tmp_path / "mlflow.db")
    script = (
        "import jupyter_mlops\n"
        "with jupyter_mlops.track('Fit_Churn', experiment='churn', params={'depth': 4}) as run:\n"
        "    run.log_params({'depth': 6})  # the store keeps the first value\n"
        "    run.log_metrics({'auc': 0.8})\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    [quarantine] = (tmp_path / ".jupyter_mlops" / "spool").glob("*.rejected.jsonl")
    assert f"jupyter-mlops: 1 record REJECTED by the store, kept in {quarantine}" \
        in done.stderr
    assert "run 'Fit_Churn': param 'depth' = 6 rejected by the store" in done.stderr


def test_a_server_that_answers_with_an_error_is_not_called_unreachable(h, workdir,
                                                                       mlflow_server):
    """Over HTTP the store's refusal is an error response: quarantined at once, the rest
    stored, and the sender still sees a store that answers."""
    from jupyter_mlops.tracking.client import Tracker
    from jupyter_mlops.tracking.delivery import outcome

    tracker = Tracker(mlflow_server.uri)
    run = tracker.start_run("Boosted_Trees", "boosting")
    tracker.log_params(run, {"learning_rate": 0.1})
    tracker.log_params(run, {"learning_rate": 0.05})
    tracker.log_metrics(run, {"auc": 0.9})
    tracker.end_run(run)
    started = time.monotonic()
    assert tracker.flush(120)
    assert time.monotonic() - started < 60  # no strikes, no back-off
    said, ok = outcome(tracker, True, tracker.rejections())
    assert tracker.writer.store == "answers"
    tracker.close()

    assert not ok and "unreachable" not in said
    assert "run 'Boosted_Trees': param 'learning_rate' = 0.05 rejected by the store" in said
    stored = h.runs_by_name(h.client_for(mlflow_server.uri), "boosting")["Boosted_Trees"]
    assert stored.data.params == {"learning_rate": "0.1"} and stored.data.metrics == {"auc": 0.9}


def test_what_counts_as_no_answer_busy_or_a_rejection():
    """The errors mlflow raises in each case (built as its REST client builds them)."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    from jupyter_mlops.tracking.sink import BUSY, REJECTED, UNREACHABLE, classify

    def wrapped(cause: BaseException) -> MlflowException:
        try:
            raise cause
        except Exception as error:  # how rest_utils.http_request wraps what requests raised
            try:
                raise MlflowException(f"API request to http://127.0.0.1:9/api failed with "
                                      f"exception {error}")
            except MlflowException as outer:
                return outer

    refused = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    assert classify(wrapped(refused)) == UNREACHABLE
    assert classify(wrapped(requests.exceptions.ReadTimeout("read timed out"))) == UNREACHABLE
    assert classify(MlflowException("API request to http://h/api failed with exception "
                                    "HTTPConnectionPool: Max retries exceeded")) == UNREACHABLE
    assert classify(RestException({"error_code": "TEMPORARILY_UNAVAILABLE",
                                   "message": "try later"})) == BUSY
    assert classify(MlflowException("(sqlite3.OperationalError) database is locked")) == BUSY
    assert classify(RestException({"error_code": "INVALID_PARAMETER_VALUE",
                                   "message": "Changing param values is not allowed"})) \
        == REJECTED
    assert classify(MlflowException("The saved sklearn model references untrusted types")) \
        == REJECTED
