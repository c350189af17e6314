"""The panel's run index on the team server (PostgreSQL behind `mlflow server`): a notebook's
sweep of 2,000 runs. Its first pages come newest first while the index loads, a sort by metric
says it is partial, and once loaded every order is MLflow's own."""

from __future__ import annotations

import random
import time
import uuid

from mlflow import MlflowClient
from pg_server import MlflowServer

from benchmarks.bench_server import FinishedRun, insert_runs
from jupyter_mlops.server.runindex import RunIndex, RunQuery, Scope
from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG

NOTEBOOK = "/home/ana/Churn_Sweep.ipynb"
RUNS = 2_000
ORDER = ("metrics.accuracy DESC",)


def _sweep(server: MlflowServer) -> tuple[MlflowClient, str]:
    client = MlflowClient(server.uri)
    eid = client.create_experiment("Churn Sweep")
    rng, start = random.Random(3), int(time.time() * 1000) - RUNS * 1000
    runs = [FinishedRun(uuid.UUID(int=rng.getrandbits(128)).hex, f"fit-{i}", start + i * 1000,
                        {"accuracy": round(rng.random(), 2), "f1": rng.random()},
                        {"n_estimators": str(rng.choice((50, 100, 200)))},
                        {NOTEBOOK_TAG: NOTEBOOK})
            for i in range(RUNS)]
    insert_runs(server.backend_uri, eid, runs)
    return client, eid


def _mlflow_ids(client: MlflowClient, eid: str, order: tuple[str, ...], pages: int
                ) -> list[list[str]]:
    found, token = [], None
    for _ in range(pages):
        page = client.search_runs([eid], f"tags.`{NOTEBOOK_TAG}` = '{NOTEBOOK}'",
                                  order_by=list(order), max_results=100, page_token=token)
        found.append([run.info.run_id for run in page])
        token = page.token
    return found


def _ids(page) -> list[str]:  # noqa: ANN001
    return [run.info.run_id for run in page.runs]


def test_a_sweeps_runs_page_newest_first_while_loading(team_server: MlflowServer) -> None:
    client, eid = _sweep(team_server)
    newest = _mlflow_ids(client, eid, (), 2)
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    scope = Scope(None, ((NOTEBOOK_TAG, NOTEBOOK),))  # the notebook's runs in every experiment
    with index.load_lock:  # the background load waits meanwhile
        first = index.search(scope, RunQuery(max_results=100))
        assert (first.loading, _ids(first)) == (True, newest[0])
        second = index.search(scope, RunQuery(max_results=100, offset=100, after=first.cursor()))
        assert (second.loading, _ids(second)) == (True, newest[1])
        partial = index.search(scope, RunQuery(ORDER, max_results=100))
        assert partial.loading and set(_ids(partial)) <= {*newest[0], *newest[1]}
    assert index.wait_loaded(scope, timeout=240)
    [by_metric] = _mlflow_ids(client, eid, ORDER, 1)
    loaded = index.search(scope, RunQuery(ORDER, max_results=100))
    assert (loaded.loading, loaded.total, _ids(loaded)) == (False, RUNS, by_metric)
    again = index.search(scope, RunQuery(max_results=100, offset=100, after=first.cursor()))
    assert _ids(again) == newest[1]
