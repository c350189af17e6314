"""The local runner against plain papermill, on the example notebook and synthetic ones.

Targets (issue 4), all measured in this run as `jupyter-mlops run` and `papermill` processes:
- cold run of the example <= 1.3x one top-to-bottom `papermill` run of the same notebook;
- unchanged re-run (every step from the cache) <= 0.1x the cold run;
- `--jobs 2` >= 1.6x faster than `--jobs 1` on an 8-step notebook with two branches of real work;
- peak memory with 4 steps in flight: reported (the runner process, its kernels, both).
Each figure is a median over alternating repeats: other work on the machine hits both sides.
"""

from __future__ import annotations

import json
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


def timed(command: list[str], cwd: Path, kind: str = "") -> float:
    """Wall seconds; the CPU seconds of the process and the kernels it reaped go to CPU[kind]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(kind, []).append(after.ru_utime + after.ru_stime
                                    - before.ru_utime - before.ru_stime)
    return wall


def run_command(notebook: Path, out: Path, *extra: str) -> list[str]:
    return [str(BIN / "jupyter-mlops"), "run", str(notebook), "--no-track", "-q",
            "--out", str(out), *extra]


def cold_and_cached(folder: Path) -> dict[str, float]:
    papermill, cold, cached = [], [], []
    for n in range(REPEATS):
        papermill.append(timed([str(BIN / "papermill"), "--no-progress-bar", "--log-level",
                                "ERROR", str(EXAMPLE),
                                str(folder / f"papermill-{n}.ipynb")], folder, "papermill"))
        out = folder / f"cold-{n}"
        cold.append(timed(run_command(EXAMPLE, out), folder, "cold"))
        cached.append(timed(run_command(EXAMPLE, out), folder))
    figures = {"papermill_s": statistics.median(papermill), "cold_s": statistics.median(cold),
               "cached_s": statistics.median(cached),
               "papermill_cpu_s": statistics.median(CPU["papermill"]),
               "cold_cpu_s": statistics.median(CPU["cold"])}
    figures["cold_ratio"] = figures["cold_s"] / figures["papermill_s"]
    figures["cached_ratio"] = figures["cached_s"] / figures["cold_s"]
    figures["cached_s_per_step"] = figures["cached_s"] / 5
    return figures


def parallelism(folder: Path) -> dict[str, float]:
    notebook = folder / "branches.ipynb"
    notebook.write_text(branchy_notebook())
    one, two = [], []
    for n in range(REPEATS):
        one.append(timed(run_command(notebook, folder / f"j1-{n}", "--jobs", "1",
                                     "--no-cache"), folder))
        two.append(timed(run_command(notebook, folder / f"j2-{n}", "--jobs", "2",
                                     "--no-cache"), folder))
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
    proc = subprocess.Popen(run_command(notebook, folder / "mem", "--jobs", "4", "--no-cache"),
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
        print(f"example, plain papermill: {figures['papermill_s']:.2f} s; runner cold: "
              f"{figures['cold_s']:.2f} s = {figures['cold_ratio']:.2f}x (target <= 1.3x); "
              f"CPU {figures['papermill_cpu_s']:.2f} s vs {figures['cold_cpu_s']:.2f} s")
        print(f"unchanged re-run: {figures['cached_s']:.2f} s = {figures['cached_ratio']:.2f}x "
              f"of cold (target <= 0.1x), {figures['cached_s_per_step']:.2f} s a step")
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
