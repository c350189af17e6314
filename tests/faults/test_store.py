"""The store and the spool under faults: a full disk (a real, small tmpfs), a store whose
creation the disk cut short, damaged spool lines, and stores the server must not open.

Kernels, SQLite stores and the Jupyter server are real; the full disk is a tmpfs mounted for
the test (root only: skipped elsewhere) and filled with a file, as a user's disk fills.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

# The server fixtures of tests/server (a real Jupyter Server with the extension).
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403
from server.conftest import TOKEN, _notebook, fetch_json

from jupyter_mlops.tracking.records import Data, Header, RunEnd, RunStart
from jupyter_mlops.tracking.spool import Spool

from .conftest import cli

ROOT = Path(__file__).resolve().parents[2]

TRAIN_FOREST = """\
%%mlops track {name} --metrics auto
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True)
forest = RandomForestClassifier(n_estimators=5, random_state={seed}).fit(X, y)
accuracy = forest.score(X, y)
print("{name} trained", accuracy)
"""


# a small disk ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MB tmpfs, unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write `path` until the disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)


FILL = """\
import errno, os
def fill(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\\0" * 65536)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)
"""


# kernels --------------------------------------------------------------------------------
@pytest.fixture
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean tracking environment that kernels inherit."""
    for var in ("MLFLOW_TRACKING_URI", "JPY_SESSION_NAME", "JUPYTER_MLOPS_NOTEBOOK",
                "JUPYTER_MLOPS_SPOOL_DIR"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def run_notebook(folder: Path, name: str, cells: list[str], out: Path | None = None):
    """Execute the cells in a fresh kernel (cwd = folder); every cell may fail, as a user's
    would on today's code, so the notebook is read back and checked whole."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = new_notebook(cells=[new_code_cell(c, metadata={"tags": ["raises-exception"]})
                                   for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    source, output = folder / f"{name}.ipynb", (out or folder.parent) / f"{name}.out.ipynb"
    nbformat.write(notebook, source)
    try:
        papermill.execute_notebook(str(source), str(output), cwd=str(folder),
                                   kernel_name="python3", progress_bar=False,
                                   )
    except PapermillExecutionError:
        pass
    return nbformat.read(output, as_version=4)


def cell_text(cell) -> str:
    """What the user sees under a cell: streams, values and errors."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            parts.append(f"ERROR {output['ename']}: {output['evalue']}")
            parts.append("Traceback (most recent call last)")
        parts.append(output.get("text", ""))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.fixture(scope="session")
def _store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty MLflow store, copied for each test (migrating costs seconds)."""
    from mlflow import MlflowClient

    template = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    uri = f"sqlite:///{template}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return template


@pytest.fixture
def migrated_db(_store_template: Path):
    """`migrated_db(folder)`: a ready MLflow store `mlflow.db` in `folder`; returns its URI."""
    def make(folder: Path) -> str:
        shutil.copy(_store_template, folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"
    return make


def statuses(uri: str, experiment: str) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} not stored"
    return {r.info.run_name: r.info.status for r in client.search_runs([exp.experiment_id])}


# a full disk ----------------------------------------------------------------------------
@pytest.mark.fault("traceback")
def test_a_full_working_directory_runs_the_cell_and_says_so_in_one_line(
        small_disk: Path, user_env: None, tmp_path: Path) -> None:
    work = small_disk / "Churn_Study"
    work.mkdir()
    nb_cells = ["%load_ext jupyter_mlops", FILL + f"fill({str(small_disk / 'filler.bin')!r})",
                TRAIN_FOREST.format(name="fit_Forest", seed=0),
                'print("accuracy after the cell:", accuracy)']
    notebook = run_notebook(work, "Churn_Study", nb_cells, out=tmp_path)
    tracked, after = cell_text(notebook.cells[2]), cell_text(notebook.cells[3])
    assert "fit_Forest trained 0.9" in tracked, tracked
    assert "accuracy after the cell: 0.9" in after, after
    assert "Traceback" not in tracked + after, tracked + after
    warnings = [line for line in tracked.splitlines() if line.startswith("jupyter-mlops:")]
    assert len(warnings) == 1, tracked
    spool = work / ".jupyter_mlops" / "spool"
    assert str(spool) in warnings[0] and "No space left on device" in warnings[0], warnings


@pytest.mark.fault("lost")
def test_end_never_says_stored_while_the_disk_holds_the_records_back(
        small_disk: Path, user_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        migrated_db) -> None:
    """The spool's disk fills mid-session: `%mlops end` says so (not "stored"); once the disk
    has room again, the held records reach the store and no cell run stays RUNNING."""
    work = tmp_path / "Churn_Study"
    work.mkdir()
    uri = migrated_db(work)
    monkeypatch.setenv("JUPYTER_MLOPS_SPOOL_DIR", str(small_disk / "spool"))
    filler = small_disk / "filler.bin"
    trained = [TRAIN_FOREST.format(name=f"forest_{seed}", seed=seed) for seed in range(3)]
    cells = ["%load_ext jupyter_mlops", "%mlops start --experiment Churn_Model",
             FILL + f"fill({str(filler)!r})", *trained, "%mlops end",
             f"os.remove({str(filler)!r})", "%mlops start --experiment Churn_Model",
             "%mlops end",
             "from mlflow import MlflowClient\n"
             f"client = MlflowClient(tracking_uri={uri!r})\n"
             "exp = client.get_experiment_by_name('Churn_Model')\n"
             "print(sorted((r.info.run_name, r.info.status) "
             "for r in client.search_runs([exp.experiment_id])))"]
    notebook = run_notebook(work, "Churn_Study", cells)
    texts = [cell_text(cell) for cell in notebook.cells]
    for seed, text in enumerate(texts[3:6]):
        assert f"forest_{seed} trained 0.9" in text and "Traceback" not in text, text
    full_end, free_end = texts[6], texts[9]
    assert "all records stored" not in full_end, full_end
    assert "NOT STORED" in full_end and "No space left on device" in full_end, full_end
    assert str(small_disk / "spool") in full_end, full_end
    assert "all records stored" in free_end, free_end
    seen_at_success = texts[10]
    assert "RUNNING" not in seen_at_success, seen_at_success
    stored = statuses(uri, "Churn_Model")
    assert {f"forest_{seed}" for seed in range(3)} <= stored.keys(), stored
    assert set(stored.values()) == {"FINISHED"}, stored


# damaged spool lines --------------------------------------------------------------------
def _dead_kernel_spool(spool_dir: Path, uri: str, damage: bytes) -> tuple[Spool, list[str]]:
    """The spool a killed kernel left: three finished cell runs of `Churn_Model`, with a
    damaged line after the first run's records (before the others' FINISHED records)."""
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    identity = {"mlops.pid": str(gone.pid), "mlops.host": socket.gethostname()}
    spool = Spool(spool_dir, "20261201090000-4242-deadbeef")
    spool.append([Header(uri, socket.gethostname())])
    names = [f"forest_{seed}" for seed in range(3)]
    for i, name in enumerate(names):
        spool.append([
            RunStart(f"key{i}", "Churn_Model", 1764579600000 + i, name, tags=identity),
            Data(f"key{i}", params={"n_estimators": "5"},
                 metrics=[["accuracy", 0.9 + i / 100, 1764579600500, 0]])])
        if i == 0:
            spool.release()
            with open(spool.log_path, "ab") as log:  # as a disk (or a hand) damaged it
                log.write(damage)
        spool.append([RunEnd(f"key{i}", "FINISHED", 1764579601000 + i)])
    spool.release()
    return spool, names


@pytest.mark.fault("lost")
@pytest.mark.parametrize("damage", [
    pytest.param(b'{"op": "data", "key": "key0", "metr\x00\x00\x00\n', id="torn-bytes"),
    pytest.param(b'{"op": "end", "key": ["key1"], "status": "FINISHED"}\n', id="wrong-shape"),
])
def test_a_damaged_spool_line_is_set_aside_and_the_rest_delivered(
        tmp_path: Path, user_env: None, damage: bytes, migrated_db) -> None:
    work = tmp_path / "Churn_Study"
    work.mkdir()
    uri = migrated_db(work)
    spool, names = _dead_kernel_spool(work / ".jupyter_mlops" / "spool", uri, damage)
    done = cli("sync", cwd=work)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said, said
    assert "damaged spool line" in said and str(spool.rejected_path) in said, said
    assert "marked FAILED" not in said, said
    stored = statuses(uri, "Churn_Model")
    assert stored == dict.fromkeys(names, "FINISHED"), stored
    kept = [json.loads(line) for line in spool.rejected_path.read_text().splitlines()]
    assert len(kept) == 1 and kept[0]["record"]["op"] == "damaged", kept


# a store the disk cut short -------------------------------------------------------------
def leave_free(mount: Path, free: int) -> Path:
    """Fill the disk but `free` bytes; returns the filler file."""
    filler = mount / "filler.bin"
    fill(filler)
    os.truncate(filler, max(filler.stat().st_size - free, 0))
    return filler


@pytest.mark.fault("lost")
def test_a_store_the_disk_cut_short_is_never_left_half_made(small_disk: Path) -> None:
    from jupyter_mlops.errors import StoreError
    from jupyter_mlops.tracking.destination import open_client

    db = small_disk / "mlflow.db"
    filler = leave_free(small_disk, 300 * 1024)  # a migrated store takes about 1 MB
    with pytest.raises(StoreError) as refused:
        open_client(f"sqlite:///{db}")
    assert str(db) in str(refused.value) and "disk is full" in str(refused.value), refused
    assert "\n" not in str(refused.value) and "CREATE TABLE" not in str(refused.value)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin", "mlflow.db.lock"]
    filler.unlink()
    client = open_client(f"sqlite:///{db}")
    experiment = client.create_experiment("Churn_Model")
    run = client.create_run(experiment, run_name="forest_0")
    client.log_metric(run.info.run_id, "accuracy", 0.93)
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.93}


OLD_OPEN = """\
import sys
from mlflow import MlflowClient
uri = sys.argv[1]
MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
"""


@pytest.mark.fault("lost")
def test_a_half_made_store_is_made_anew_and_said(small_disk: Path, user_env: None) -> None:
    """A store an earlier version left half made (MLflow migrating in place on a full disk:
    `table _alembic_tmp_runs already exists` ever after) is moved aside, named, made anew."""
    db = small_disk / "mlflow.db"
    filler = leave_free(small_disk, 100 * 1024)
    made = subprocess.run([sys.executable, "-c", OLD_OPEN, f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=600)
    assert made.returncode != 0 and db.exists(), made.stderr[-2000:]
    filler.unlink()
    done = cli("sync", cwd=small_disk)
    said = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in said, said
    aside = [p for p in small_disk.iterdir() if p.name.startswith("mlflow.db.half-made-")]
    assert len(aside) == 1 and str(aside[0]) in said and "half-made" in said, said
    from jupyter_mlops.tracking.destination import open_client

    client = open_client(f"sqlite:///{db}")
    run = client.create_run(client.create_experiment("Churn_Model"), run_name="forest_0")
    assert client.get_run(run.info.run_id).info.status == "RUNNING"


# stores the server must not open ---------------------------------------------------------
@pytest.fixture
def jp_server_config(user_env: None) -> dict[str, object]:
    """No configured store: each notebook's folder has its own `mlflow.db`."""
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
            "IdentityProvider": {"token": TOKEN},
            "MlopsExtension": {"tracking_uri": "", "min_refresh_seconds": 0.0}}


