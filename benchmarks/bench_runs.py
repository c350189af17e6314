"""The runs browser in a fresh kernel: `jupyter_mlops.runs()` on a SQLite store of 300 runs
(3 experiments, 10 params and 10 metrics each), each measurement in a new IPython kernel.

Measured: the call's return (the browser shows "Reading runs..." and fills itself from a
thread), the time until its table holds the runs, and a second call in the same kernel;
baseline: the same browser read in the call (`background=False`), as before, in a new kernel.
Run: python -m benchmarks runs
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from jupyter_client import KernelManager

EXPERIMENTS, RUNS = 3, 100

COLD = """
import json, time
t = time.perf_counter()
import jupyter_mlops
browser = jupyter_mlops.runs(max_results=200)
returned = time.perf_counter() - t
browser.wait()
filled = time.perf_counter() - t
t = time.perf_counter(); again = jupyter_mlops.runs(max_results=200); warm = time.perf_counter() - t
print("RESULT" + json.dumps({"returned": returned, "filled": filled, "warm": warm,
                             "rows": len(browser.rows)}))
"""

BASELINE = """
import json, time
t = time.perf_counter()
from jupyter_mlops.widgets.runs_browser import RunsBrowser
browser = RunsBrowser(None, max_results=200, background=False)
print("RESULT" + json.dumps({"filled": time.perf_counter() - t, "rows": len(browser.rows)}))
"""


def make_store(folder: Path) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from jupyter_mlops.tracking.destination import open_client

    client: MlflowClient = open_client(f"sqlite:///{folder / 'mlflow.db'}")
    now = int(time.time() * 1000)
    for e in range(EXPERIMENTS):
        experiment_id = client.create_experiment(f"Churn_Model_{e}")
        for i in range(RUNS):
            run_id = client.create_run(experiment_id, run_name=f"cell_{i}").info.run_id
            client.log_batch(run_id, metrics=[Metric(f"m{k}", i + k, now, 0) for k in range(10)],
                             params=[Param(f"p{k}", str(i + k)) for k in range(10)],
                             tags=[RunTag("mlops.kind", "cell")])
            client.set_terminated(run_id)


def in_new_kernel(folder: Path, code: str) -> dict:
    sockets = tempfile.mkdtemp(prefix="mlb")
    km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "k"),
                       connection_file=os.path.join(sockets, "kernel.json"))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    km.start_kernel(cwd=str(folder), env=env)
    kc = km.blocking_client()
    kc.start_channels()
    out: list[str] = []
    try:
        kc.wait_for_ready(timeout=120)
        kc.execute_interactive(code, timeout=600, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    line = next(x for x in "".join(out).splitlines() if x.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_store(folder)
        for repeat in range(2):
            base = in_new_kernel(folder, BASELINE)
            cold = in_new_kernel(folder, COLD)
            print(f"repeat {repeat + 1}: runs() returned {cold['returned']:.2f} s, table filled "
                  f"{cold['filled']:.2f} s, second call {cold['warm']:.2f} s ({cold['rows']} rows);"
                  f" read in the call (before): {base['filled']:.2f} s", flush=True)


if __name__ == "__main__":
    main()
