"""Server benchmark: the runs endpoint on an experiment of 10,000 runs (first page of 100
ordered by a metric, then the next page) against MlflowClient.search_runs in the same run, and
the size of the labextension bundle.

`.venv/bin/python -m benchmarks server`. The 10,000-run SQLite store is built once into
benchmarks/.work/server/ (a few minutes) and reused. The endpoint is measured over HTTP on a
real `jupyter server` with the extension, refreshing incrementally on every request.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "server"
RUNS = 10_000
ORDER = "metrics.accuracy DESC"
PAGE = 100
REPEATS = 20
BASELINE_REPEATS = 3
BUNDLE = ROOT / "jupyter_mlops" / "labextension" / "static"


def build_store(uri: str) -> str:
    """The experiment `bench`: RUNS finished runs of 10 params, 10 metrics and 5 tags each.

    Rows are written with MLflow's own ORM models in one transaction (seconds instead of the
    ~15 minutes of 30,000 client calls); reads then go through MLflow as usual.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("bench")
    if experiment is not None:
        return experiment.experiment_id
    eid = client.create_experiment("bench", artifact_location=str(WORK / "artifacts"))
    _insert_runs(uri, eid)
    return eid


def _insert_runs(uri: str, eid: str) -> None:
    rng = random.Random(7)
    start = int(time.time() * 1000) - RUNS * 1000
    runs = []
    for i in range(RUNS):
        rid, now = uuid.UUID(int=rng.getrandbits(128)).hex, start + i * 1000
        # Two-decimal accuracies: many ties, so the tie-break order is exercised too.
        metrics = {"accuracy": round(rng.random(), 2)}
        metrics.update({f"m{k}": rng.random() for k in range(9)})
        params = {f"p{k}": str(rng.randint(0, 50)) for k in range(10)}
        tags = {"mlflow.runName": f"cell-{i}", **{f"t{k}": f"v{rng.randint(0, 5)}"
                                                 for k in range(4)}}
        runs.append(FinishedRun(rid, f"cell-{i}", now, metrics, params, tags))
    insert_runs(uri, eid, runs)


@dataclass(frozen=True)
class FinishedRun:
    """One run as the benchmarks insert it: finished 0.5 s after `start_ms`."""

    run_id: str
    name: str
    start_ms: int
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


def insert_runs(uri: str, eid: str, runs: list[FinishedRun]) -> None:
    """Write `runs` straight into MLflow's SQL tables (SQLite or PostgreSQL), as bulk INSERTs
    of many rows each: minutes of log_batch calls in seconds."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    store = SqlAlchemyStore(uri, str(WORK / "artifacts"))
    tables: dict[type, list[dict[str, object]]] = {
        SqlRun: [], SqlMetric: [], SqlLatestMetric: [], SqlParam: [], SqlTag: []}
    for run in runs:
        rid, now = run.run_id, run.start_ms
        tables[SqlRun].append(dict(
            run_uuid=rid, name=run.name, source_type="NOTEBOOK", source_name="",
            entry_point_name="", user_id="bench", status="FINISHED", start_time=now,
            end_time=now + 500, source_version="", lifecycle_stage="active",
            artifact_uri=str(WORK / "artifacts" / rid), experiment_id=int(eid)))
        metrics = [dict(key=k, value=v, timestamp=now, step=0, is_nan=False, run_uuid=rid)
                   for k, v in run.metrics.items()]
        tables[SqlMetric] += metrics
        tables[SqlLatestMetric] += metrics
        tables[SqlParam] += [dict(key=k, value=v, run_uuid=rid) for k, v in run.params.items()]
        tables[SqlTag] += [dict(key=k, value=v, run_uuid=rid) for k, v in run.tags.items()]
    with store.ManagedSessionMaker() as session:
        for model, rows in tables.items():  # runs first: the others refer to them
            for start in range(0, len(rows), 50_000):
                session.execute(insert(model), rows[start:start + 50_000])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(uri: str, port: int, token: str, work: Path = WORK,
                 min_refresh: float | None = 0.0) -> subprocess.Popen[bytes]:
    """`jupyter server` with the extension on 127.0.0.1, rooted (and logging) in `work`;
    `min_refresh` None: the extension's default (the store asked what changed every 2 s)."""
    argv = [sys.executable, "-m", "jupyter_server", "--ip=127.0.0.1", f"--port={port}",
            "--no-browser", "--allow-root", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--ServerApp.jpserver_extensions={'jupyter_mlops.server': True}",
            f"--MlopsExtension.tracking_uri={uri}"]
    if min_refresh is not None:
        argv.append(f"--MlopsExtension.min_refresh_seconds={min_refresh}")
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300  # minutes on a loaded machine
    while time.monotonic() < deadline and process.poll() is None:
        try:
            get(port, token, "config")
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"jupyter server did not start; see {work / 'server.log'}")


