"""The writer against a real SQLite store, in this process: MLflow's batch limits, idempotent
replay with `jupyter-mlops sync`, a param re-logged with another value, and the read-only
magics (`%mlops runs`, `%mlops ui`) on the same store."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_mlops.commands import sync as sync_command
from jupyter_mlops.tracking import session as session_mod
from jupyter_mlops.tracking.client import Tracker
from jupyter_mlops.tracking.spool import Spool


@pytest.fixture
def store(tmp_path, workdir, monkeypatch, h) -> str:
    """A migrated SQLite store in the working directory (the embedded default)."""
    monkeypatch.chdir(workdir)
    shutil.copy(h.template_db(), workdir / "mlflow.db")
    return f"sqlite:///{workdir / 'mlflow.db'}"


def _copy_spool(spool: Spool, into: Path) -> Spool:
    """What a crash between sending and acking leaves: the records, nothing acked."""
    into.mkdir()
    for path in spool.root.iterdir():
        if path.name.startswith(spool.session_id) and not path.name.endswith("lock") \
                and ".rejected" not in path.name:  # quarantined before: not resent
            copy = shutil.copytree if path.is_dir() else shutil.copy
            copy(path, into / path.name)
    copied = Spool(into, spool.session_id)
    copied.set_acked(0)
    return copied


def test_batches_respect_mlflow_limits_and_replay_adds_no_duplicates(store, tmp_path, h,
                                                                     capsys):
    tracker = Tracker(store)
    run = tracker.start_run("big", "limits")
    tracker.log_params(run, {f"p{i:03d}": i for i in range(150)})
    tracker.set_tags(run, {f"t{i:03d}": "v" for i in range(120)})
    tracker.log_metrics(run, {f"m{i:04d}": float(i) for i in range(1500)})
    tracker.log_metrics(run, {"m0000": float("nan"), "curve": 1.0})
    tracker.log_metrics(run, {"curve": 2.0})
    tracker.log_params(run, {"p000": "changed"})  # MLflow refuses it; the rest still lands
    tracker.log_params(run, {"late": "yes"})
    tracker.end_run(run)
    assert tracker.flush(120)
    [refused] = tracker.rejections(run)  # kept, with the store's reason
    assert refused["what"] == "param 'p000' = changed"
    assert "Changing param values is not allowed" in refused["reason"]
    crashed = _copy_spool(tracker.writer.spool, tmp_path / "crashed")
    tracker.close()

    # Resending everything (as after a crash before the ack) must change nothing, and says
    # again which record the store refuses.
    args = argparse.Namespace(spool_dir=[crashed.root], no_recover=True)
    assert sync_command.run(args) == 1
    said = capsys.readouterr().out
    assert f"REJECTED by the store: 1 record kept in {crashed.rejected_path}" in said
    assert "run 'big': param 'p000' = changed rejected by the store" in said
    assert [p.name for p in crashed.root.glob("*.jsonl")] == [crashed.rejected_path.name]

    client = h.client_for(store)
    runs = h.runs_by_name(client, "limits")
    assert list(runs) == ["big"]
    data = runs["big"].data
    assert len(data.params) == 151 and data.params["p000"] == "0" and data.params["late"] == "yes"
    assert sum(k.startswith("t") for k in data.tags) == 120
    assert sum(k.startswith("m") for k in data.metrics) == 1500
    history = client.get_metric_history(runs["big"].info.run_id, "m0000")
    assert [m.step for m in history] == [0, 1] and history[1].value != history[1].value  # NaN
    curve = client.get_metric_history(runs["big"].info.run_id, "curve")
    assert sorted((m.step, m.value) for m in curve) == [(0, 1.0), (1, 2.0)]
    assert runs["big"].info.status == "FINISHED"


@pytest.fixture
def shell(store):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_mlops")
    yield ip
    session = session_mod.current()
    session.end()
    session.tracker.close()


def test_runs_table_and_ui_hint_read_the_same_store(shell, store, capsys):
    assert shell.run_cell("%mlops start --experiment views").success
    result = shell.run_cell("%%mlops track first --metrics auto\nscore = 0.75\nprint('hi')")
    assert result.success
    assert shell.run_cell("%mlops end").success
    assert "all records stored" in capsys.readouterr().out
    table = shell.run_line_magic("mlops", "runs --last 5")
    assert set(table["run"]) == {"first", "session"}
    assert table.set_index("run").loc["first", "metrics.score"] == 0.75
    assert set(table["status"]) == {"FINISHED"}
    shell.run_line_magic("mlops", "ui")
    hint = capsys.readouterr().out
    assert f"--backend-store-uri {store}" in hint and "mlflow ui" in hint


TRAINING_LOOP = """\
%%mlops track Train_Loop --metrics auto
n_batches = 0
for epoch in range(3):
    for i, batch in enumerate([0.5, 0.25]):
        n_batches += 1
        running_loss = batch / (epoch + 1)
