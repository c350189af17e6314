"""A notebook with thousands of runs: the first request does not wait for them all. Its page
comes newest first straight from the store while the run index loads in the background, the
response says `loading` until then (a sort by metric covers only what has loaded), and page
tokens lead to the same next page across the switch and while new runs arrive. A load that
fails says why in every response (`error`, naming the store) until one succeeds."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from benchmarks.bench_server import FinishedRun, insert_runs
from jupyter_mlops.server import runindex
from jupyter_mlops.server.runindex import RunIndex, RunQuery, Scope
from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG
from jupyter_mlops.tracking.notebook_info import tag_value

from .conftest import EXAMPLE, TOKEN, fetch_json

NAME = "Churn_Sweep.ipynb"
RUNS = 3_000
PAGE = 100
ORDER = "metrics.accuracy DESC"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's root, holding the notebook and (in a folder of its own) the store."""
    folder = tmp_path_factory.mktemp("many")
    (folder / "root").mkdir()
    (folder / "root" / NAME).write_bytes(EXAMPLE.read_bytes())
    return folder


@pytest.fixture(scope="module")
def store(root: Path) -> dict[str, str]:
    """RUNS finished runs of the notebook a sweep left in 'Churn Sweep', one a second, with
    two-decimal accuracies (ties), and a few runs of another notebook in the same experiment."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    eid = client.create_experiment("Churn Sweep", artifact_location=str(root / "artifacts"))
    rng, start = random.Random(19), int(time.time() * 1000) - RUNS * 1000
    notebook = tag_value(root / "root" / NAME)
    runs = [FinishedRun(uuid.UUID(int=rng.getrandbits(128)).hex, f"fit-{i}", start + i * 1000,
                        {"accuracy": round(rng.random(), 2), "f1": rng.random()},
                        {"max_depth": str(rng.randint(2, 12))},
                        {NOTEBOOK_TAG: notebook if i % 50 else "/elsewhere/Other.ipynb"})
            for i in range(RUNS)]
    insert_runs(uri, eid, runs)
    return {"uri": uri, "experiment_id": eid,
            "filter": f"tags.`{NOTEBOOK_TAG}` = '{notebook}'"}


@pytest.fixture
def jp_root_dir(root: Path) -> Path:
    return root / "root"


@pytest.fixture
def jp_server_config(store: dict[str, str]) -> dict[str, object]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
            "IdentityProvider": {"token": TOKEN},
            "MlopsExtension": {"tracking_uri": store["uri"], "min_refresh_seconds": 0.0}}


def _index(jp_serverapp, store: dict[str, str]) -> RunIndex:  # noqa: ANN001
    """The run index the runs endpoint reads (the server's own)."""
    return jp_serverapp.web_app.settings["jupyter_mlops"].stores.get(store["uri"]).index


async def _runs(jp_fetch, **params: object) -> dict:  # noqa: ANN001
    code, body = await fetch_json(jp_fetch, "mlops", "api", "runs",
                                  params={"notebook": NAME, "max_results": PAGE, **params})
    assert code == 200, body
    return body


def _ids(body: dict) -> list[str]:
    return [run["run_id"] for run in body["runs"]]


def _mlflow_pages(store: dict[str, str], order: list[str], pages: int = 2) -> list[list[str]]:
    client, found, token = MlflowClient(tracking_uri=store["uri"]), [], None
    for _ in range(pages):
        page = client.search_runs([store["experiment_id"]], store["filter"], order_by=order,
                                  max_results=PAGE, page_token=token)
        found.append([run.info.run_id for run in page])
        token = page.token
    return found


async def _until_loaded(jp_fetch, **params: object) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        body = await _runs(jp_fetch, **params)
        if not body["loading"]:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError("the runs never finished loading")


def _new_run(store: dict[str, str]) -> str:
    """A cell run started now: the newest of the notebook's runs."""
    client = MlflowClient(tracking_uri=store["uri"])
    tags = {NOTEBOOK_TAG: store["filter"].split("'")[1]}
    return client.create_run(store["experiment_id"], run_name="late-cell", tags=tags).info.run_id


async def test_first_page_newest_first_while_loading_then_every_order(
        jp_fetch, jp_serverapp, store) -> None:  # noqa: ANN001
    first_two, by_metric = _mlflow_pages(store, []), _mlflow_pages(store, [ORDER], 1)[0]
    index = _index(jp_serverapp, store)
    with index.load_lock:  # the background load waits: what the user sees meanwhile
        page1 = await _runs(jp_fetch)
        assert page1["loading"] is True
        assert _ids(page1) == first_two[0]  # newest first, as MLflow orders them
        assert page1["total"] >= PAGE + 1 and page1["next_page_token"]
        late = _new_run(store)  # a run arriving between two pages shifts nothing
        page2 = await _runs(jp_fetch, page_token=page1["next_page_token"])
        assert (page2["loading"], _ids(page2)) == (True, first_two[1])
        partial = await _runs(jp_fetch, order_by=ORDER)
        assert partial["loading"] is True
        accuracies = [run["metrics"]["accuracy"] for run in partial["runs"]]
        assert accuracies == sorted(accuracies, reverse=True)
        assert set(_ids(partial)) <= {late, *first_two[0], *first_two[1]}  # what has loaded
        assert _ids(partial) != by_metric
    loaded = await _until_loaded(jp_fetch, order_by=ORDER)
    assert (loaded["loading"], _ids(loaded)) == (False, _mlflow_pages(store, [ORDER], 1)[0])
    assert loaded["total"] == RUNS - RUNS // 50 + 1
    # The token of a page given while loading still leads to the page after it.
    again = await _runs(jp_fetch, page_token=page1["next_page_token"])
    assert (again["loading"], _ids(again)) == (False, first_two[1])
    newest = await _runs(jp_fetch)
    assert _ids(newest)[0] == late and _ids(newest)[1:] == first_two[0][:-1]


def test_the_least_recently_used_scope_is_dropped_beyond_max_runs(store) -> None:
    client = MlflowClient(tracking_uri=store["uri"])
    small = client.create_experiment("Churn Baseline")
    for i in range(3):
        client.create_run(small, run_name=f"baseline-{i}")
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0, max_runs=1_000)
    for experiment in (store["experiment_id"], small):
        index.search(experiment, RunQuery())
        assert index.wait_loaded(experiment, timeout=240)
    # The big experiment went when the small one was asked for; the small one stays.
    assert index.search(small, RunQuery()).loading is False
    assert index.search(store["experiment_id"], RunQuery()).loading is True


