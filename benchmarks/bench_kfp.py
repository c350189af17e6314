"""KFP compiler benchmark: compile time (in-process, CLI) and YAML size against Kubeflow Kale
2.3.0, on Kale's notebook as it is and with pod labels and annotations on every step (both
compilers apply them with kfp-kubernetes), and kfp.local execution of the compiled example
against the local reference.

`.venv/bin/python -m benchmarks kfp`. Kale is installed into benchmarks/.work/kale (a venv of
its own) on first use; when it cannot be installed, that is printed instead of its figures.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
EXAMPLE = ROOT / "notebooks" / "02_tagged_pipeline.ipynb"
KALE_NOTEBOOK = ROOT / "tests" / "data" / "kfp" / "kale.ipynb"  # read by both compilers
KALE_VENV = WORK / "kale"
KALE_VERSION = "2.3.0"
REPEATS = 20  # in-process runs per median (Kale's too)
CLI_REPEATS = 5  # process runs per median

KALE_IN_PROCESS = """
import json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
from kale.common import kfputils
from kale.compiler import Compiler
from kale.processors import NotebookProcessor

def once(path):
    processor = NotebookProcessor(path, {})
    pipeline = processor.run()
    script = Compiler(pipeline, processor.get_imports_and_functions()).compile()
    kfputils.compile_pipeline(script, pipeline.config.pipeline_name)

once(sys.argv[1])  # warm-up: imports, templates
times = []
for _ in range(int(sys.argv[2])):
    start, cpu = time.perf_counter(), time.process_time()
    once(sys.argv[1])
    times.append((time.perf_counter() - start, time.process_time() - cpu))
print(json.dumps(times))
"""


def pod_metadata_notebook(path: Path) -> Path:
    """Kale's notebook with a pod label and annotation on every step, tags both compilers read."""
    import nbformat

    notebook = nbformat.read(KALE_NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if any(tag.startswith("step:") for tag in tags):
            tags += ["label:team:churn-ml", "annotation:example.com/owner:data-team"]
    nbformat.write(notebook, path)
    return path


def synthetic_notebook(steps: int, path: Path) -> Path:
    """A chain of `steps` steps, each reading the previous step's value and a parameter."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell("offset = 1\nscale = 2.0", metadata={"tags": ["parameters"]}),
             new_code_cell("import math", metadata={"tags": ["setup"]}),
             new_code_cell("x0 = offset", metadata={"tags": ["step:s0"]})]
    cells += [new_code_cell(f"x{i} = x{i - 1} * scale + math.sqrt({i})",
                            metadata={"tags": [f"step:s{i}"]}) for i in range(1, steps)]
    cells.append(new_code_cell(f"last = x{steps - 1}", metadata={"tags": ["metrics"]}))
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


Timing = tuple[float, float]  # (wall seconds, CPU seconds), medians


def _cpu(children: bool) -> float:
    if not children:
        return time.process_time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_timing(action, repeats: int = REPEATS, children: bool = False) -> Timing:
    """Wall and CPU time of `action` (CPU of child processes when `children`), medians.

    CPU time is reported beside wall time: other work shares the two cores."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), _cpu(children)
        action()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu(children) - cpu)
    return statistics.median(walls), statistics.median(cpus)


def in_process(notebook: Path) -> Timing:
    from jupyter_mlops.kfp import compile_notebook

    compile_notebook(notebook)  # warm-up: kfp imported, packages resolved once
    return median_timing(lambda: compile_notebook(notebook))


def cli_process(command: list[str], cwd: Path = ROOT, repeats: int = CLI_REPEATS) -> Timing:
    return median_timing(lambda: subprocess.run(command, cwd=cwd, check=True,
                                                capture_output=True), repeats, children=True)


def ours_cli(notebook: Path, folder: Path) -> Timing:
    return cli_process([str(ROOT / ".venv" / "bin" / "jupyter-mlops"), "compile", str(notebook),
                        "-o", str(folder / f"{notebook.stem}.yaml")])


def kale_python() -> Path | None:
    """Kale's interpreter, installing Kale into its own venv the first time."""
    python = KALE_VENV / "bin" / "python"
    if (KALE_VENV / "bin" / "kale").exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(KALE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"kubeflow-kale=={KALE_VERSION}"], check=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as error:
        print(f"kale {KALE_VERSION} could not be installed: {error}")
        return None
    return python