_scratch = 1.0
x = 2.0
val_accuracy: float = 0.875
best_f1 = max(0.5, (f1 := 0.8))
model_name = "Forest"
"""


def test_metrics_auto_logs_the_cells_numbers_but_not_its_loop_counters(shell, store):
    assert shell.run_cell("%mlops start --experiment Loop_Counters").success
    assert shell.run_cell(TRAINING_LOOP).success
    assert shell.run_cell("%mlops end").success
    table = shell.run_line_magic("mlops", "runs --last 5").set_index("run")
    row = table.loc["Train_Loop"]
    logged = {c.removeprefix("metrics.") for c in table.columns
              if c.startswith("metrics.") and row[c] == row[c]}  # NaN: another run's metric
    # not epoch, i, batch (loop variables), n_batches (a counter), _scratch, x, model_name
    assert logged == {"running_loss", "val_accuracy", "best_f1", "f1"}
    assert table.loc["Train_Loop", "metrics.val_accuracy"] == 0.875

def test_mlops_sync_replays_what_a_closed_notebook_left_and_says_it_in_the_cell(shell, store,
                                                                               h, tmp_path,
                                                                               capsys):
    """`%mlops sync` does what `jupyter-mlops sync` does, with the same lines in the cell: the
    spool a notebook left when it closed (its kernel died between sending and acking) is
    replayed, once; this notebook's own records are flushed and said first, not replayed
    (`%mlops start` replays the orphans of its own store itself)."""
    closed = Tracker(store)
    run = closed.start_run("Random_Forest", "Churn_Model")
    closed.log_metrics(run, {"accuracy": 0.91})
    closed.end_run(run)
    assert closed.flush(120)
    left = _copy_spool(closed.writer.spool, tmp_path / "left")
    closed.close()
    for path in left.root.iterdir():  # back where the closed notebook's spool was
        shutil.move(path, closed.writer.spool.root / path.name)
    capsys.readouterr()
    assert shell.run_cell("%mlops sync").success  # before this notebook logs anything
    said = capsys.readouterr()
    assert said.err == "" and said.out.startswith(f"replayed {closed.session_id}: "), said
    runs = h.runs_by_name(h.client_for(store), "Churn_Model")
    assert list(runs) == ["Random_Forest"] and runs["Random_Forest"].data.metrics == \
        {"accuracy": 0.91}
    assert shell.run_cell("%mlops start --experiment Churn_Sync").success
    capsys.readouterr()
    assert shell.run_cell("%mlops sync --no-recover").success
    assert capsys.readouterr().out.splitlines() == ["this notebook: all records stored",
                                                    "nothing to sync"]
    shell.run_line_magic("mlops", "--help")
    assert "as `jupyter-mlops sync`" in capsys.readouterr().out


def test_an_idle_sender_exits_and_the_next_record_starts_another(store, monkeypatch, h):
    monkeypatch.setenv("JUPYTER_MLOPS_SENDER_IDLE", "0.5")
    tracker = Tracker(store)
    run = tracker.start_run("resting", "idle")
    tracker.log_metrics(run, {"a": 1.0})
    assert tracker.flush(120)
    first = tracker.writer.spool.read_state()["pid"]
    _wait_until(lambda: tracker.writer.state.startswith("idle"))  # mlflow's memory is freed
    tracker.log_metrics(run, {"a": 2.0})
    tracker.end_run(run)
    assert tracker.flush(120)
    assert tracker.writer.spool.read_state()["pid"] != first
    tracker.close()

    client = h.client_for(store)
    resting = h.runs_by_name(client, "idle")["resting"]
    history = client.get_metric_history(resting.info.run_id, "a")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0)]
    assert resting.info.status == "FINISHED"


def _wait_until(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
