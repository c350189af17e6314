"""Graph building on generated notebooks of 10, 100 and 1,000 cells, 5 cells a step.

Targets (issue 2): a 100-cell notebook in under 20 ms in-process; the whole
`jupyter-mlops graph` process under 1 s.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.notebook import build_graph, reads_notebook

CELL_COUNTS = (10, 100, 1000)
CELLS_PER_STEP = 5


def generated_notebook(cells: int) -> str:
    """Steps of 5 cells; each step reads what the two steps before it bound."""
    built = [new_code_cell("rows = 100\nscale = 2.0", metadata={"tags": ["parameters"]}),
             new_code_cell("import math\nimport statistics", metadata={"tags": ["setup"]})]
    for i in range(cells - 2):
        step, part = divmod(i, CELLS_PER_STEP)
        reads = " + ".join(f"len(v{s}_4)" for s in (step - 1, step - 2) if s >= 0) or "rows"
        # One cell a step uses a line magic: %time (analysed as its statement) or, every
        # other step, a separate %matplotlib line (through IPython's transformer).
        magic = ("%time " if step % 2 else "%matplotlib inline\n") if part == 2 else ""
        source = (f"{magic}v{step}_{part} = [math.sqrt(x * scale) for x in range({reads})]\n"
                  f"def f{step}_{part}(y):\n    return statistics.mean(y) + {part}\n")
        tags = [f"step:s{step}"] if part == 0 else []
        built.append(new_code_cell(source, metadata={"tags": tags}))
    return json.dumps(new_notebook(cells=built))


def in_process_ms(text: str, repeats: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds; CPU time is what survives a loaded machine."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        build_graph(reads_notebook(text, "generated.ipynb"), "generated.ipynb")
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def process_s(path: Path, repeats: int = 5) -> float:
    command = [str(Path(sys.executable).parent / "jupyter-mlops"), "graph", str(path)]
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for cells in CELL_COUNTS:
            text = generated_notebook(cells)
            wall, cpu = in_process_ms(text, 20 if cells < 1000 else 5)
            figures[f"in_process_ms_{cells}"], figures[f"cpu_ms_{cells}"] = wall, cpu
            print(f"{cells:>5} cells: {wall:.1f} ms in-process ({cpu:.1f} ms CPU)")
        path = Path(folder) / "generated_100.ipynb"
        path.write_text(generated_notebook(100))
        figures["process_s_100"] = process_s(path)
    print(f"`jupyter-mlops graph` process, 100 cells: {figures['process_s_100']:.2f} s")
    print(f"100 cells: {figures['in_process_ms_100'] / 20:.2f}x of the 20 ms target "
          f"({figures['cpu_ms_100'] / 20:.2f}x in CPU time); "
          f"process: {figures['process_s_100']:.2f}x of the 1 s target")
    return figures


if __name__ == "__main__":
    main()
