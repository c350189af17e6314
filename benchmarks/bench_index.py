"""Runs endpoint at team scale: a notebook's runs on a cold server, at 10,000 runs in a SQLite
store and at 100,000 behind a PostgreSQL-backed `mlflow server` (tests/pg_server.py), against
MlflowClient.search_runs with the same order in the same run; and the index's memory.

`.venv/bin/python -m benchmarks index` (BENCH_INDEX=sqlite, =postgresql or =placement: one
part; BENCH_INDEX_RUNS=N: N runs instead).
Runs (10 params, 10 metrics, 5 tags, the notebook's path tag) are written straight into
MLflow's tables (bench_server.insert_runs); the time it took is printed. The PostgreSQL
cluster is a private one in a temp folder, made and removed by the benchmark. The endpoint is
called over HTTP on a real `jupyter server` with the extension: first request of the notebook's
runs (newest first, answered while the index loads), its next page and a sort by metric then,
a page further a second later, the time until the index holds every run, later pages and sorts
(p50 of 20), a sort polled while runs arrive, and the first request on more fresh servers.
`placement` times, in process, a run arriving placed in a sorted order against a re-sort.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_server import (
    FinishedRun,
    free_port,
    get,
    insert_runs,
    start_server,
    timed,
)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "index"
NOTEBOOK = "Churn_Sweep.ipynb"
PAGE = 50  # the panel's first request (labextension/src/panel.ts FIRST_PAGE)
OLD_PAGE = 100  # its first request until 2026-12-02, measured beside it
ORDER = "metrics.accuracy DESC"
REPEATS = 20
BASELINE_REPEATS = 3
SIZES = {"sqlite": 10_000, "postgresql": 100_000, "placement": 100_000}


def make_runs(count: int, notebook_tag: str) -> list[FinishedRun]:
    """`count` finished runs of the notebook, one a second up to now, two-decimal accuracies."""
    from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG

    rng, start = random.Random(19), int(time.time() * 1000) - count * 1000
    runs = []
    for i in range(count):
        metrics = {"accuracy": round(rng.random(), 2), **{f"m{k}": rng.random() for k in range(9)}}
        params = {f"p{k}": str(rng.randint(0, 50)) for k in range(10)}
        tags = {"mlflow.runName": f"cell-{i}", NOTEBOOK_TAG: notebook_tag,
                **{f"t{k}": f"v{rng.randint(0, 5)}" for k in range(3)}}
        runs.append(FinishedRun(uuid.UUID(int=rng.getrandbits(128)).hex, f"cell-{i}",
                                start + i * 1000, metrics, params, tags))
    return runs


def fill(backend_uri: str, tracking_uri: str, count: int, root: Path) -> tuple[str, float]:
    """The experiment 'Churn Sweep' of `count` runs of root/NOTEBOOK; its id, seconds taken."""
    from mlflow import MlflowClient

    from jupyter_mlops.tracking.notebook_info import tag_value

    (root / NOTEBOOK).write_bytes((ROOT / "notebooks" / "02_tagged_pipeline.ipynb").read_bytes())
    started = time.perf_counter()
    eid = MlflowClient(tracking_uri).create_experiment("Churn Sweep")
    runs = make_runs(count, tag_value(root / NOTEBOOK))
    for start in range(0, count, 10_000):  # bounded memory at 100,000
        insert_runs(backend_uri, eid, runs[start:start + 10_000])
    return eid, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (the machine is shared: wall time is not)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@contextlib.contextmanager
def fresh_server(tracking_uri: str, root: Path) -> Iterator[tuple[int, str, int]]:
    """A `jupyter server` with the extension just started (port, token, pid), stopped after.
    The extension's default refresh (what changed asked of the store every 2 s), as a user's
    panel has it."""
    token, port = secrets.token_hex(8), free_port()
    server = start_server(tracking_uri, port, token, work=root, min_refresh=None)
    try:
        yield port, token, server.pid
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def endpoint_figures(tracking_uri: str, root: Path) -> dict[str, Any]:
    with fresh_server(tracking_uri, root) as (port, token, pid):
        figures = _measure(port, token, pid)
        figures["arriving"] = arriving_sorts(port, token, tracking_uri, _tag(root))
        return figures


def cold_first_requests(tracking_uri: str, root: Path, rounds: int = 3,
                        ) -> dict[int, list[float]]:
    """The first request again on fresh servers (its figure above is one call), at the
    panel's first page and at the first page it asked before, in turn."""
    seconds: dict[int, list[float]] = {PAGE: [], OLD_PAGE: []}
    for _ in range(rounds):
        for size in seconds:
            with fresh_server(tracking_uri, root) as (port, token, _):
                get(port, token, "experiments", notebook=NOTEBOOK)
                started = time.perf_counter()
                get(port, token, "runs", notebook=NOTEBOOK, max_results=size)
                seconds[size].append(time.perf_counter() - started)
            time.sleep(2)  # the stopped server's load page leaves the store
    return seconds


