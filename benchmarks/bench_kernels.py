"""Many kernels, one server: 16 kernels tracking at once into a PostgreSQL-backed `mlflow server`.

Each kernel runs the tracking benchmark's cell (10 params, 10 metrics, 5 tags, a small stdout
artifact) untracked, then tracked (`%%mlops track`), then as MLflow's synchronous fluent API
(the baseline, same work in the same run), each phase in every kernel at once. Reported: the
p95 added time of a tracked cell with 16 kernels against a lone kernel, the senders' delivery
rate and the time from the last cell to all stored, against the fluent API's.

The server and PostgreSQL share the 2 cores with the 16 kernels here; a team runs them on
another machine. BENCH_COLOCATED=1 leaves them at the kernels' priority; by default they run
niced (+10, as the senders are), standing for that other machine. BENCH_GAP=S spaces each
kernel's cells by a random 0-2S seconds (a person's pace) instead of back to back.
Run: python -m benchmarks kernels
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.bench_tracking import SETUP

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
from kernel_driver import Kernel  # noqa: E402
from pg_server import MlflowServer, PostgresCluster, migrated_template  # noqa: E402

KERNELS = 16
CELLS = 10  # tracked cells per kernel, as in the issue
LONE_REPEATS = 4  # the lone kernel runs its 10 cells 4 times: 40 samples for its p95
GAP = float(os.environ.get("BENCH_GAP", "0"))  # mean seconds between a kernel's cells

PHASE = r"""
import contextlib, io, random
def paced(source, n, gap):
    out = []
    for _ in range(n):
        time.sleep(random.uniform(0, 2 * gap))  # a person's pace; 0: back to back
        out += timed(source, 1)
    return out
with contextlib.redirect_stdout(io.StringIO()):
    first = time.time()
    took = paced(%(source)s, %(n)d, %(gap)s)
    last = time.time()
print("RESULT" + json.dumps({"took": took, "first": first, "last": last}))
"""
DRAIN = r"""
from jupyter_mlops.tracking.session import current
stored = current().tracker.flush(900)
print("RESULT" + json.dumps({"stored": stored, "at": time.time()}))
"""


def _result(kernel: Kernel, code: str) -> dict:
    said = kernel.run(code, timeout=1800)
    if said.error or "RESULT" not in said.stdout:
        raise RuntimeError(f"{said.error}\n{said.stderr[-2000:]}")
    return json.loads(said.stdout.split("RESULT", 1)[1].splitlines()[0])


def _kernel(folder: Path, uri: str) -> Kernel:
    folder.mkdir(parents=True)
    kernel = Kernel(folder, {**os.environ, "MLFLOW_TRACKING_URI": uri,
                             "HOME": str(folder.parent),
                             "JUPYTER_MLOPS_NOTEBOOK": f"{folder.name}.ipynb",
                             "PYTHONPATH": str(TESTS.parent)})
    kernel.ok("%load_ext jupyter_mlops\n%mlops start --experiment Bench_Team")
    kernel.ok(SETUP)
    kernel.ok("from jupyter_mlops.tracking.session import current\n"
              "assert current().tracker.flush(600)\n"  # the sender is up and online
              "mlflow.set_tracking_uri(current().tracker.uri)\n"
              "mlflow.set_experiment('Baseline_Team')")
    return kernel


def measure(uri: str, root: Path, kernels: int, cells: int) -> dict:
    """Every phase in all kernels at once; returns the pooled samples and the timestamps."""
    with ThreadPoolExecutor(kernels) as pool:
        started = list(pool.map(lambda k: _kernel(root / f"Bench_Kernel_{k:02d}", uri),
                                range(kernels)))
        try:
            gate = threading.Barrier(kernels)

            def phase(code: str) -> list[dict]:
                def one(kernel: Kernel) -> dict:
                    gate.wait(timeout=1800)
                    return _result(kernel, code)
                return list(pool.map(one, started))

            plain = phase(PHASE % {"source": "BODY", "n": cells, "gap": GAP})
            tracked = phase(PHASE % {"source": "TRACK", "n": cells, "gap": GAP})
            drained = phase(DRAIN)
            sync = phase(PHASE % {"source": "SYNC", "n": cells, "gap": GAP})
        finally:
            list(pool.map(lambda kernel: kernel.stop(), started))
    base = [statistics.median(p["took"]) for p in plain]  # each kernel's untracked cell
    return {
        "added": [t - b for p, b in zip(tracked, base, strict=True) for t in p["took"]],
        "sync_added": [t - b for p, b in zip(sync, base, strict=True) for t in p["took"]],
        "runs": kernels * cells,
        "first_cell": min(p["first"] for p in tracked),
        "last_cell": max(p["last"] for p in tracked),
        "stored_at": max(d["at"] for d in drained),
        "stored": all(d["stored"] for d in drained),
        "sync_first": min(p["first"] for p in sync),
        "sync_last": max(p["last"] for p in sync),
    }


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _report(label: str, r: dict) -> None:
    ms = 1000
    window = r["stored_at"] - r["first_cell"]
    sync_window = r["sync_last"] - r["sync_first"]
    print(f"{label}: tracked cell added p50 {statistics.median(r['added']) * ms:.1f} ms, "
          f"p95 {p95(r['added']) * ms:.1f} ms | sync fluent MLflow added p50 "
          f"{statistics.median(r['sync_added']) * ms:.0f} ms, p95 {p95(r['sync_added']) * ms:.0f} "
          f"ms | delivery {r['runs'] / window:.1f} runs/s (first tracked cell to all stored; "
          f"fluent: {r['runs'] / sync_window:.1f} runs/s) | all stored "
          f"{r['stored_at'] - r['last_cell']:.1f} s after the last cell (fluent: 0, stored in "
          f"the cell) | stored: {r['stored']}", flush=True)


def _niced(server: MlflowServer, cluster: PostgresCluster) -> None:
    """The server's process group and PostgreSQL's processes (new backends inherit it)."""
    assert server.proc is not None
    nice = os.getpriority(os.PRIO_PROCESS, 0) + 10
    os.setpriority(os.PRIO_PGRP, server.proc.pid, nice)
    postmaster = cluster.postmaster_pid()
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True)
    for pid in [postmaster, *map(int, children.stdout.split())]:
        os.setpriority(os.PRIO_PROCESS, pid, nice)


def main() -> None:
    colocated = os.environ.get("BENCH_COLOCATED") == "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = PostgresCluster()
        cluster.start()
        server = None
        try:
            template = migrated_template(cluster, root)
            backend = cluster.create_database("bench_team", template=template)
            server = MlflowServer(backend, root / "server")
            server.start()
            if not colocated:
                _niced(server, cluster)
            print("server and PostgreSQL " + ("at the kernels' priority" if colocated
                                              else "niced +10") + f"; {GAP} s between cells")
            lone = measure(server.uri, root / "lone", 1, CELLS * LONE_REPEATS)
            _report(f"1 kernel ({CELLS * LONE_REPEATS} cells)", lone)
            team = measure(server.uri, root / "team", KERNELS, CELLS)
            _report(f"{KERNELS} kernels ({CELLS} cells each)", team)
            ratio = p95(team["added"]) / max(p95(lone["added"]), 1e-6)
            print(f"p95 added time, {KERNELS} kernels / 1 kernel: {ratio:.2f}x (target <= 2x)")
        finally:
            if server is not None:
                server.stop()
            cluster.remove()
