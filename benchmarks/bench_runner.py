"""The local runner against plain papermill, on the example notebook and synthetic ones.

Targets (issues 4 and 13), all measured in this run as `jupyter-mlops run` and `papermill`
processes, the runner in its default configuration (tracked to `mlflow.db` in the working folder):
- cold run of the example <= 1.3x one top-to-bottom `papermill` run of the same notebook;
- unchanged re-run (every step from the cache) <= 0.1x the cold run;
- the same two with `--no-track`, as a second row;
- `--jobs 2` >= 1.6x faster than `--jobs 1` on an 8-step notebook with two branches of real work;
- peak memory with 4 steps in flight: reported (the runner process, its kernels, both).
Each figure is a median over alternating repeats: other work on the machine hits both sides.
A tracked command ends before MLflow has its run (the sender process stores it after): before
the next command starts, the benchmark waits until the sender has emptied the spool, and
reports that time too, so one command's sending does not slow the next one's measurement.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

BIN = Path(sys.executable).parent
EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks" / "02_tagged_pipeline.ipynb"
REPEATS = 5
WORK = 15_000_000  # rounds of one branch step: one to two seconds of one core
STORE_DEADLINE = 600.0  # seconds to wait for a tracked run's records to reach the store


def branchy_notebook(branches: int = 2, depth: int = 3, sleep: float = 0.0) -> str:
    """start -> `branches` chains of `depth` steps of CPU work -> join (8 steps for 2 x 3)."""
    cells = [new_code_cell(f"rounds = {WORK}", metadata={"tags": ["parameters"]}),
             new_code_cell("import math\nimport time", metadata={"tags": ["setup"]}),
             new_code_cell("seed = 3", metadata={"tags": ["step:start"]})]
    for b in range(branches):
        previous = "seed"
        for d in range(depth):
            name = f"v{b}_{d}"
            cells.append(new_code_cell(
                f"{name} = {previous} + sum(math.sqrt(i) for i in range(rounds)) % 7\n"
                f"time.sleep({sleep})", metadata={"tags": [f"step:b{b}-{d}"]}))
            previous = name
    last = " + ".join(f"v{b}_{depth - 1}" for b in range(branches))
    cells.append(new_code_cell(f"total = {last}", metadata={"tags": ["step:join"]}))
    return json.dumps(new_notebook(cells=cells))


CPU: dict[str, list[float]] = {}  # CPU seconds per command kind, the waited-for tree included


STORED: dict[str, list[float]] = {}  # kind -> seconds from a tracked command's start until
#                                      the store had its run
# The default configuration: no MLFLOW_TRACKING_URI, so runs go to ./mlflow.db.
ENV = {k: v for k, v in os.environ.items()
       if k not in ("MLFLOW_TRACKING_URI", "JUPYTER_MLOPS_SPOOL_DIR")}


def timed(command: list[str], cwd: Path, kind: str = "") -> float:
    """Wall seconds; the CPU seconds of the process and the kernels it reaped go to CPU[kind].
    After a tracked command, waits (untimed) for its sender to store the run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(kind, []).append(after.ru_utime + after.ru_stime
                                    - before.ru_utime - before.ru_stime)
    if command[1:2] == ["run"] and "--no-track" not in command:
        STORED.setdefault(kind, []).append(_await_store(cwd / ".jupyter_mlops" / "spool") - start)
    return wall


def _await_store(spool: Path) -> float:
    """When the spool is empty: the sender removes a session's spool once the store has it."""
    from jupyter_mlops.tracking.spool import sessions

    deadline = time.perf_counter() + STORE_DEADLINE
    while list(sessions(spool)):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the tracked run never reached the store: see {spool}")
        time.sleep(0.05)
    return time.perf_counter()


def run_command(notebook: Path, out: Path, *extra: str) -> list[str]:
    return [str(BIN / "jupyter-mlops"), "run", str(notebook), "-q", "--out", str(out), *extra]


def cold_and_cached(folder: Path) -> dict[str, float]:
    """Papermill, then the runner tracked (the default) and untracked, cold then re-run."""
    times: dict[str, list[float]] = {k: [] for k in ("papermill", "cold", "cached",
                                                     "cold_nt", "cached_nt")}
    for n in range(REPEATS):
        times["papermill"].append(timed(
            [str(BIN / "papermill"), "--no-progress-bar", "--log-level", "ERROR", str(EXAMPLE),
             str(folder / f"papermill-{n}.ipynb")], folder, "papermill"))
        for suffix, extra in (("", ()), ("_nt", ("--no-track",))):
            out = folder / f"cold{suffix}-{n}"
            times["cold" + suffix].append(timed(run_command(EXAMPLE, out, *extra), folder,
                                                "cold" + suffix))
            times["cached" + suffix].append(timed(run_command(EXAMPLE, out, *extra), folder,
                                                  "cached" + suffix))
    figures = {f"{kind}_s": statistics.median(values) for kind, values in times.items()}
    figures |= {f"{kind}_cpu_s": statistics.median(CPU[kind])
                for kind in ("papermill", "cold", "cold_nt")}
    figures["cold_stored_s"] = statistics.median(STORED["cold"])
    figures["cached_stored_s"] = statistics.median(STORED["cached"])
    for suffix in ("", "_nt"):
        figures["cold_ratio" + suffix] = figures["cold" + suffix + "_s"] / figures["papermill_s"]
        figures["cached_ratio" + suffix] = (figures["cached" + suffix + "_s"]
                                            / figures["cold" + suffix + "_s"])
    figures["cached_s_per_step"] = figures["cached_s"] / 5
    return figures


