"""The run index answers exactly as MlflowClient.search_runs does, also as runs come and go."""

from __future__ import annotations

import math
import time

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from jupyter_mlops.server.runindex import RunIndex, RunQuery, Scope

ORDERS = [
    (),
    ("metrics.acc DESC",),
    ("metrics.acc ASC",),
    ("metrics.loss DESC", "params.lr ASC"),
    ("params.lr DESC",),
    ("attributes.start_time ASC",),
    ("attributes.end_time DESC",),
    ("attributes.run_name ASC",),
    ("tags.group DESC", "metrics.acc ASC"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowClient, str]:
    """60 runs with ties, missing values, NaN and infinities, as the sort must handle them."""
    folder = tmp_path_factory.mktemp("index")
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=str(folder / "a"))
    base = int(time.time() * 1000)
    for i in range(60):
        run = client.create_run(experiment, start_time=base + i // 3, run_name=f"r{i % 7}",
                                tags={"group": str(i % 4)} if i % 5 else {})
        metrics = [Metric("acc", _acc(i), base, 0)] if i % 6 else []
        if i % 2:
            metrics.append(Metric("loss", float(i % 9), base, 0))
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param("lr", str(i % 5 / 10))] if i % 4 else [])
        if i % 3:
            client.set_terminated(run.info.run_id, end_time=base + 1000 + i % 10)
    return client, experiment


def _acc(i: int) -> float:
    return {7: math.nan, 13: math.inf, 19: -math.inf}.get(i, round((i % 10) / 10, 1))


def _mlflow_ids(client: MlflowClient, experiment: str, order: tuple[str, ...]) -> list[str]:
    ids, token = [], None
    while True:
        page = client.search_runs([experiment], order_by=list(order), max_results=25,
                                  page_token=token)
        ids += [r.info.run_id for r in page]
        token = page.token
        if not token:
            return ids


def _index_ids(index: RunIndex, experiment: str, order: tuple[str, ...]) -> list[str]:
    index.search(experiment, RunQuery(max_results=1))  # starts the load in the background
    assert index.wait_loaded(experiment, timeout=120)
    ids, offset = [], 0
    while offset is not None:
        page = index.search(experiment, RunQuery(order, (), 25, offset))
        ids += [r.info.run_id for r in page.runs]
        offset = page.next_offset
    return ids


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: ",".join(o) or "default")
def test_pages_match_search_runs(store, order) -> None:
    client, experiment = store
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    assert _index_ids(index, experiment, order) == _mlflow_ids(client, experiment, order)


def test_new_and_finishing_runs_show_up_without_a_full_reload(store) -> None:
    client, experiment = store
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    order = ("metrics.acc DESC",)
    before = _index_ids(index, experiment, order)
    live = client.create_run(experiment, run_name="live")
    client.log_metric(live.info.run_id, "acc", 0.95)
    ids = _index_ids(index, experiment, order)
    assert ids[1] == live.info.run_id  # after the +inf run
    assert ids == _mlflow_ids(client, experiment, order)
    client.log_metric(live.info.run_id, "acc", -5.0)  # a live run's metric changes
    client.set_terminated(live.info.run_id)
    after = _index_ids(index, experiment, order)
    assert after == _mlflow_ids(client, experiment, order)
    assert len(after) == len(before) + 1
    page = index.search(experiment, RunQuery(order, (), 100, 0))
    assert {r.info.run_id: r.info.status for r in page.runs}[live.info.run_id] == "FINISHED"
    client.delete_run(live.info.run_id)


def test_a_full_reload_drops_deleted_runs(store) -> None:
    client, experiment = store
    index = RunIndex(client, full_refresh_seconds=0, min_refresh_seconds=0)
    doomed = client.create_run(experiment, run_name="doomed")
    client.set_terminated(doomed.info.run_id)
    assert doomed.info.run_id in _index_ids(index, experiment, ())
    client.delete_run(doomed.info.run_id)
    deadline = time.monotonic() + 120  # the reload runs in a background thread; wait for it
    while time.monotonic() < deadline:
        if doomed.info.run_id not in _index_ids(index, experiment, ()):
            break
        time.sleep(0.05)
    assert _index_ids(index, experiment, ()) == _mlflow_ids(client, experiment, ())


