"""`jupyter-mlops sync` names the session it leaves to a live kernel by its notebook, and the
spool file of a session it could not send."""

from __future__ import annotations

import subprocess
import sys

from jupyter_mlops.cli import main
from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG
from jupyter_mlops.tracking.records import Header, RunStart
from jupyter_mlops.tracking.spool import Spool

SESSION = "20261201210155-15849-a8cdf2aa"


def test_a_busy_session_is_named_by_its_notebook_and_experiment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    notebook = str(tmp_path / "Churn_Training.ipynb")
    spool = Spool(tmp_path / "spool", SESSION)
    spool.append([Header(f"sqlite:///{tmp_path / 'mlflow.db'}"),
                  RunStart("k1", "Churn_Registry", 0, "Churn_Training",
                           tags={NOTEBOOK_TAG: notebook})])
    spool.release()
    # A process holding the session's kernel lock, as its live kernel does.
    kernel = subprocess.Popen(
        [sys.executable, "-c", "import sys; from jupyter_mlops.tracking.spool import Spool; "
         f"s = Spool(sys.argv[1], {SESSION!r}); s.try_lock('kernel') and print('held', "
         "flush=True); sys.stdin.read()", str(tmp_path / "spool")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert kernel.stdout is not None and kernel.stdout.readline() == "held\n"
        code = main(["sync", "--spool-dir", str(tmp_path / "spool"), "--no-recover"])
    finally:
        kernel.communicate("", timeout=60)
    assert code == 0
    assert (f"skipped {SESSION} (notebook {notebook}, experiment 'Churn_Registry'): its "
            "kernel or its sender is still running") in capsys.readouterr().out


def test_a_store_that_does_not_answer_is_said_in_a_line(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    spool = Spool(tmp_path / "spool", SESSION)
    spool.append([Header(uri), RunStart("k1", "Churn_Team", 0, "Churn_Training")])
    spool.release()
    code = main(["sync", "--spool-dir", str(tmp_path / "spool"), "--no-recover"])
    # it was MLflow's "API request to ... failed with exception HTTPConnectionPool(...", cut;
    # and the spool was not named: one of a store that never comes back could not be found
    assert code == 1
    assert (f"failed {SESSION} (spool {spool.log_path}): the store {uri} does not answer\n"
            ) in capsys.readouterr().out
