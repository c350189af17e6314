"""The team server goes down in the middle of a notebook session: the tracked cells keep
running, their cards and `%mlops end` say the store does not answer and the records wait in
the spool; the notebook is closed, the server comes back on the same address, and
`jupyter-mlops sync` delivers every record once: nothing lost, nothing twice."""

from __future__ import annotations

import html
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kernel_driver import Kernel
from mlflow import MlflowClient
from pg_server import MlflowServer

from jupyter_mlops.steps import mlflow_vocabulary as vocab

EXPERIMENT = "Churn_Outage"
REPO = Path(__file__).resolve().parents[2]
DURING = """\
learning_rate = 0.05
auc = 0.74
print("trained while the server was down")"""
CURVE = """\
for epoch, loss in enumerate([0.9, 0.5, 0.3]):
    %mlops log loss={loss} --step {epoch}
auc = 0.77"""


def _runs(server: MlflowServer) -> dict[str, Any]:
    client = MlflowClient(server.uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return {}
    return {r.info.run_name: r for r in client.search_runs([found.experiment_id])}


def _wait_until(condition: Any, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.5)


def _sync(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "sync"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cells_run_through_an_outage_and_sync_delivers_every_record_once(team_server,
                                                                         tmp_path):
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JPY_", "JUPYTER_MLOPS", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI=team_server.uri, HOME=str(tmp_path / "home"),
               JUPYTER_MLOPS_NOTEBOOK=str(tmp_path / "Churn_Outage.ipynb"),
               PYTHONPATH=str(REPO))
    kernel = Kernel(tmp_path, env)
    try:
        kernel.ok(f"%load_ext jupyter_mlops\n%mlops start --experiment {EXPERIMENT}")
        kernel.ok("%%mlops track Before_Outage --params learning_rate --metrics auto\n"
                  "learning_rate = 0.1\nauc = 0.71")
        _wait_until(lambda: _runs(team_server).get("Before_Outage") is not None
                    and _runs(team_server)["Before_Outage"].info.status == "FINISHED")

        team_server.stop()
        address = team_server.uri.removeprefix("http://")
        during = kernel.ok("%%mlops track During_Outage --params learning_rate --metrics auto\n"
                           + DURING)
        assert "trained while the server was down" in during.stdout
        curve = kernel.ok("%%mlops track Loss_Curve --metrics auto\n" + CURVE)
        ended = kernel.ok("%mlops end")
        assert "store unreachable" in ended.stderr and "records kept in the spool" in ended.stderr
        assert "all records stored" not in ended.stdout + ended.stderr
        for said in (during, curve):
            card = html.unescape(kernel.shown(said))
            assert 'data-status="FINISHED"' in card  # the cell itself went well
            assert "not stored yet: " in card, card  # with why, naming the store
            assert "the run's records wait in the spool" in card and address in card
    finally:
        kernel.stop(graceful=True)  # the notebook closed: its records stay in the spool
    spool = tmp_path / "home" / ".jupyter_mlops" / "spool"
    assert list(spool.rglob("*.jsonl"))

    team_server.start()  # the same address: the spool's records name it
    done = _sync(env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replayed" in done.stdout
    assert not list(spool.rglob("*.jsonl"))  # fully replayed spools are removed

    runs = _runs(team_server)
    assert set(runs) == {"Churn_Outage", "Before_Outage", "During_Outage", "Loss_Curve"}
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    assert runs["During_Outage"].data.params == {"learning_rate": "0.05"}
    assert runs["During_Outage"].data.metrics == {"auc": 0.74}
    assert runs["Before_Outage"].data.metrics == {"auc": 0.71}
    client = MlflowClient(team_server.uri)
    loss = client.get_metric_history(runs["Loss_Curve"].info.run_id, "loss")
    assert sorted((m.step, m.value) for m in loss) == [(0, 0.9), (1, 0.5), (2, 0.3)]
    source = client.download_artifacts(runs["During_Outage"].info.run_id,
                                       vocab.CELL_SOURCE_ARTIFACT, str(tmp_path))
    assert Path(source).read_text().rstrip() == DURING  # through the proxy
    session = runs["Churn_Outage"].info.run_id
    assert {r.data.tags.get("mlflow.parentRunId") for n, r in runs.items()
            if n != "Churn_Outage"} == {session}

    again = _sync(env, tmp_path)  # nothing left: nothing sent twice
    assert again.returncode == 0 and "nothing to sync" in again.stdout, again.stdout
    assert len(_runs(team_server)) == 4