def get(port: int, token: str, endpoint: str, **params: object) -> dict:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/mlops/api/{endpoint}?{query}",
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def timed(func, repeats: int) -> tuple[list[float], object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return times, result


def endpoint_figures(port: int, token: str, eid: str) -> dict:
    def first() -> dict:
        return get(port, token, "runs", experiment_id=eid, order_by=ORDER, max_results=PAGE)

    cold_start = time.perf_counter()
    page1 = first()
    cold = time.perf_counter() - cold_start
    t1, page1 = timed(first, REPEATS)
    token2 = page1["next_page_token"]
    t2, page2 = timed(lambda: get(port, token, "runs", experiment_id=eid, order_by=ORDER,
                                  max_results=PAGE, page_token=token2), REPEATS)
    return {"cold": cold, "first": t1, "next": t2,
            "ids": ([r["run_id"] for r in page1["runs"]], [r["run_id"] for r in page2["runs"]])}


def baseline_figures(uri: str, eid: str) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    t1, page1 = timed(lambda: client.search_runs([eid], order_by=[ORDER], max_results=PAGE),
                      BASELINE_REPEATS)
    t2, page2 = timed(lambda: client.search_runs([eid], order_by=[ORDER], max_results=PAGE,
                                                 page_token=page1.token), BASELINE_REPEATS)
    return {"first": t1, "next": t2,
            "ids": ([r.info.run_id for r in page1], [r.info.run_id for r in page2])}


def bundle_size() -> tuple[int, int]:
    files = list(BUNDLE.glob("*.js"))
    raw = sum(f.stat().st_size for f in files)
    zipped = sum(len(gzip.compress(f.read_bytes())) for f in files)
    return raw, zipped


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{WORK / 'mlflow.db'}"
    started = time.perf_counter()
    eid = build_store(uri)
    print(f"store: {RUNS} runs ready in {time.perf_counter() - started:.1f} s")
    token, port = secrets.token_hex(8), free_port()
    server = start_server(uri, port, token)
    try:
        ours = endpoint_figures(port, token, eid)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    base = baseline_figures(uri, eid)
    report(ours, base)


def report(ours: dict, base: dict) -> None:
    p50 = statistics.median
    print(f"runs endpoint, {RUNS} runs, first page of {PAGE} by {ORDER!r}:")
    print(f"  cold (index load): {ours['cold'] * 1000:.0f} ms")
    for page in ("first", "next"):
        ratio = p50(base[page]) / p50(ours[page])
        print(f"  {page} page: endpoint p50 {p50(ours[page]) * 1000:.1f} ms "
              f"(max {max(ours[page]) * 1000:.1f}), search_runs p50 "
              f"{p50(base[page]) * 1000:.0f} ms -> {ratio:.0f}x faster")
    same = ours["ids"] == base["ids"]
    print(f"  identical run ids on both pages: {same}")
    raw, zipped = bundle_size()
    print(f"labextension bundle: {raw / 1024:.1f} KiB of JavaScript ({zipped / 1024:.1f} KiB gzip)")
    if not same:
        raise SystemExit("the endpoint's pages differ from search_runs")


if __name__ == "__main__":
    main()