def test_a_notebook_with_few_of_the_experiments_runs_pages_by_its_tag(store) -> None:
    """One run in 50 is the other notebook's: its newest page, as MLflow's tag filter gives it."""
    client = MlflowClient(tracking_uri=store["uri"])
    where = f"tags.`{NOTEBOOK_TAG}` = '/elsewhere/Other.ipynb'"
    expected = [r.info.run_id for r in client.search_runs([store["experiment_id"]], where,
                                                          max_results=20)]
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    scope = Scope(None, ((NOTEBOOK_TAG, "/elsewhere/Other.ipynb"),))
    with index.load_lock:
        page = index.search(scope, RunQuery(max_results=20))
        assert ([r.info.run_id for r in page.runs], page.loading) == (expected, True)


def _move_table(store: dict[str, str], old: str, new: str) -> None:
    with sqlite3.connect(store["uri"].removeprefix("sqlite:///")) as db:
        db.execute(f"ALTER TABLE {old} RENAME TO {new}")


async def test_a_load_that_fails_says_why_until_one_succeeds(
        jp_fetch, jp_serverapp, store) -> None:  # noqa: ANN001
    index = _index(jp_serverapp, store)
    with index.load_lock:
        first = await _runs(jp_fetch)
        assert (first["loading"], first["error"]) == (True, None)
        # The store breaks under the load (a table MLflow reads is gone, as after a bad
        # migration): the load's first page fails.
        _move_table(store, "latest_metrics", "latest_metrics_away")
    try:
        deadline = time.monotonic() + 120
        while not (failed := await _runs(jp_fetch, order_by=ORDER))["error"]:
            assert time.monotonic() < deadline, "the failed load was never reported"
            await asyncio.sleep(0.2)
        assert failed["loading"] is True
        assert failed["error"].startswith("the runs could not all be read from sqlite:///")
        assert "mlflow.db" in failed["error"] and "latest_metrics" in failed["error"]
        assert len(failed["error"].splitlines()) == 1
    finally:
        _move_table(store, "latest_metrics_away", "latest_metrics")
    loaded = await _until_loaded(jp_fetch, order_by=ORDER)
    assert loaded["error"] is None and loaded["total"] >= RUNS - RUNS // 50


