"""Running a sweep: papermill runs of a notebook (or runner pipelines), parallel and bounded,
each recorded as an MLflow run by this process through the tracking client.

Logging from the parent is the robust path: it works whatever the notebook does, and a run
that dies (kernel crash, timeout) is still marked FAILED with its error. Metrics are read
from the executed notebook: an extra last cell displays the metric variables' values. The
tracking client's writer sends the records off the workers' threads and spools them when the
store does not answer; the views (widgets/sweep_view.py) read the runs back from MLflow.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from jupyter_mlops.errors import RunnerError, SweepError
from jupyter_mlops.notebook.model import StepGraph
from jupyter_mlops.runner.grid import Grid, as_grid
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking.client import RunRef, Tracker
from jupyter_mlops.tracking.notebook_info import notebook_tags

METRICS_MIME = "application/vnd.jupyter-mlops.metrics+json"
DEFAULT_OUT = Path(".mlops") / "sweeps"
# The run kernels' stderr is the sweeping kernel's, which shows it in the cell: keep their
# start-up warnings (e.g. "running over TCP without encryption") out of the user's view.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]
MAX_ERROR = 4000

# Appended to the executed copy: displays the metric variables' values (numbers only).
_METRICS_CELL = """\
def _mlops_metrics(names):
    import numbers
    from IPython.display import display
    found = {{}}
    scope = globals()
    for name in names or [n for n in scope if not n.startswith("_") and n not in {params!r}]:
        value = scope.get(name)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            found[name] = float(value)
    display({{{mime!r}: found}}, raw=True)
_mlops_metrics({names!r})
"""


class PipelineRunFailed(RunnerError):
    """A sweep's pipeline run ended with failed steps (named in the message)."""


@dataclass
class SweepRun:
    """One combination of the grid and what became of it."""

    index: int
    params: dict[str, Any]
    status: str = "SCHEDULED"
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    output: Path | None = None
    started: float | None = None
    ended: float | None = None
    ref: RunRef | None = None  # the run in the tracking client; `run_id` once the store has it

    @property
    def done(self) -> bool:
        return self.status in ("FINISHED", "FAILED")

    varying: tuple[str, ...] = ()  # the grid's axes with more than one value

    @property
    def name(self) -> str:
        """The run's name in MLflow: its index and the values that tell it from the others."""
        values = ",".join(f"{k}={self.params[k]}" for k in self.varying if k in self.params)
        return f"{self.index}:{values}" if values else str(self.index)


@dataclass
class SweepPlan:
    notebook: Path
    graph: StepGraph
    combos: list[dict[str, Any]]
    sweep_id: str
    experiment: str
    out: Path
    jobs: int = 2
    pipeline: bool = False
    metrics: list[str] = field(default_factory=list)
    timeout: float | None = None
    launched_from: Path | None = None  # the notebook whose kernel started the sweep


def plan_sweep(notebook: str | Path, grid: Grid | dict[str, Any] | str | Path | None = None,
               *, jobs: int = 2,
               pipeline: bool = False, experiment: str | None = None,
               metrics: list[str] | None = None, out: str | Path | None = None,
               timeout: float | None = None, launched_from: Path | None = None) -> SweepPlan:
    """A sweep's plan, checked before anything runs: the notebook, `jobs`, and each value of
    the grid (a dict or a grid file, runner/grid.py) read by the notebook's parameter grammar
    (SweepError names the fault)."""
    from jupyter_mlops.notebook import read_graph

    path = Path(notebook).resolve()
    if not path.is_file():
        raise SweepError(f"{notebook}: no such notebook")
    if jobs < 1:
        raise SweepError(f"jobs must be at least 1, got {jobs}")
    graph = read_graph(str(path))
    sweep_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    return SweepPlan(notebook=path, graph=graph, combos=as_grid(grid).combinations(graph),
                     sweep_id=sweep_id, experiment=experiment or graph.experiment or path.stem,
                     out=Path(out or DEFAULT_OUT).resolve() / sweep_id, jobs=jobs,
                     pipeline=pipeline, metrics=list(metrics or []), timeout=timeout,
                     launched_from=launched_from)


