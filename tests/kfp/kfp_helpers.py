"""Helpers of the KFP tests: fixture notebooks, kfp.local runs, the local runner's reference."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.kfp.names import METRICS_OUTPUT

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "kfp"
EXAMPLE = ROOT / "notebooks" / "02_tagged_pipeline.ipynb"
SMALL = DATA / "small.ipynb"
KALE = DATA / "kale.ipynb"


def run_local(pipeline: Any, root: Path, log: io.StringIO | None = None,
              **arguments: Any) -> Path:
    """Run a compiled pipeline under kfp.local's SubprocessRunner; return its run folder.

    Everything kfp.local and the tasks write (outputs, workspace, temporary files, MLflow's
    ./mlruns) stays under `root`; the tasks' logs, which kfp.local echoes, go to `log`.
    """
    from kfp import local

    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "out"),
               workspace_root=str(root / "workspace"))
    # kfp.local indents its tasks' logs by swapping builtins.print in and out; a ParallelFor's
    # iterations do it from several threads, which can leave the indenting print in place
    # for every later print of this process.
    original_print = builtins.print
    try:
        with _sandbox(root), contextlib.redirect_stdout(log or io.StringIO()):
            pipeline(**arguments)
    finally:
        builtins.print = original_print
    (run,) = [p for p in (root / "out").iterdir() if p.is_dir()]
    return run


@contextlib.contextmanager
def _sandbox(folder: Path) -> Iterator[None]:
    """Tasks started here work in `folder` and keep their temporary files under it."""
    previous, tmpdir = os.getcwd(), os.environ.get("TMPDIR")
    (folder / "tmp").mkdir(exist_ok=True)
    os.chdir(folder)
    os.environ["TMPDIR"] = str(folder / "tmp")
    try:
        yield
    finally:
        os.chdir(previous)
        if tmpdir is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = tmpdir


def kfp_metrics(run: Path, step: str) -> dict[str, float]:
    """The Metrics artifact a step of a kfp.local run logged."""
    executor_output = json.loads((run / step / "executor_output.json").read_text())
    (artifact,) = executor_output["artifacts"][METRICS_OUTPUT]["artifacts"]
    return artifact["metadata"]


@dataclass
class Reference:
    """What the local runner produced: each step's values directory and metrics."""

    values: dict[str, Path]
    metrics: dict[str, dict[str, float]]


def run_reference(notebook: Path, folder: Path, parameters: dict[str, Any]) -> Reference:
    """The same notebook and parameters through the local runner (jupyter_mlops.runner)."""
    from jupyter_mlops.runner import RunOptions, run_pipeline
    from jupyter_mlops.runner.rundir import RunFolder

    result = run_pipeline(notebook, RunOptions(parameters=parameters, out=folder, track=False,
                                               cache=False, quiet=True))
    assert result.ok, [str(error) for error in result.failures]
    run_folder = RunFolder(Path(result.run_dir), result.run_id)
    return Reference({name: run_folder.data(name) for name in result.steps},
                     {name: step.metrics for name, step in result.steps.items()})