def test_runs_spread_over_days_page_as_mlflow_pages_them(store) -> None:
    """A nightly notebook's runs, one every 3 hours for 3 days (newest pages read the last
    hour, the rest of the day, then older): every page as MLflow's, cursor to cursor."""
    client = MlflowClient(tracking_uri=store["uri"])
    eid = client.create_experiment("Churn Nightly")
    now, hour = int(time.time() * 1000), 3_600_000
    for i in range(24):
        client.create_run(eid, start_time=now - i * 3 * hour, run_name=f"nightly-{i}",
                          tags={NOTEBOOK_TAG: "/home/ana/Nightly.ipynb"})
    expected, token = [], None
    while True:
        page = client.search_runs([eid], f"tags.`{NOTEBOOK_TAG}` = '/home/ana/Nightly.ipynb'",
                                  max_results=5, page_token=token)
        expected.append([r.info.run_id for r in page])
        if not (token := page.token):
            break
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    scope, pages, after = Scope((eid,), ((NOTEBOOK_TAG, "/home/ana/Nightly.ipynb"),)), [], None
    with index.load_lock:
        while True:
            found = index.search(scope, RunQuery(max_results=5, offset=5 * len(pages),
                                                 after=after))
            pages.append([r.info.run_id for r in found.runs])
            if found.next_offset is None:
                break
            after = found.cursor()
    assert pages == expected


def test_a_full_load_holds_every_run_across_years_of_gaps(store) -> None:
    """The full load reads windows of start time (wider across quiet spells, narrower where
    runs are dense): runs from three years ago, last month, a burst this hour and one started
    'in the future' by another machine's clock, more than the newest runs a first answer
    reads, all end up in the index, sorted as MLflow sorts them."""
    client = MlflowClient(tracking_uri=store["uri"])
    eid = client.create_experiment("Churn Archive")
    now, day = int(time.time() * 1000), 24 * 3_600_000
    starts = [*(now - 3 * 365 * day + i for i in range(25)),
              *(now - 30 * day - i for i in range(25)),
              now + 300_000, *(now - i * 1_000 for i in range(250))]
    rng = random.Random(7)
    insert_runs(store["uri"], eid, [
        FinishedRun(uuid.UUID(int=rng.getrandbits(128)).hex, f"archived-{i}", start,
                    {"accuracy": round(rng.random(), 2)}, {},
                    {NOTEBOOK_TAG: "/home/ana/Archive.ipynb"})
        for i, start in enumerate(starts)])
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    scope = Scope((eid,), ((NOTEBOOK_TAG, "/home/ana/Archive.ipynb"),))
    index.search(scope, RunQuery(order_by=(ORDER,)))
    assert index.wait_loaded(scope, timeout=120)
    found = index.search(scope, RunQuery(order_by=(ORDER,), max_results=1_000))
    expected = client.search_runs([eid], order_by=[ORDER], max_results=1_000)
    assert not found.loading and found.total == len(starts)
    assert [r.info.run_id for r in found.runs] == [r.info.run_id for r in expected]


class _PausedLoad:
    """The store as the run index sees it (a real MlflowClient), with the full load's pages
    held back after its first `pages` queries, and every query counted."""

    def __init__(self, uri: str, pages: int) -> None:
        self.client, self.pages = MlflowClient(tracking_uri=uri), pages
        self.queries: list[str] = []
        self.go_on = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    def search_runs(self, *args: object, **kwargs: object) -> object:
        loading = threading.current_thread().name == "mlops-run-index"
        if loading and len([q for q in self.queries if q.startswith("load")]) >= self.pages:
            assert self.go_on.wait(120)
        self.queries.append(("load: " if loading else "answer: ") + str(kwargs["filter_string"]))
        return self.client.search_runs(*args, **kwargs)


def _search_runs_pages(store: dict[str, str], size: int, pages: int) -> list[list[str]]:
    client, found, token = MlflowClient(tracking_uri=store["uri"]), [], None
    for _ in range(pages):
        page = client.search_runs([store["experiment_id"]], store["filter"], max_results=size,
                                  page_token=token)
        found.append([run.info.run_id for run in page])
        token = page.token
    return found