def kale_figures(source: Path, folder: Path) -> dict[str, Any] | None:
    """Kale's compile times for the notebook `source`, and the size of the YAML it writes."""
    python = kale_python()
    if python is None:
        return None
    folder.mkdir()
    notebook = folder / source.name  # Kale writes .kale/ next to the notebook
    shutil.copy(source, notebook)
    out = subprocess.run([str(python), "-c", KALE_IN_PROCESS, str(notebook), str(REPEATS)],
                         check=True, capture_output=True, text=True, cwd=folder)
    times = json.loads(out.stdout.strip().splitlines()[-1])
    in_process = (statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))
    (written,) = (folder / ".kale").glob("*.yaml")  # before `kale --nb` writes its own
    size = written.stat().st_size
    cli = cli_process([str(KALE_VENV / "bin" / "kale"), "--nb", str(notebook)], cwd=folder)
    return {"in_process": in_process, "cli": cli, "yaml": size}


def yaml_size(notebook: Path) -> int:
    """Bytes of the YAML jupyter-mlops writes for `notebook`."""
    from jupyter_mlops.kfp import compile_notebook

    return len(compile_notebook(notebook).yaml.encode("utf-8"))


def local_execution(folder: Path) -> dict[str, float]:
    """kfp.local's run of the compiled example (no installs) and the local runner's run of it."""
    import contextlib
    import io

    from kfp import local

    from jupyter_mlops.kfp import compile_notebook
    from jupyter_mlops.runner import RunOptions, run_pipeline

    compiled = compile_notebook(EXAMPLE, install_packages=False)
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(folder / "kfp-local"), workspace_root=str(folder / "kfp-ws"))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        compiled.pipeline()
    figures = {"kfp.local, no installs": time.perf_counter() - start}
    start = time.perf_counter()
    result = run_pipeline(EXAMPLE, RunOptions(out=folder / "runner", track=False, cache=False,
                                              quiet=True))
    figures["local runner (no cache, no tracking)"] = time.perf_counter() - start
    assert result.ok, result.failures
    return figures


def _show(label: str, timing: Timing) -> None:
    print(f"{label}: {timing[0]:.3f} s wall, {timing[1]:.3f} s CPU")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-kfp-") as name:
        folder = Path(name)
        synthetic = synthetic_notebook(50, folder / "synthetic_50.ipynb")
        pod = pod_metadata_notebook(folder / "kale_pod_metadata.ipynb")
        rows = {
            "example in-process": in_process(EXAMPLE),
            "example CLI": ours_cli(EXAMPLE, folder),
            "synthetic 50 steps in-process": in_process(synthetic),
            "synthetic 50 steps CLI": ours_cli(synthetic, folder),
            "kale notebook in-process": in_process(KALE_NOTEBOOK),
            "kale notebook CLI": ours_cli(KALE_NOTEBOOK, folder),
            "kale notebook + pod labels in-process": in_process(pod),
            "kale notebook + pod labels CLI": ours_cli(pod, folder),
        }
        for label, timing in rows.items():
            _show(f"jupyter-mlops {label}", timing)
        for label, notebook in (("example", EXAMPLE), ("kale notebook", KALE_NOTEBOOK),
                                ("kale notebook + pod labels", pod)):
            print(f"jupyter-mlops {label} YAML: {yaml_size(notebook)} bytes")
        for label, notebook in (("kale notebook", KALE_NOTEBOOK),
                                ("kale notebook + pod labels", pod)):
            kale = kale_figures(notebook, folder / notebook.stem)
            if kale is None:
                break
            for kind in ("in_process", "CLI"):
                ours = rows[f"{label} {kind.replace('_', '-')}"]
                theirs = kale[kind.lower()]
                _show(f"kale {KALE_VERSION} {label} {kind}", theirs)
                print(f"  -> ours {theirs[0] / ours[0]:.1f}x faster (wall), "
                      f"{theirs[1] / ours[1]:.1f}x (CPU)")
            print(f"kale {KALE_VERSION} {label} YAML: {kale['yaml']} bytes; ours "
                  f"{yaml_size(notebook) / kale['yaml']:.1f}x its size")
        for label, seconds in local_execution(folder).items():
            print(f"example execution, {label}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