def _study(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Train_Forest.ipynb").write_text(json.dumps(_notebook([
        (["step:train"], "accuracy = 0.93")])), encoding="utf-8")
    return folder


def _listing(*folders: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for folder in folders for p in sorted(folder.iterdir())}


async def _get(jp_fetch, route: str, notebook: str) -> tuple[int, dict[str, object]]:
    return await fetch_json(jp_fetch, "mlops", "api", route, params={"notebook": notebook})


@pytest.mark.fault("traceback")
def test_a_store_that_is_not_sqlite_is_a_409_and_a_read_writes_nothing(
        jp_asyncio_loop, jp_fetch, jp_root_dir: Path, migrated_db) -> None:
    broken = _study(jp_root_dir / "Churn_Study")
    (broken / "mlflow.db").write_text("these are my notes, not a database\n")
    ready = _study(jp_root_dir / "Sales_Study")
    migrated_db(ready)
    before = _listing(broken, ready)

    async def reads() -> list[tuple[int, dict[str, object]]]:
        return [await _get(jp_fetch, route, f"{study}/Train_Forest.ipynb")
                for study in ("Churn_Study", "Sales_Study") for route in ("experiments", "runs")]

    (bad_exp, bad_runs, good_exp, good_runs) = jp_asyncio_loop.run_until_complete(reads())
    for code, body in (bad_exp, bad_runs):
        assert code == 409 and body["code"] == "store-unreadable", body
        assert "mlflow.db is not an SQLite database" in body["message"], body
        assert str(jp_root_dir) not in body["message"], body
    assert good_exp[0] == 200 and good_runs[0] == 200, (good_exp, good_runs)
    assert _listing(broken, ready) == before  # no lock file, no migration, no repair