def _measure(port: int, token: str, pid: int) -> dict[str, Any]:
    def runs(**params: object) -> dict:
        return get(port, token, "runs", notebook=NOTEBOOK, max_results=PAGE, **params)

    figures: dict[str, Any] = {}
    opened = time.perf_counter()
    get(port, token, "experiments", notebook=NOTEBOOK)  # imports mlflow, opens the store
    figures["open"] = time.perf_counter() - opened
    figures["rss_before"] = rss_mib(pid)
    first_at, cpu_at = time.perf_counter(), cpu_seconds(pid)
    first = runs()
    figures["first"] = time.perf_counter() - first_at
    figures["first_cpu"] = cpu_seconds(pid) - cpu_at
    figures["first_loading"] = first["loading"]
    print(f"  first request of the notebook's runs: {figures['first'] * 1000:.0f} ms "
          f"(store opened in {figures['open'] * 1000:.0f} ms)", flush=True)
    figures["next_loading"], second = _once(lambda: runs(page_token=first["next_page_token"]))
    figures["sort_loading"], sorted_early = _once(lambda: runs(order_by=ORDER))
    time.sleep(1)  # a user scrolling on
    figures["third_loading"], _ = _once(lambda: runs(page_token=second["next_page_token"]))
    figures["loading_flags"] = (second["loading"], sorted_early["loading"])
    while runs(order_by=ORDER)["loading"]:
        time.sleep(0.5)
    figures["loaded_after"] = time.perf_counter() - first_at
    figures["rss_after"] = rss_mib(pid)
    figures["newest"], newest = timed(runs, REPEATS)
    figures["newest_next"], newest2 = timed(
        lambda: runs(page_token=newest["next_page_token"]), REPEATS)
    figures["sort"], by_metric = timed(lambda: runs(order_by=ORDER), REPEATS)
    figures["sort_next"], by_metric2 = timed(
        lambda: runs(order_by=ORDER, page_token=by_metric["next_page_token"]), REPEATS)
    figures["total"] = by_metric["total"]
    figures["ids"] = {key: [r["run_id"] for r in page["runs"]] for key, page in (
        ("first", first), ("second", second), ("newest", newest), ("newest_next", newest2),
        ("sort", by_metric), ("sort_next", by_metric2))}
    return figures


def arriving_sorts(port: int, token: str, tracking_uri: str, notebook_tag: str,
                   cycles: int = 10) -> list[float]:
    """The sort by metric as the panel polls it while the notebook's runs go on arriving: a
    finished run every 2 s (the store is asked what changed at most that often), the sort
    asked just after; the new run must lead it. The runs are deleted afterwards."""
    from mlflow import MlflowClient

    from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG

    client = MlflowClient(tracking_uri)
    eid = client.get_experiment_by_name("Churn Sweep").experiment_id
    times, arrived = [], []
    try:
        for i in range(cycles):
            run = client.create_run(eid, run_name=f"late-{i}", tags={NOTEBOOK_TAG: notebook_tag})
            arrived.append(run.info.run_id)
            client.log_metric(run.info.run_id, "accuracy", 1.0 + i)  # above every other run
            client.set_terminated(run.info.run_id)
            time.sleep(2.1)
            started = time.perf_counter()
            page = get(port, token, "runs", notebook=NOTEBOOK, max_results=PAGE, order_by=ORDER)
            times.append(time.perf_counter() - started)
            if page["runs"][0]["run_id"] != run.info.run_id:
                raise SystemExit("a run that arrived is not first in the sort by metric")
    finally:
        for run_id in arrived:
            client.delete_run(run_id)
    return times


def _once(call: Any) -> tuple[list[float], Any]:
    """One timed call; a failure (the store too slow meanwhile) is reported, not fatal."""
    import urllib.error

    started = time.perf_counter()
    try:
        result = call()
    except urllib.error.HTTPError as error:
        print(f"  a request while loading failed after {time.perf_counter() - started:.1f} s: "
              f"{error.code} {error.read()[:300]!r}", flush=True)
        result = {"runs": [], "loading": None}
    return [time.perf_counter() - started], result