def parallelism(folder: Path) -> dict[str, float]:
    """Untracked: what is measured is the scheduling of steps over kernels."""
    notebook = folder / "branches.ipynb"
    notebook.write_text(branchy_notebook())
    one, two = [], []
    for n in range(REPEATS):
        one.append(timed(run_command(notebook, folder / f"j1-{n}", "--jobs", "1",
                                     "--no-cache", "--no-track"), folder))
        two.append(timed(run_command(notebook, folder / f"j2-{n}", "--jobs", "2",
                                     "--no-cache", "--no-track"), folder))
    figures = {"jobs1_s": statistics.median(one), "jobs2_s": statistics.median(two),
               "ceiling": machine_ceiling()}
    figures["speedup"] = figures["jobs1_s"] / figures["jobs2_s"]
    return figures


def machine_ceiling() -> float:
    """What two cores give here: the same work as two plain processes, one after the other
    against both at once. The runner cannot beat it; it says what the target can mean here."""
    burn = [sys.executable, "-c", f"import math; sum(math.sqrt(i) for i in range({WORK}))"]
    ratios = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(2):
            subprocess.run(burn, check=True)
        one = time.perf_counter() - start
        start = time.perf_counter()
        both = [subprocess.Popen(burn) for _ in range(2)]
        for proc in both:
            proc.wait()
        ratios.append(one / (time.perf_counter() - start))
    return statistics.median(ratios)


def peak_memory(folder: Path) -> dict[str, float]:
    """RSS of the runner and of its kernels, sampled while 4 steps run at once."""
    notebook = folder / "four.ipynb"
    notebook.write_text(branchy_notebook(branches=4, depth=1, sleep=2.0))
    # Untracked: the sender process would count as a fifth "kernel".
    proc = subprocess.Popen(run_command(notebook, folder / "mem", "--jobs", "4", "--no-cache",
                                        "--no-track"),
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks = {"runner_mib": 0.0, "kernels_mib": 0.0, "total_mib": 0.0, "kernels_seen": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            own = _rss_mib(proc.pid)
            kernels = [_rss_mib(pid) for pid in _children(proc.pid)]
            peaks["runner_mib"] = max(peaks["runner_mib"], own)
            peaks["kernels_mib"] = max(peaks["kernels_mib"], sum(kernels))
            peaks["total_mib"] = max(peaks["total_mib"], own + sum(kernels))
            peaks["kernels_seen"] = max(peaks["kernels_seen"], float(len(kernels)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.wait()
    done.set()
    sampler.join()
    return peaks


def _children(pid: int) -> list[int]:
    """Child processes of every thread of `pid`: kernels are started from several threads."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # a thread that has just ended
    return found


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figures |= cold_and_cached(folder)
        print(f"example, plain papermill: {figures['papermill_s']:.2f} s; runner cold, tracked: "
              f"{figures['cold_s']:.2f} s = {figures['cold_ratio']:.2f}x (target <= 1.3x); "
              f"CPU {figures['papermill_cpu_s']:.2f} s vs {figures['cold_cpu_s']:.2f} s")
        print(f"unchanged re-run, tracked: {figures['cached_s']:.2f} s = "
              f"{figures['cached_ratio']:.2f}x of cold (target <= 0.1x), "
              f"{figures['cached_s_per_step']:.2f} s a step; MLflow had the run "
              f"{figures['cold_stored_s']:.2f} s (cold) and {figures['cached_stored_s']:.2f} s "
              "(re-run) after the command started")
        print(f"--no-track: cold {figures['cold_nt_s']:.2f} s = {figures['cold_ratio_nt']:.2f}x "
              f"of papermill, CPU {figures['cold_nt_cpu_s']:.2f} s; unchanged re-run "
              f"{figures['cached_nt_s']:.2f} s = {figures['cached_ratio_nt']:.2f}x of cold")
        figures |= parallelism(folder)
        print(f"8 steps, two branches: --jobs 1 {figures['jobs1_s']:.2f} s, --jobs 2 "
              f"{figures['jobs2_s']:.2f} s = {figures['speedup']:.2f}x (target >= 1.6x); "
              f"two plain processes here: {figures['ceiling']:.2f}x")
        figures |= peak_memory(folder)
        print(f"4 steps in flight: runner {figures['runner_mib']:.0f} MiB, "
              f"{figures['kernels_seen']:.0f} kernels {figures['kernels_mib']:.0f} MiB, "
              f"together {figures['total_mib']:.0f} MiB at the peak")
    return figures


if __name__ == "__main__":
    main()
