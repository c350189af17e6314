"""`run_pipeline`: a tagged notebook run as a local pipeline, the API behind `jupyter-mlops run`."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops import settings
from jupyter_mlops.errors import counted
from jupyter_mlops.runner import rerun_hint, rundir
from jupyter_mlops.runner.kernels import KernelPool, warm_imports
from jupyter_mlops.runner.options import RunOptions
from jupyter_mlops.runner.results import PipelineResult, StepResult
from jupyter_mlops.runner.rundir import RunFolder, cache_root

if TYPE_CHECKING:  # imported when needed: the first kernel boots while they load
    from jupyter_mlops.notebook import StepGraph
    from jupyter_mlops.runner.progress import Progress
    from jupyter_mlops.runner.scheduler import Scheduler

__all__ = ["run_pipeline", "RunOptions", "PipelineResult", "StepResult"]

log = logging.getLogger("jupyter_mlops.runner")


def run_pipeline(notebook: str | Path, options: RunOptions | None = None) -> PipelineResult:
    """Run `notebook`'s steps as a pipeline; parameters are checked before anything runs.

    For example `run_pipeline("Train.ipynb", RunOptions(parameters={"alpha": 0.1}, jobs=2))`.
    The result's `exit_code` is 0, 1 (a step failed) or 130 (interrupted). A kernel whose step
    succeeded is reset and reused for a later step unless `options.fresh_kernels`. Tracked, it
    returns once MLflow has the run, unless not `options.wait_for_store`: then a sender process
    sends the records meanwhile and after (`jupyter-mlops run` does not wait).
    """
    options = options or RunOptions()
    inputs = rerun_hint.fingerprint(notebook, options) if options.cache else None
    # Ctrl-C and SIGTERM stop the run cleanly from its first kernel on: none is left behind.
    with _signals_as_interrupt():
        # realpath, not Path.resolve: a symlink loop is for read_graph to name, not a RuntimeError
        # The pool's one owner: every kernel it started is stopped when this block ends.
        source = Path(os.path.realpath(notebook))
        # A step's `%mlops start` names the notebook, as in JupyterLab: its runs are tagged
        # with it (the panel lists them) and its session run is named after it.
        with KernelPool(source.parent, reuse=not options.fresh_kernels,
                        env={settings.NOTEBOOK.name: str(source)}) as pool:
            _boot_first_kernel(pool, notebook, options.out, inputs)
            graph, values, plan = _checked(notebook, options)
            result = _run_steps(graph, values, plan, pool, options)
        if options.report is not None:
            from jupyter_mlops.runner.report import write_report

            write_report(result, options.report)
        if result.ok and all(graph.step(name).options.cache for name in plan):
            rerun_hint.remember(cache_root(options.out), inputs)
        return result


def _boot_first_kernel(pool: KernelPool, notebook: str | Path, out: str | Path | None,
                       inputs: str | None) -> None:
    """Unless the run looks served from the cache: a kernel takes about a second to start,
    and this one boots while the modules that read the notebook load and it is read."""
    if not Path(notebook).is_file():
        return  # reading it names the fault
    if rerun_hint.seen(cache_root(out), inputs):
        log.debug("%s: no kernel booted ahead: the same inputs ran from the cache", notebook)
    else:
        pool.launch(1)


def _checked(notebook: str | Path,
             options: RunOptions) -> tuple[StepGraph, dict[str, Any], dict[str, str]]:
    """The step graph, the parameter values and the plan, or an error naming what is wrong."""
    from jupyter_mlops.notebook import read_graph
    from jupyter_mlops.runner.cache import make_plan

    graph = read_graph(str(notebook))
    values = options.parameter_values(graph)
    if options.report is not None:
        from jupyter_mlops.runner.report import check_report_path

        check_report_path(options.report)
    if options.track:  # a store MLflow has no scheme for is named now, not as a warning
        from jupyter_mlops.tracking.destination import checked_uri, tracking_uri

        checked_uri(options.tracking_uri or tracking_uri())
    return graph, values, make_plan(graph, options.cache, options.from_step, options.only)


def _run_steps(graph: StepGraph, values: dict[str, Any], plan: dict[str, str], pool: KernelPool,
               options: RunOptions) -> PipelineResult:
    """The checked run, in a new run folder."""
    from jupyter_mlops.runner.progress import Progress
    from jupyter_mlops.runner.scheduler import Scheduler

    folder = RunFolder.create(options.out, {"notebook": graph.path, "parameters": values})
    pool.log_dir, pool.warm_code = folder.root / "logs", warm_imports(graph.setup_cells)
    result = PipelineResult(folder.run_id, folder.root, graph.path, values, {}, time.time())
    tracker = _tracker(graph, folder, graph.path, options.tracking_uri) if options.track else None
    progress = Progress(len(plan), options.stream, options.quiet)
    pool.report = progress.line  # a kernel that died at start and was replaced
    progress.line(f"run {folder.run_id}: {counted(len(plan), 'step')} of {graph.name} "
                  f"-> {folder.root}")
    for dead in folder.settled:
        progress.line(f"run {dead} marked failed: {rundir.DEAD}")
    listeners = [progress, *options.listeners] + ([tracker] if tracker is not None else [])
    scheduler = Scheduler(graph, plan, values, folder, options.workers, pool, listeners)
    _execute(scheduler, result, progress, tracker, options)
    return result


def _execute(scheduler: Scheduler, result: PipelineResult, progress: Progress,
             tracker: Any, options: RunOptions) -> None:
    """Run the steps into `result`, judge its gates and register its model
    (runner/local_release.py), then write the run's summary and finish its MLflow run."""
    wait_for_store = options.wait_for_store
    try:
        result.steps = scheduler.run()
        if result.steps_ok:
            _release(scheduler, result, progress, tracker, options.tracking_uri)
    except KeyboardInterrupt:
        result.steps, result.interrupted = scheduler.results, True
    finally:
        progress.close()
        result.duration = time.time() - result.started
        summary = scheduler.folder.write_summary(result.to_dict())
        if tracker is not None and tracker in scheduler.listeners:
            result.mlflow_run_id = _finish_tracking(tracker, result, summary, wait_for_store)
            result.mlflow_experiment, result.tracking_uri = tracker.experiment, tracker.uri
            scheduler.folder.write_summary(result.to_dict())
    progress.line(f"run {result.run_id} {result.status} in {result.duration:.1f}s")