def baseline_figures(tracking_uri: str, eid: str, notebook_tag: str) -> dict[str, Any]:
    from mlflow import MlflowClient

    from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG

    client = MlflowClient(tracking_uri)
    where = f"tags.`{NOTEBOOK_TAG}` = '{notebook_tag}'"
    figures: dict[str, Any] = {"ids": {}}
    for name, order in (("newest", []), ("sort", [ORDER])):
        def first(order: list[str] = order) -> Any:
            return client.search_runs([eid], where, order_by=order, max_results=PAGE)

        figures[name], page = timed(first, BASELINE_REPEATS)
        figures[f"{name}_next"], page2 = timed(
            lambda order=order, token=page.token: client.search_runs(
                [eid], where, order_by=order, max_results=PAGE, page_token=token),
            BASELINE_REPEATS)
        figures["ids"][name] = [r.info.run_id for r in page]
        figures["ids"][f"{name}_next"] = [r.info.run_id for r in page2]
    return figures


def index_memory(tracking_uri: str, eid: str) -> tuple[float, int]:
    """MiB that the run index holds for the experiment's runs (tracemalloc, in this process)
    and how many runs."""
    import gc
    import tracemalloc

    from mlflow import MlflowClient

    from jupyter_mlops.server.runindex import RunIndex, RunQuery

    index = RunIndex(MlflowClient(tracking_uri), full_refresh_seconds=1e9)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index.search(eid, RunQuery(max_results=1))
    index.wait_loaded(eid)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 2**20, index.search(eid, RunQuery(max_results=1)).total


def run_sqlite(count: int) -> None:
    root = WORK / "sqlite"
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    db.unlink(missing_ok=True)
    uri = f"sqlite:///{db}"
    eid, took = fill(uri, uri, count, root)
    print(f"sqlite: {count:,} runs written in {took:.1f} s")
    report("sqlite", count, endpoint_figures(uri, root), baseline_figures(uri, eid, _tag(root)))
    report_cold(cold_first_requests(uri, root))
    held, runs = index_memory(uri, eid)
    print(f"  index memory (tracemalloc): {held:.1f} MiB for {runs:,} runs "
          f"= {held * 1024 / runs:.2f} KiB a run")


