"""`run_pipeline`: a tagged notebook run as a local pipeline, the API behind `jupyter-mlops run`."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from jupyter_mlops.runner import rerun_hint, rundir
from jupyter_mlops.runner.kernels import KernelPool, warm_imports
from jupyter_mlops.runner.results import PipelineResult, StepResult
from jupyter_mlops.runner.rundir import RunFolder, cache_root

if TYPE_CHECKING:  # imported when needed: the first kernel boots while they load
    from jupyter_mlops.notebook import StepGraph
    from jupyter_mlops.runner.progress import Progress
    from jupyter_mlops.runner.scheduler import Scheduler

__all__ = ["run_pipeline", "PipelineResult", "StepResult"]


def run_pipeline(notebook: str | Path, parameters: Mapping[str, Any] | None = None, *,
                 params_file: str | Path | None = None,
                 cli_parameters: Iterable[tuple[str, str]] = (), jobs: int | None = None,
                 cache: bool = True, from_step: str | None = None, only: str | None = None,
                 out: str | Path | None = None, track: bool = True,
                 tracking_uri: str | None = None, quiet: bool = False,
                 stream: IO[str] | None = None, fresh_kernels: bool = False,
                 wait_for_store: bool = True) -> PipelineResult:
    """Run `notebook`'s steps as a pipeline; parameters are checked before anything runs.

    `parameters` are typed values, `cli_parameters` (NAME, TEXT) pairs as `-p` gives them; both
    override `params_file`. The result's `exit_code` is 0, 1 (a step failed) or 130 (interrupted).
    A kernel whose step succeeded is reset and reused for a later step unless `fresh_kernels`.
    Tracked, it returns once MLflow has the run, unless not `wait_for_store`: then a sender
    process sends the records meanwhile and after (`jupyter-mlops run` does not wait).
    """
    cli_parameters = list(cli_parameters)
    inputs = rerun_hint.fingerprint(notebook, parameters, params_file, cli_parameters,
                                    from_step, only) if cache else None
    # Ctrl-C and SIGTERM stop the run cleanly from its first kernel on: none is left behind.
    with _signals_as_interrupt():
        # realpath, not Path.resolve: a symlink loop is for read_graph to name, not a RuntimeError
        pool = KernelPool(Path(os.path.realpath(notebook)).parent, reuse=not fresh_kernels)
        try:
            _boot_first_kernel(pool, notebook, out, inputs)
            graph, values, plan = _checked(notebook, parameters, params_file, cli_parameters,
                                           cache, from_step, only)
            result = _run_steps(graph, values, plan, pool, out, jobs or os.cpu_count() or 1,
                                track, tracking_uri, stream, quiet, wait_for_store)
            if result.ok and all(graph.step(name).options.cache for name in plan):
                rerun_hint.remember(cache_root(out), inputs)
            return result
        finally:
            pool.close()  # the scheduler closed it when it ran; this is for bad input


def _boot_first_kernel(pool: KernelPool, notebook: str | Path, out: str | Path | None,
                       inputs: str | None) -> None:
    """Unless the run looks served from the cache: a kernel takes about a second to start,
    and this one boots while the modules that read the notebook load and it is read."""
    if Path(notebook).is_file() and not rerun_hint.seen(cache_root(out), inputs):
        pool.launch(1)


def _checked(notebook: str | Path, parameters: Mapping[str, Any] | None,
             params_file: str | Path | None, cli_parameters: list[tuple[str, str]],
             cache: bool, from_step: str | None,
             only: str | None) -> tuple[StepGraph, dict[str, Any], dict[str, str]]:
    """The step graph, the parameter values and the plan, or an error naming what is wrong."""
    from jupyter_mlops.notebook import read_graph
    from jupyter_mlops.runner import parameters as params
    from jupyter_mlops.runner.plan import make_plan

    graph = read_graph(str(notebook))
    given = dict(params.read_params_file(params_file)) if params_file else {}
    given.update(parameters or {})
    values = params.resolve(graph, given, cli_parameters)
    return graph, values, make_plan(graph, cache, from_step, only)


def _run_steps(graph: StepGraph, values: dict[str, Any], plan: dict[str, str], pool: KernelPool,
               out: str | Path | None, jobs: int, track: bool, tracking_uri: str | None,
               stream: IO[str] | None, quiet: bool, wait_for_store: bool) -> PipelineResult:
    """The checked run, in a new run folder."""
    from jupyter_mlops.runner.progress import Progress
    from jupyter_mlops.runner.scheduler import Scheduler

    folder = RunFolder.create(out, {"notebook": graph.path, "parameters": values})
    pool.log_dir, pool.warm_code = folder.root / "logs", warm_imports(graph.setup_cells)
    result = PipelineResult(folder.run_id, folder.root, graph.path, values, {}, time.time())
    tracker = _tracker(graph, folder, graph.path, tracking_uri) if track else None
    progress = Progress(len(plan), stream, quiet)
    pool.report = progress.line  # a kernel that died at start and was replaced
    progress.line(f"run {folder.run_id}: {len(plan)} step(s) of {graph.name} -> {folder.root}")
    for dead in folder.settled:
        progress.line(f"run {dead} marked failed: {rundir.DEAD}")
    listeners = [progress] + ([tracker] if tracker is not None else [])
    scheduler = Scheduler(graph, plan, values, folder, jobs, pool, listeners)
    _execute(scheduler, result, progress, tracker, wait_for_store)
    return result


def _execute(scheduler: Scheduler, result: PipelineResult, progress: Progress,
             tracker: Any, wait_for_store: bool = True) -> None:
    """Run the steps into `result`, then write the run's summary and finish its MLflow run."""
    try:
        result.steps = scheduler.run()
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


def _finish_tracking(tracker: Any, result: PipelineResult, summary: Path,
                     wait: bool) -> str | None:
    try:
        return tracker.finish(result, summary, wait=wait)  # type: ignore[no-any-return]
    except Exception as error:  # noqa: BLE001 - the run happened; only its record is short
        print(f"warning: MLflow tracking failed: {error!r}", file=sys.stderr)
        return None


def _tracker(graph: Any, folder: RunFolder, notebook: str, uri: str | None) -> Any | None:
    from jupyter_mlops.runner.tracking import PipelineTracker
    from jupyter_mlops.tracking.notebook_info import notebook_tags

    tags = {"mlops.kind": "pipeline", **notebook_tags(notebook), "mlops.run_id": folder.run_id,
            "mlops.pipeline": graph.name}
    try:
        return PipelineTracker(graph.experiment or graph.name, f"pipeline-{folder.run_id}", tags,
                               notebook, uri)
    except Exception as error:  # noqa: BLE001 - the pipeline runs untracked rather than not
        print(f"warning: MLflow tracking is off for this run: {error!r}", file=sys.stderr)
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