@pytest.mark.fault("wrong")
def test_a_store_linked_from_outside_the_root_is_refused_and_left_alone(
        jp_asyncio_loop, jp_fetch, jp_root_dir: Path, tmp_path: Path, migrated_db) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    uri = migrated_db(outside)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    client.create_run(client.create_experiment("Secret_Model"), run_name="private")
    linked = _study(jp_root_dir / "Linked_Study")
    (linked / "mlflow.db").symlink_to(outside / "mlflow.db")
    before = _listing(outside, linked)

    async def reads() -> list[tuple[int, dict[str, object]]]:
        return [await _get(jp_fetch, route, "Linked_Study/Train_Forest.ipynb")
                for route in ("experiments", "runs")]

    for code, body in jp_asyncio_loop.run_until_complete(reads()):
        assert code == 403 and body["code"] == "store-outside-root", body
        assert "Secret_Model" not in json.dumps(body), body
    assert _listing(outside, linked) == before


@pytest.mark.fault("lost")
def test_a_full_disk_under_the_store_is_waited_for_not_a_rejection(small_disk: Path) -> None:
    """The store's own disk fills: MLflow's error says nothing about the record, so the
    record stays in the spool to be resent, rather than being quarantined as refused."""
    import sqlite3

    from jupyter_mlops.tracking.sink import BUSY, classify

    db = small_disk / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("create table runs (payload blob)")
    fill(small_disk / "filler.bin")
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("insert into runs values (?)", (b"\0" * 1_000_000,))
        conn.commit()
    conn.close()
    assert classify(full.value) == BUSY, full.value
    with pytest.raises(OSError) as spool_full:
        (small_disk / "run.ids").write_bytes(b"\0" * 100_000)
    assert classify(spool_full.value) == BUSY, spool_full.value
