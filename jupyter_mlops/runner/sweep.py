"""Running a sweep: papermill runs of a notebook (or runner pipelines), parallel and bounded,
each recorded as an MLflow run by this process.

Logging from the parent is the robust path: it works whatever the notebook does, and a run
that dies (kernel crash, timeout) is still marked FAILED with its error. Metrics are read
from the executed notebook: an extra last cell displays the metric variables' values.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from jupyter_mlops.notebook.model import StepGraph
from jupyter_mlops.tracking.notebook_info import notebook_tags
from jupyter_mlops.widgets.errors import SweepError

METRICS_MIME = "application/vnd.jupyter-mlops.metrics+json"
KIND_TAG, SWEEP_TAG = "mlops.kind", "mlops.sweep"
ERROR_TAG = "mlops.error"
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


class PipelineRunFailed(SweepError):
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


class SweepExecutor:
    """Starts the runs in a bounded thread pool; `on_change(run)` is called from the workers."""

    def __init__(self, plan: SweepPlan, client: Any,
                 on_change: Callable[[SweepRun], None] | None = None) -> None:
        self.plan = plan
        self.client = client
        self.on_change = on_change or (lambda run: None)
        varying = tuple(k for k in (plan.combos[0] if plan.combos else {})
                        if len({repr(c[k]) for c in plan.combos}) > 1)
        self.runs = [SweepRun(i, combo, varying=varying) for i, combo in enumerate(plan.combos)]
        self._store = threading.Lock()  # one MLflow write at a time from the workers
        self._pool: ThreadPoolExecutor | None = None
        self.futures: list[Future[None]] = []

    def start(self) -> None:
        self.plan.out.mkdir(parents=True, exist_ok=True)
        experiment_id = self._experiment_id()
        for run in self.runs:  # created up front, so the browser lists every queued run
            run.run_id = self._create_run(experiment_id, run)
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
        return all(run.done for run in self.runs)

    # --- one run -------------------------------------------------------------------------
    def _execute(self, run: SweepRun) -> None:
        run.status, run.started = "RUNNING", time.time()
        self._write(lambda c: c.update_run(run.run_id, status="RUNNING"))
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
                self._write(lambda c: c.log_artifact(run.run_id, str(run.output)))
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

    # --- MLflow --------------------------------------------------------------------------
    def _experiment_id(self) -> str:
        with self._store:
            found = self.client.get_experiment_by_name(self.plan.experiment)
            if found is not None:
                return found.experiment_id
            return self.client.create_experiment(
                self.plan.experiment, artifact_location=experiment_artifacts(
                    getattr(self.client, "tracking_uri", None), self.plan.experiment))

    def _create_run(self, experiment_id: str, run: SweepRun) -> str:
        from mlflow.entities import Param, RunTag

        tags = {KIND_TAG: "sweep", SWEEP_TAG: self.plan.sweep_id,
                **notebook_tags(self.plan.notebook, self.plan.launched_from),
                "mlops.mode": "pipeline" if self.plan.pipeline else "notebook"}
        with self._store:
            created = self.client.create_run(experiment_id, run_name=run.name, tags=tags)
            run_id = created.info.run_id
            params = [Param(k, _param(v)) for k, v in run.params.items()]
            self.client.log_batch(run_id, params=params, tags=[RunTag("sweep.index",
                                                                      str(run.index))])
            self.client.update_run(run_id, status="SCHEDULED")
        return run_id

    def _record(self, run: SweepRun) -> None:
        from mlflow.entities import Metric, RunTag

        def write(client: Any) -> None:
            stamp = int(time.time() * 1000)
            metrics = [Metric(k, v, stamp, 0) for k, v in run.metrics.items()]
            tags = [RunTag(ERROR_TAG, run.error[-MAX_ERROR:])] if run.error else []
            if metrics or tags:
                client.log_batch(run.run_id, metrics=metrics, tags=tags)
            if run.error:
                client.log_text(run.run_id, run.error, "error.txt")
            client.set_terminated(run.run_id, run.status,
                                  int((run.ended or time.time()) * 1000))

        try:
            self._write(write)
        except Exception as error:  # the store went away: keep the run's own result
            run.error = (run.error or "") + f"\n(recording in MLflow failed: {error})"

    def _write(self, action: Callable[[Any], Any]) -> None:
        with self._store:
            action(self.client)

    def _instrumented_copy(self) -> Path:
        """The notebook with the metrics cell appended, written once per sweep."""
        path = self.plan.out / f"_source-{self.plan.notebook.stem}.ipynb"
        with self._store:
            if not path.exists():
                nb = nbformat.read(self.plan.notebook, as_version=4)
                names = self.plan.metrics or list(self.plan.graph.metrics)
                code = _METRICS_CELL.format(names=names, params=sorted(self.plan.graph.parameters),
                                            mime=METRICS_MIME)
                nb.cells.append(nbformat.v4.new_code_cell(code, metadata={"tags": ["mlops-sweep"]}))
                nbformat.write(nb, path)
        return path


def experiment_artifacts(uri: str | None, experiment: str) -> str | None:
    """Beside a SQLite store, as the tracking writer places them; MLflow's default would be
    `./mlruns` in whatever folder the process happens to run in."""
    from jupyter_mlops.tracking.store import artifact_root

    root = artifact_root(uri) if uri else None
    if root is None:
        return None
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
    return f"{root}/{slug}"


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

