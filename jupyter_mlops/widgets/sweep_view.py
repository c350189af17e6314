"""`jupyter_mlops.sweep(NOTEBOOK, grid={...})`: a view of a running sweep and its runs; with
`backend="kfp"`, the KFP run that fans the grid out (kfp/sweep.py) and its link."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from jupyter_mlops.errors import SweepError
from jupyter_mlops.runner.grid import Grid
from jupyter_mlops.runner.sweep import SweepExecutor, SweepRun, plan_sweep
from jupyter_mlops.steps.mlflow_vocabulary import SWEEP_TAG
from jupyter_mlops.widgets.fallback import StaticFallback
from jupyter_mlops.widgets.html import esc, fmt, link, status_badge, table

BACKENDS = ("local", "kfp")


class Sweep(StaticFallback, widgets.VBox):
    """Progress and per-run results of a sweep, above a runs browser of its MLflow runs."""

    def __init__(self, executor: SweepExecutor, browse: bool = True) -> None:
        self.executor = executor
        self._lock = threading.RLock()
        self.header = widgets.HTML()
        self.progress = widgets.IntProgress(min=0, max=len(executor.runs), value=0,
                                            description="runs")
        self.table = widgets.HTML()
        self.browser: Any = None
        children: list[widgets.Widget] = [self.header, self.progress, self.table]
        if browse:
            from jupyter_mlops.widgets.runs_browser import RunsBrowser

            self.browser = RunsBrowser(executor.plan.experiment, executor.tracker.uri,
                                       filter_string=f"tags.`{SWEEP_TAG}` = "
                                                     f"'{executor.plan.sweep_id}'")
            children.append(self.browser)
        super().__init__(children)
        self.add_class("mlops-sweep")
        executor.on_change = self._changed
        self._draw()

    @property
    def runs(self) -> list[SweepRun]:
        return self.executor.runs

    @property
    def failed(self) -> list[SweepRun]:
        return [r for r in self.runs if r.status == "FAILED"]

    @property
    def done(self) -> bool:
        return all(r.done for r in self.runs)

    def wait(self, timeout: float | None = None) -> list[SweepRun]:
        """Block until every run is done (or `timeout`); returns the runs."""
        self.executor.wait(timeout)
        self._changed(None)
        return self.runs

    def _changed(self, run: SweepRun | None) -> None:
        with self._lock:
            self._draw()
            if self.browser is not None and (run is None or run.done):
                self.browser.refresh()  # results show up as each run ends
        if self.done:
            self.refresh_output()

    def _draw(self) -> None:
        plan = self.executor.plan
        finished = sum(r.done for r in self.runs)
        self.progress.value = finished
        self.progress.bar_style = "danger" if self.failed else ("success" if self.done else "")
        mode = "pipeline (runner)" if plan.pipeline else "notebook (papermill)"
        self.header.value = (
            f"<b>Sweep {esc(plan.sweep_id)}</b> of <code>{esc(plan.notebook.name)}</code> "
            f"as {mode}, {plan.jobs} at a time, experiment <code>{esc(plan.experiment)}</code>: "
            f"{finished}/{len(self.runs)} done, {len(self.failed)} failed")
        self.table.value = runs_table(self.runs)

    def static_html(self) -> str:
        browser = self.browser.static_html() if self.browser is not None else ""
        return f'<div class="mlops-sweep">{self.header.value}{self.table.value}{browser}</div>'


def runs_table(runs: list[SweepRun]) -> str:
    keys = sorted({k for r in runs for k in r.metrics})
    rows = []
    for run in runs:
        took = f"{run.ended - run.started:.1f} s" if run.ended and run.started else ""
        error = f'<pre style="color:#d62728;margin:0;white-space:pre-wrap">' \
                f'{esc((run.error or "")[-600:])}</pre>' if run.error else ""
        params = ", ".join(f"{k}={fmt(v)}" for k, v in run.params.items())
        rows.append([run.index, esc(params), status_badge(run.status), took,
                     *(esc(fmt(run.metrics.get(k))) for k in keys), error])
    raw = range(0, 5 + len(keys))
    return table(["#", "params", "status", "took", *keys, "error"], rows, raw_columns=raw,
                 css_class="mlops-sweep-runs")


def sweep(notebook: str | Path, grid: Grid | dict[str, Any] | str | Path | None = None, *,
          jobs: int = 2, pipeline: bool = False, experiment: str | None = None,
          tracking_uri: str | None = None, metrics: list[str] | None = None,
          out: str | Path | None = None, timeout: float | None = None, wait: bool = False,
          browse: bool = True, backend: str = "local", host: str | None = None,
          ) -> Sweep | KfpSweep:
    """Run `notebook` once per combination of `grid` (a dict or a grid file), `jobs` at a
    time, as MLflow runs.

    Returns at once (unless `wait`) with a live view; `Sweep.wait()` blocks until all are done.
    A failed run shows its error and the others go on. `pipeline=True` runs each combination
    through the local runner instead of executing the notebook whole.

    `backend="kfp"` compiles the notebook with the grid fanned out (dsl.ParallelFor, `jobs`
    combinations at a time) and submits one run to Kubeflow Pipelines at `host` (else
    KFP_HOST, else the config file), as `jupyter-mlops submit` does; its steps log to
    `tracking_uri` when given.
    """
    if backend not in BACKENDS:
        raise SweepError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, "
                         f"got {backend!r}")
    if backend == "kfp":
        given = {"pipeline": pipeline, "metrics": metrics, "out": out, "timeout": timeout,
                 "wait": wait}
        _refuse_local_options({k: v for k, v in given.items() if v})
        return _kfp_sweep(notebook, grid or {}, jobs, experiment, tracking_uri, host)
    plan = plan_sweep(notebook, grid, jobs=jobs, pipeline=pipeline, experiment=experiment,
                      metrics=metrics, out=out, timeout=timeout,
                      launched_from=_launching_notebook())
    from jupyter_mlops.runner.mlflow_runs import shared_tracker

    executor = SweepExecutor(plan, shared_tracker(tracking_uri))
    view = Sweep(executor, browse=browse)
    executor.start()
    if wait:
        view.wait()
    return view


class KfpSweep(StaticFallback, widgets.HTML):
    """A sweep submitted to Kubeflow Pipelines: its run, what it fans out, a link to the KFP UI."""

    def __init__(self, submitted: Any, notebook: str | Path) -> None:
        self.submitted = submitted  # kfp.sweep.SubmittedSweep
        fan_out, run = submitted.fan_out, submitted.submission
        combinations = len(fan_out.items)
        super().__init__(
            f"<b>Sweep of <code>{esc(Path(notebook).name)}</code> on Kubeflow Pipelines</b>: "
            f"{combinations} combination{'s' * (combinations != 1)} of "
            f"{esc(', '.join(fan_out.parameters))} in run {link(run.url, run.id)}, "
            f"experiment <code>{esc(submitted.experiment)}</code>; per combination: "
            f"{esc(', '.join(sorted(fan_out.steps)))}")
        self.add_class("mlops-kfp-sweep")

    def static_html(self) -> str:
        return f'<div class="mlops-kfp-sweep">{self.value}</div>'


def _kfp_sweep(notebook: str | Path, grid: Any, jobs: int, experiment: str | None,
               tracking_uri: str | None, host: str | None) -> KfpSweep:
    from jupyter_mlops.kfp.connection import resolve_connection
    from jupyter_mlops.kfp.names import TRACKING_PARAMETER
    from jupyter_mlops.kfp.sweep import submit_sweep

    if not Path(notebook).is_file():
        raise SweepError(f"{notebook}: no such notebook")
    arguments = {TRACKING_PARAMETER: tracking_uri} if tracking_uri else {}
    submitted = submit_sweep(notebook, grid, resolve_connection(host), experiment=experiment,
                             arguments=arguments, parallelism=jobs)
    return KfpSweep(submitted, notebook)


def _refuse_local_options(given: dict[str, Any]) -> None:
    """Options of a local sweep have no meaning on KFP: said, never dropped in silence."""
    if given:
        raise SweepError(f"{', '.join(given)} apply to local sweeps only; a KFP sweep runs on "
                         "the cluster: follow it in the KFP UI or the Runs panel")


def _launching_notebook() -> Path | None:
    """The notebook this kernel runs, so that its panel lists the sweeps it started."""
    from IPython import get_ipython

    from jupyter_mlops.tracking.notebook_info import detect_path

    shell = get_ipython()
    return detect_path(shell.user_ns if shell is not None else None)