def test_tag_filter_matches_mlflow_filter(store) -> None:
    client, experiment = store
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    index.search(experiment, RunQuery())
    assert index.wait_loaded(experiment, timeout=120)
    page = index.search(experiment, RunQuery(("metrics.acc DESC",), (("group", ("3",)),),
                                             100, 0))
    expected = client.search_runs([experiment], "tags.`group` = '3'",
                                  order_by=["metrics.acc DESC"], max_results=100)
    assert len(expected) > 5
    assert [r.info.run_id for r in page.runs] == [r.info.run_id for r in expected]


def test_a_scope_across_experiments_matches_mlflows_tag_filter(tmp_path) -> None:
    """A notebook's runs in every experiment, by either of two tags; paths with quotes too
    (MLflow's filter has no escapes: such a value is searched with LIKE, then matched exactly)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    paths = ["/work/Churn Model.ipynb", "/work/Bob's model.ipynb", "/work/a 'b' \"c\".ipynb"]
    near = "/work/a 'b' \"d\".ipynb"  # what the LIKE pattern of the last path also matches
    experiments = [client.create_experiment(n, artifact_location=str(tmp_path / n))
                   for n in ("Baseline", "Tuning")]
    expected: dict[str, set[str]] = {p: set() for p in paths}
    for i, path in enumerate([*paths, near] * 2):
        # Each path: a run of it in Baseline, and a run it launched in Tuning.
        experiment = experiments[i // 4]
        tags = {"mlops.notebook": path} if i < 4 else {"mlops.launched_from": path}
        run_id = client.create_run(experiment, run_name=f"r{i}", tags=tags).info.run_id
        expected.get(path, set()).add(run_id)
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    for path in paths:
        scope = Scope(None, (("mlops.notebook", path), ("mlops.launched_from", path)))
        page = index.search(scope, RunQuery(max_results=100))
        assert {r.info.run_id for r in page.runs} == expected[path], path
        assert index.experiments_of(scope) == {experiments[0]: 1, experiments[1]: 1}
        narrowed = index.search(scope, RunQuery(max_results=100,
                                                experiment_ids=(experiments[1],)))
        assert [r.info.experiment_id for r in narrowed.runs] == [experiments[1]]
    assert index.experiment_names[experiments[1]] == "Tuning"


def test_runs_arriving_take_their_place_in_every_order_held(store) -> None:
    """Runs that start, or change while live, once the index is loaded are placed in each
    order it holds sorted (a re-sort of 100,000 runs takes 0.2 s): every order's pages stay
    MLflow's, with NaN, infinities, missing values and ties, and so do a tag filter's."""
    client, experiment = store
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    tagged = RunQuery(("metrics.acc DESC",), (("group", ("3",)),), 100, 0)
    for order in ORDERS:
        _index_ids(index, experiment, order)
    index.search(experiment, tagged)
    held = dict(index._entry(Scope((experiment,))).sorted_cache)
    base, late = int(time.time() * 1000), []
    for i in range(8):  # some start together (ties), two stay live and change below
        run = client.create_run(experiment, start_time=base + i // 3, run_name=f"late-{i % 3}",
                                tags={"group": "3"} if i % 2 else {})
        client.log_batch(run.info.run_id, params=[Param("lr", str(i % 3 / 10))] if i % 4 else [],
                         metrics=[Metric("acc", _acc(i * 6 + 1), base, 0)] if i != 5 else [])
        if i < 6:
            client.set_terminated(run.info.run_id, end_time=base + 2000 + i)
        late.append(run.info.run_id)
    index.search(experiment, RunQuery(max_results=1))  # what changed, read and placed
    client.log_metric(late[6], "acc", math.nan)  # a live run's metric and tag change
    client.set_tag(late[7], "group", "3")
    client.log_metric(late[7], "acc", 0.5)
    try:
        for order in ORDERS:
            assert _index_ids(index, experiment, order) == _mlflow_ids(client, experiment, order)
        expected = client.search_runs([experiment], "tags.`group` = '3'",
                                      order_by=["metrics.acc DESC"], max_results=100)
        page = index.search(experiment, tagged)
        assert [r.info.run_id for r in page.runs] == [r.info.run_id for r in expected]
        cache = index._entry(Scope((experiment,))).sorted_cache
        assert all(cache.get(key) is ordered for key, ordered in held.items())  # placed
    finally:
        for run_id in late:
            client.delete_run(run_id)