def run_postgresql(count: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import MlflowServer, PostgresCluster

    root = WORK / "postgresql"
    root.mkdir(parents=True, exist_ok=True)
    cluster = PostgresCluster()
    cluster.start()
    server = MlflowServer(cluster.create_database("mlflow"),
                          Path(tempfile.mkdtemp(prefix="mlops-bench-mlflow-")))
    try:
        started = time.perf_counter()
        server.start()
        print(f"postgresql: cluster and mlflow server up in {time.perf_counter() - started:.1f} s")
        eid, took = fill(cluster.url(), server.uri, count, root)
        print(f"postgresql: {count:,} runs written in {took:.1f} s")
        cluster.psql("VACUUM ANALYZE", database="mlflow")
        ours = endpoint_figures(server.uri, root)
        report("postgresql", count, ours, baseline_figures(server.uri, eid, _tag(root)))
        report_cold(cold_first_requests(server.uri, root))
        if os.environ.get("BENCH_INDEX_MEMORY", "1") == "1":
            held, runs = index_memory(server.uri, eid)
            print(f"  index memory (tracemalloc): {held:.1f} MiB for {runs:,} runs "
                  f"= {held * 1024 / runs:.2f} KiB a run")
    finally:
        server.stop()
        cluster.remove()


def _tag(root: Path) -> str:
    from jupyter_mlops.tracking.notebook_info import tag_value

    return tag_value(root / NOTEBOOK)


def report_cold(seconds: dict[int, list[float]]) -> None:
    for size, times in seconds.items():
        print(f"  first request on {len(times)} more fresh servers, {size} runs: "
              + ", ".join(f"{t * 1000:.0f}" for t in times) + " ms")


def report(label: str, count: int, ours: dict[str, Any], base: dict[str, Any]) -> None:
    p50 = statistics.median
    print(f"{label}, {count:,} runs, pages of {PAGE}, notebook {NOTEBOOK}:")
    print(f"  server's first MLflow request (imports mlflow, opens the store): "
          f"{ours['open'] * 1000:.0f} ms")
    print(f"  first request of the notebook's runs: {ours['first'] * 1000:.0f} ms, "
          f"server CPU {ours['first_cpu'] * 1000:.0f} ms (loading={ours['first_loading']}); "
          f"load average {os.getloadavg()[0]:.1f}")
    flags = ours["loading_flags"]
    print(f"  while loading: next page at once {ours['next_loading'][0] * 1000:.0f} ms "
          f"(loading={flags[0]}), sort by {ORDER!r} {ours['sort_loading'][0] * 1000:.0f} ms "
          f"(loading={flags[1]}), the page after a second later "
          f"{ours['third_loading'][0] * 1000:.0f} ms")
    print(f"  index complete {ours['loaded_after']:.1f} s after the first request; server RSS "
          f"{ours['rss_before']:.0f} -> {ours['rss_after']:.0f} MiB "
          f"(+{ours['rss_after'] - ours['rss_before']:.0f})")
    for key, what in (("newest", "newest first"), ("newest_next", "newest first, next page"),
                      ("sort", f"by {ORDER}"), ("sort_next", f"by {ORDER}, next page")):
        ratio = p50(base[key]) / p50(ours[key])
        print(f"  loaded, {what}: endpoint p50 {p50(ours[key]) * 1000:.1f} ms "
              f"(max {max(ours[key]) * 1000:.1f}), search_runs p50 {p50(base[key]) * 1000:.0f} ms"
              f" -> {ratio:.1f}x")
    arriving = ours["arriving"]
    print(f"  loaded, by {ORDER} while a run arrives every 2 s: endpoint p50 "
          f"{p50(arriving) * 1000:.1f} ms (max {max(arriving) * 1000:.1f}), search_runs p50 "
          f"{p50(base['sort']) * 1000:.0f} ms -> {p50(base['sort']) / p50(arriving):.1f}x")
    same = all(ours["ids"][k] == base["ids"][k] for k in base["ids"])
    early = (ours["ids"]["first"], ours["ids"]["second"]) == (base["ids"]["newest"],
                                                            base["ids"]["newest_next"])
    if not ours["ids"]["second"]:  # the next page while loading failed (reported above)
        early = ours["ids"]["first"] == base["ids"]["newest"]
    print(f"  identical run ids to search_runs: loaded {same}, while loading {early}; "
          f"total {ours['total']:,}")
    if not (same and early):
        raise SystemExit("the endpoint's pages differ from search_runs")


def run_placement(count: int) -> None:
    """In this process, no store: `count` runs held and sorted by metric, then one run
    arriving at a time: placed in the sorted order, against sorting them all anew (what the
    index did before 2026-12-02), p50 of REPEATS each, alternately."""
    from mlflow.entities import Metric, Run, RunData, RunInfo

    from jupyter_mlops.server.runindex import ExperimentRuns, IndexedRun, RunIndex, RunQuery, Scope

    def indexed(run: FinishedRun) -> IndexedRun:
        info = RunInfo(run.run_id, "1", "ana", "FINISHED", run.start_ms, run.start_ms + 500,
                       "active", run_name=run.name)
        return IndexedRun(Run(info, RunData(metrics=[Metric(k, v, run.start_ms, 0)
                                                     for k, v in run.metrics.items()])))

    entry, query = ExperimentRuns(Scope(("1",))), RunQuery((ORDER,))
    entry.upsert(map(indexed, make_runs(count, "nb")))
    late = [indexed(dataclasses.replace(run, run_id=uuid.uuid4().hex))  # new runs
            for run in make_runs(2 * REPEATS, "nb")]
    times: dict[str, list[float]] = {"placed": [], "sorted anew": []}
    for i, run in enumerate(late):
        RunIndex._ordered(entry, query)  # the order held, as after a request
        started = time.perf_counter()
        if i % 2:
            entry.sorted_cache.clear()  # the previous behaviour: every order dropped
        entry.upsert([run])
        RunIndex._ordered(entry, query)
        times["sorted anew" if i % 2 else "placed"].append(time.perf_counter() - started)
    placed, anew = (statistics.median(times[k]) for k in ("placed", "sorted anew"))
    print(f"placement, {count:,} runs held by {ORDER}: a run arriving placed {placed * 1000:.2f}"
          f" ms, sorted anew {anew * 1000:.1f} ms (p50 of {REPEATS} each) -> {anew / placed:.0f}x")


def main() -> None:
    for name in os.environ.get("BENCH_INDEX", "sqlite,postgresql,placement").split(","):
        count = int(os.environ.get("BENCH_INDEX_RUNS", SIZES[name]))  # a smaller trial
        {"sqlite": run_sqlite, "postgresql": run_postgresql,
         "placement": run_placement}[name](count)


if __name__ == "__main__":
    main()