def test_pages_the_load_has_read_are_answered_from_memory_while_it_goes_on(
        store, monkeypatch) -> None:
    """The panel's next pages and polls while the notebook's runs load: once the load has
    read past a newest-first page, it comes from what is held, no query to the store, and
    equals MLflow's page; a page further on waits for the load, then asks the store."""
    # A page waits for the load at most _HELD_WAIT_S; a loaded machine may take longer to
    # read 601 runs, so the wait is made long enough that only what is tested decides.
    monkeypatch.setattr(runindex, "_HELD_WAIT_S", 120.0)
    expected = _search_runs_pages(store, 50, 12)
    # The load reads 101 runs, then 250 a page: 601 (one in 50 not the notebook's), then waits.
    spy = _PausedLoad(store["uri"], pages=3)
    index = RunIndex(spy, full_refresh_seconds=3600, min_refresh_seconds=3600)
    scope = Scope((store["experiment_id"],), ((NOTEBOOK_TAG, store["filter"].split("'")[1]),))
    first = index.search(scope, RunQuery(max_results=50))
    assert [r.info.run_id for r in first.runs] == expected[0] and first.loading
    asked = len(spy.queries)
    second = index.search(scope, RunQuery(max_results=50, offset=50, after=first.cursor()))
    third = index.search(scope, RunQuery(max_results=50, offset=100, after=second.cursor()))
    polled = index.search(scope, RunQuery(max_results=550))
    assert [r.info.run_id for r in second.runs] == expected[1]
    assert [r.info.run_id for r in third.runs] == expected[2]
    assert [r.info.run_id for r in polled.runs] == [i for page in expected[:11] for i in page]
    assert (second.loading, third.loading, polled.loading) == (True, True, True)
    assert not [q for q in spy.queries[asked:] if q.startswith("answer")]
    # Beyond the runs the paused load has read: after a wait for it, from the store.
    monkeypatch.setattr(runindex, "_HELD_WAIT_S", 0.2)
    deep = index.search(scope, RunQuery(max_results=50, offset=550, after=polled.cursor()))
    assert [r.info.run_id for r in deep.runs] == expected[11]
    assert [q for q in spy.queries[asked:] if q.startswith("answer")]
    spy.go_on.set()
    assert index.wait_loaded(scope, timeout=120)
    # The notebook's runs are most of the experiment's: its windows were read without the
    # tag filter (which joins every run's tags).
    assert not [q for q in spy.queries if q.startswith("load") and "tags." in q]


def test_a_notebook_with_few_of_the_experiments_runs_loads_exactly_its_own(store) -> None:
    """One run in 50 is the other notebook's: its full load (the tag filter, once a window
    shows the runs read are mostly others') holds exactly MLflow's runs for the tag."""
    client = MlflowClient(tracking_uri=store["uri"])
    where = f"tags.`{NOTEBOOK_TAG}` = '/elsewhere/Other.ipynb'"
    expected = [r.info.run_id for r in client.search_runs([store["experiment_id"]], where,
                                                          max_results=1_000)]
    index = RunIndex(client, full_refresh_seconds=3600, min_refresh_seconds=0)
    scope = Scope((store["experiment_id"],), ((NOTEBOOK_TAG, "/elsewhere/Other.ipynb"),))
    index.search(scope, RunQuery(max_results=20))
    assert index.wait_loaded(scope, timeout=120)
    found = index.search(scope, RunQuery(max_results=1_000))
    assert ([r.info.run_id for r in found.runs], found.loading) == (expected, False)


class _FailingLoad(_PausedLoad):
    """The store failing the full load's queries after its first `pages`, as a server timing
    out would, until `go_on` is set."""

    def search_runs(self, *args: object, **kwargs: object) -> object:
        from mlflow.exceptions import MlflowException

        loads = [q for q in self.queries if q.startswith("load")]
        if threading.current_thread().name == "mlops-run-index" and \
                len(loads) >= self.pages and not self.go_on.is_set():
            self.queries.append("load: failed")
            raise MlflowException("the tracking server timed out")
        return super().search_runs(*args, **kwargs)


def test_a_page_answered_from_memory_starts_a_failed_load_again(store) -> None:
    """A load that failed after reading the notebook's newest runs: the panel's poll is still
    answered from them, says why the rest is missing, and starts the load again, as any
    request does, until the index holds every run."""
    spy = _FailingLoad(store["uri"], pages=1)
    index = RunIndex(spy, full_refresh_seconds=3600, min_refresh_seconds=3600)
    scope = Scope((store["experiment_id"],), ((NOTEBOOK_TAG, store["filter"].split("'")[1]),))
    first = index.search(scope, RunQuery(max_results=50))
    deadline = time.monotonic() + 120
    while "load: failed" not in spy.queries or index._entry(scope).loading:
        assert time.monotonic() < deadline, "the load never failed"
        time.sleep(0.05)
    spy.go_on.set()  # the server answers again
    polled = index.search(scope, RunQuery(max_results=50))
    assert [r.info.run_id for r in polled.runs] == [r.info.run_id for r in first.runs]
    assert polled.error and "the tracking server timed out" in polled.error
    assert index.wait_loaded(scope, timeout=120)  # started again by the poll
    assert index.search(scope, RunQuery(max_results=50)).error is None