def _release(scheduler: Scheduler, result: PipelineResult, progress: Progress, tracker: Any,
             tracking_uri: str | None) -> None:
    from jupyter_mlops.errors import MlopsError
    from jupyter_mlops.runner.local_release import release_run

    listening = tracker if tracker is not None and tracker in scheduler.listeners else None
    try:
        release_run(scheduler.graph, result, listening, tracking_uri, progress.line)
    except Exception as error:  # noqa: BLE001 - the registry refused: the run fails, named
        result.gate_error = MlopsError(f"{scheduler.graph.path}: registering the model failed: "
                                       f"{type(error).__name__}: {error}")
        progress.line(str(result.gate_error))


def _finish_tracking(tracker: Any, result: PipelineResult, summary: Path,
                     wait: bool) -> str | None:
    try:
        return tracker.finish(result, summary, wait=wait)
    except Exception as error:  # noqa: BLE001 - the run happened; only its record is short
        log.warning("MLflow tracking failed: %r", error)
        return None


def _tracker(graph: Any, folder: RunFolder, notebook: str, uri: str | None) -> Any | None:
    from jupyter_mlops.runner.mlflow_runs import PipelineTracker
    from jupyter_mlops.steps import mlflow_vocabulary as vocab
    from jupyter_mlops.tracking.notebook_info import notebook_tags

    tags = {vocab.KIND_TAG: vocab.KIND_PIPELINE, **notebook_tags(notebook),
            vocab.PIPELINE_RUN_TAG: folder.run_id, vocab.PIPELINE_TAG: graph.name}
    try:
        return PipelineTracker(graph.experiment or graph.name, f"pipeline-{folder.run_id}", tags,
                               notebook, uri)
    except Exception as error:  # noqa: BLE001 - the pipeline runs untracked rather than not
        log.warning("MLflow tracking is off for this run: %r", error)
        return None


@contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run the way Ctrl-C does; a second signal during cleanup is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
