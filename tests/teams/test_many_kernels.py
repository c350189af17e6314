"""Many kernels, one team server: 16 notebooks tracking at once into a PostgreSQL-backed
`mlflow server` lose and duplicate nothing and leave no run RUNNING; a server restart in the
middle of a session loses nothing either."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kernel_driver import Kernel
from mlflow.tracking import MlflowClient
from pg_server import MlflowServer

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "Churn_Team"
CELLS = 10
TRACK = """%%mlops track Fold_{i} --params n_estimators,max_depth --metrics auc,log_loss
n_estimators, max_depth = {n}, {depth}
auc = 0.5 + {i} / 100
log_loss = 1 / ({i} + 2)
print("fold {i} of {notebook}")"""


def notebook(k: int) -> str:
    return f"Churn_Kernel_{k:02d}"


def track(kernel_no: int, i: int) -> str:
    return TRACK.format(i=i, n=50 + i, depth=kernel_no % 5 + 2, notebook=notebook(kernel_no))


def team_session(server: MlflowServer, home: Path, kernels: int,
                 between: Callable[[int], None] | None = None) -> list[str]:
    """Start `kernels` kernels at once and run CELLS tracked cells in each, all together;
    `between(i)` runs once every kernel has run cell i. Returns each `%mlops end`'s words."""
    barrier = threading.Barrier(kernels)
    done = [threading.Event() for _ in range(CELLS)]

    def give_up() -> None:  # one kernel failed: the others stop waiting for it
        barrier.abort()
        for event in done:
            event.set()

    def one(k: int) -> str:
        work = home / notebook(k)
        work.mkdir()
        env = {**os.environ, "HOME": str(home), "MLFLOW_TRACKING_URI": server.uri,
               "JUPYTER_MLOPS_NOTEBOOK": f"{notebook(k)}.ipynb", "PYTHONPATH": str(REPO)}
        kernel = Kernel(work, env)
        try:
            kernel.ok(f"%load_ext jupyter_mlops\n%mlops start --experiment {EXPERIMENT}")
            barrier.wait(timeout=600)  # the cells run while every kernel runs its own
            for i in range(CELLS):
                said = kernel.ok(track(k, i))
                assert f"fold {i} of {notebook(k)}" in said.stdout
                if between is not None and barrier.wait(timeout=600) == 0:
                    between(i)
                    done[i].set()
                if between is not None:
                    assert done[i].wait(timeout=600)
            return kernel.ok("%mlops end").stdout
        except BaseException:
            give_up()
            raise
        finally:
            kernel.stop()

    with ThreadPoolExecutor(kernels) as pool:
        return list(pool.map(one, range(kernels)))


def assert_stored_once(server: MlflowServer, kernels: int) -> None:
    """Every notebook's session run and its CELLS cell runs, each once, FINISHED, with their
    params, metrics and stdout artifact."""
    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    per_notebook = Counter((Path(r.data.tags.get("mlops.notebook", "?")).stem, r.info.run_name)
                           for r in runs)
    expected = Counter({(notebook(k), f"Fold_{i}"): 1 for k in range(kernels)
                        for i in range(CELLS)})
    cell_runs = Counter({key: n for key, n in per_notebook.items() if key[1].startswith("Fold_")})
    assert cell_runs == expected, cell_runs - expected or expected - cell_runs
    assert len(runs) == kernels * (CELLS + 1), len(runs)  # a session run per notebook
    assert {r.info.status for r in runs} == {"FINISHED"}
    artifacts = server.folder / "artifacts" / experiment.experiment_id
    for run in runs:
        if not run.info.run_name.startswith("Fold_"):
            continue
        i = int(run.info.run_name.removeprefix("Fold_"))
        assert run.data.metrics == {"auc": 0.5 + i / 100, "log_loss": 1 / (i + 2)}
        assert run.data.params["n_estimators"] == str(50 + i)
        stdout = artifacts / run.info.run_id / "artifacts" / "stdout.txt"
        name = Path(run.data.tags["mlops.notebook"]).stem
        assert stdout.read_text().strip() == f"fold {i} of {name}"


def test_sixteen_kernels_at_once_lose_and_duplicate_nothing(team_server: MlflowServer,
                                                            tmp_path: Path) -> None:
    ends = team_session(team_server, tmp_path, 16)
    assert all("all records stored" in end for end in ends), ends
    assert_stored_once(team_server, 16)


def test_a_server_restart_mid_session_loses_nothing(
        new_team_server: Callable[[], MlflowServer], tmp_path: Path) -> None:
    """Four kernels; the server is stopped after their third cell and started again on the
    same port after their seventh: the cells in between wait in the spools."""
    first = new_team_server()
    again: list[MlflowServer] = []

    def between(i: int) -> None:
        if i == 2:
            first.stop()
        elif i == 6:
            again.append(MlflowServer(first.backend_uri, first.folder, port=first.port))
            again[0].start()

    try:
        ends = team_session(first, tmp_path, 4, between)
        assert all("all records stored" in end for end in ends), ends
        assert_stored_once(again[0], 4)
    finally:
        for server in again:
            server.stop()