class SweepExecutor:
    """Starts the runs in a bounded thread pool; `on_change(run)` is called from the workers
    (for a run that ended, once the store has its records: a view reading MLflow sees them)."""

    def __init__(self, plan: SweepPlan, tracker: Tracker,
                 on_change: Callable[[SweepRun], None] | None = None) -> None:
        self.plan = plan
        self.tracker = tracker
        self.on_change = on_change or (lambda run: None)
        varying = tuple(k for k in (plan.combos[0] if plan.combos else {})
                        if len({repr(c[k]) for c in plan.combos}) > 1)
        self.runs = [SweepRun(i, combo, varying=varying) for i, combo in enumerate(plan.combos)]
        self._copy = threading.Lock()  # one worker writes the instrumented copy
        self._pool: ThreadPoolExecutor | None = None
        self.futures: list[Future[None]] = []

    def start(self) -> None:
        self.plan.out.mkdir(parents=True, exist_ok=True)
        for run in self.runs:  # created up front, so the browser lists every queued run
            self._create_run(run)
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.plan.jobs),
                                        thread_name_prefix="mlops-sweep")
        self.futures = [self._pool.submit(self._execute, run) for run in self.runs]
        self._pool.shutdown(wait=False)

    def wait(self, timeout: float | None = None) -> bool:
        """True when every run is done (FINISHED or FAILED) within `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in self.futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future.result(left)
            except TimeoutError:
                return False
        self._settle()
        return all(run.done for run in self.runs)

    # --- one run -------------------------------------------------------------------------
    def _execute(self, run: SweepRun) -> None:
        run.status, run.started = "RUNNING", time.time()
        self.tracker.mark(self._ref(run), "RUNNING")
        self.on_change(run)
        try:
            if self.plan.pipeline:
                run.metrics = self._run_pipeline(run)
            else:
                run.metrics = self._run_notebook(run)
            run.status = "FINISHED"
        except Exception as error:  # one failed run must not stop the others
            run.status, run.error = "FAILED", describe(error)
        run.ended = time.time()
        self._record(run)
        self.on_change(run)

    def _run_notebook(self, run: SweepRun) -> dict[str, float]:
        import papermill

        source = self._instrumented_copy()
        run.output = self.plan.out / f"run-{run.index}.ipynb"
        try:
            papermill.execute_notebook(
                str(source), str(run.output), parameters=run.params,
                cwd=str(self.plan.notebook.parent), progress_bar=False, log_output=False,
                execution_timeout=self.plan.timeout, extra_arguments=QUIET_KERNEL)
        finally:
            if run.output.exists():
                self.tracker.log_bytes(self._ref(run), run.output.name, run.output.read_bytes())
        return read_metrics(run.output)

    def _run_pipeline(self, run: SweepRun) -> dict[str, float]:
        """Through the local runner; its own MLflow tracking is off, the sweep run records it."""
        from jupyter_mlops.runner import RunOptions, run_pipeline

        result = run_pipeline(self.plan.notebook, RunOptions(
            parameters=run.params, jobs=1, track=False, quiet=True,
            out=self.plan.out / f"run-{run.index}"))
        run.output = Path(result.run_dir)
        if not result.ok:
            reasons = [str(f) for f in result.failures] or [f"pipeline {result.status}"]
            raise PipelineRunFailed("; ".join(reasons))
        return pipeline_metrics(result)

    # --- MLflow, through the tracking client ----------------------------------------------
    def _create_run(self, run: SweepRun) -> None:
        tags = {vocab.KIND_TAG: vocab.KIND_SWEEP, vocab.SWEEP_TAG: self.plan.sweep_id,
                **notebook_tags(self.plan.notebook, self.plan.launched_from),
                vocab.SWEEP_MODE_TAG: "pipeline" if self.plan.pipeline else "notebook",
                vocab.SWEEP_INDEX_TAG: str(run.index)}
        run.ref = self.tracker.start_run(run.name, self.plan.experiment, tags=tags)
        self.tracker.log_params(run.ref, {k: _param(v) for k, v in run.params.items()})
        self.tracker.mark(run.ref, "SCHEDULED")

    def _record(self, run: SweepRun) -> None:
        ref = self._ref(run)
        self.tracker.log_metrics(ref, run.metrics, step=0)
        if run.error:
            self.tracker.set_tags(ref, {vocab.ERROR_TAG: run.error[-MAX_ERROR:]})
            self.tracker.log_text(ref, vocab.ERROR_ARTIFACT, run.error)
        self.tracker.end_run(ref, run.status)
        self._settle()

    def _ref(self, run: SweepRun) -> RunRef:
        assert run.ref is not None, "the run is created in start()"
        return run.ref

    def _settle(self, timeout: float = 60.0) -> None:
        """Wait up to `timeout` for the store to have what was logged, so the views (which
        read MLflow) show it and each run knows its MLflow id. What a store that does not
        answer has not taken stays in the spool, sent once it answers."""
        self.tracker.flush(timeout)
        for run in self.runs:
            if run.run_id is None and run.ref is not None:
                run.run_id = self.tracker.run_id(run.ref)

    def _instrumented_copy(self) -> Path:
        """The notebook with the metrics cell appended, written once per sweep."""
        path = self.plan.out / f"_source-{self.plan.notebook.stem}.ipynb"
        with self._copy:
            if not path.exists():
                nb = nbformat.read(self.plan.notebook, as_version=4)
                names = self.plan.metrics or list(self.plan.graph.metrics)
                code = _METRICS_CELL.format(names=names, params=sorted(self.plan.graph.parameters),
                                            mime=METRICS_MIME)
                nb.cells.append(nbformat.v4.new_code_cell(code, metadata={"tags": ["mlops-sweep"]}))
                nbformat.write(nb, path)
        return path


def read_metrics(executed: Path) -> dict[str, float]:
    """The metrics the appended cell displayed in an executed notebook."""
    nb = nbformat.read(executed, as_version=4)
    for cell in reversed(nb.cells):
        for output in cell.get("outputs", []):
            found = output.get("data", {}).get(METRICS_MIME)
            if found is not None:
                return {k: float(v) for k, v in (json.loads(found) if isinstance(found, str)
                                                 else found).items()}
    return {}


def pipeline_metrics(result: Any) -> dict[str, float]:
    """Numeric metrics of a runner result (its `metrics` mapping, flat or per step)."""
    raw = getattr(result, "metrics", None) or {}
    flat: dict[str, float] = {}
    for key, value in dict(raw).items():
        if isinstance(value, dict):
            flat.update({k: float(v) for k, v in value.items() if _is_number(v)})
        elif _is_number(value):
            flat[key] = float(value)
    return flat


def describe(error: BaseException) -> str:
    """A failed run's error as a person reads it: papermill's names the cell and exception."""
    ename = getattr(error, "ename", None)
    if ename:
        cell = getattr(error, "exec_count", None)
        where = f"cell [{cell}]: " if cell is not None else ""
        return f"{where}{ename}: {getattr(error, 'evalue', '')}"
    text = str(error) or type(error).__name__
    if isinstance(error, (OSError, RuntimeError)) and not str(error):
        text = "".join(traceback.format_exception_only(error)).strip()
    return f"{type(error).__name__}: {text}" if not text.startswith(type(error).__name__) else text


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)

