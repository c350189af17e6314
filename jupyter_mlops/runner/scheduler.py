"""Run the planned steps of one pipeline: cache look-ups, up to `jobs` steps in parallel, skips.

The main thread decides (which step is ready, cached, skipped); worker threads only execute step
notebooks. A failed step skips everything downstream of it; independent branches go on.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jupyter_mlops.errors import StepFailed
from jupyter_mlops.notebook import Step, StepGraph
from jupyter_mlops.runner import cache, executor
from jupyter_mlops.runner.cache import FORCE, REUSE
from jupyter_mlops.runner.kernels import KernelPool
from jupyter_mlops.runner.results import CACHED, FAILED, KILLED, OK, SKIPPED, StepResult
from jupyter_mlops.runner.rundir import RunFolder
from jupyter_mlops.steps import serializers
from jupyter_mlops.steps.errors import SerializationError
from jupyter_mlops.steps.gates import GateSyntaxError, holds
from jupyter_mlops.steps.step_notebook import build_step_notebook

log = logging.getLogger("jupyter_mlops.runner")


class Listener(Protocol):
    """Told of every step as it starts and settles (progress display, MLflow tracking)."""

    def started(self, step: str) -> None: ...

    def finished(self, result: StepResult) -> None: ...

    # optional: retrying((step, attempt, attempts, error)) before each further attempt;
    # running((step, text)) while a step waits for its kernel or runs long (the progress)


@dataclass(frozen=True)
class Prepared:
    """What a run derives from a step once: the notebook it executes, the parameter values it
    takes, and the parts of its cache key that its inputs' hashes leave unchanged."""

    notebook: Any
    parameters: dict[str, Any]
    code: list[str]
    env: cache.Environment


class Scheduler:
    def __init__(self, graph: StepGraph, plan: dict[str, str], values: dict[str, Any],
                 folder: RunFolder, jobs: int, pool: KernelPool,
                 listeners: Sequence[Listener] = ()) -> None:
        self.graph = graph
        self.plan = plan
        self.values = values
        self.folder = folder
        self.jobs = max(1, jobs)
        self.listeners = list(listeners)
        self.versions = cache.Versions(folder.cache_root / cache.INDEX_FILE)
        self.workdir = Path(graph.path).resolve().parent
        self.cache = cache.StepCache(folder.cache_root)
        self.results: dict[str, StepResult] = {}
        self.pending: list[Step] = [graph.step(name) for name in plan]
        self.running: dict[Future[StepResult], Step] = {}
        self.keys: dict[str, str] = {}
        self.prepared: dict[str, Prepared] = {}
        self.notes: dict[str, str] = {}  # step -> why its cached result was not used
        self.stopping = threading.Event()
        self.crash: Exception | None = None  # a fault of the runner's own that ended the loop
        self.pool = pool  # run_pipeline's: it closes the pool once the run is recorded

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> dict[str, StepResult]:
        """Run to the end; on KeyboardInterrupt kill the kernels, mark steps killed, re-raise."""
        self.predicted = self._predict_runs()
        self._want_kernels()
        workers = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="mlops-step")
        try:
            while self.pending or self.running:
                self._advance(workers)
                if self.running:
                    done, _ = wait(list(self.running), timeout=0.25, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._complete(future)
                elif self.pending and not self._advance(workers):
                    break  # nothing runs and nothing can start: cannot happen on a valid graph
        except KeyboardInterrupt:
            self.stopping.set()
            self.pool.kill_all()
            raise
        except Exception as error:  # noqa: BLE001 - a bug of ours fails the steps left, named
            self.stopping.set()
            self.pool.kill_all()
            self.crash = error
        finally:
            workers.shutdown(wait=True, cancel_futures=True)
            self._settle()
        return {name: self.results[name] for name in self.plan}

    def _settle(self) -> None:
        """After an interrupt (or a fault of the runner's): collect the steps that were running;
        the rest is killed (failed, naming the fault, when it was no interrupt)."""
        for future in [f for f in self.running if f.done()]:
            self._complete(future)
        for step in list(self.pending) + list(self.running.values()):
            if self.crash is None:
                result = StepResult(step.name, KILLED, reason="interrupted")
            else:
                result = StepResult(step.name, FAILED, error=StepFailed(
                    step.name, f"the runner stopped: {type(self.crash).__name__}: {self.crash}"))
            self._settle_step(step, result)
        self.running.clear()

    def _advance(self, workers: ThreadPoolExecutor) -> bool:
        """Start, reuse or skip every step whose upstream steps are settled."""
        progressed = False
        for step in list(self.pending):
            upstream = [self.results.get(name) for name in step.upstream if name in self.plan]
            if any(result is None for result in upstream):
                continue
            broken = [r for r in upstream if r is not None and r.status not in (OK, CACHED)]
            if broken:
                self._settle_step(step, StepResult(
                    step.name, SKIPPED, reason=f"upstream step {broken[0].name!r} "
                    f"{broken[0].status}" + (f": {broken[0].reason}" if broken[0].reason else ""),
                    conditional=all(r.conditional for r in broken)))
            elif (unmet := self._unmet_condition(step)) is not None:
                self._settle_step(step, unmet)
            elif not self._try_cache(step) and len(self.running) < self.jobs:
                self.pending.remove(step)
                self._tell("started", step.name)
                self.running[workers.submit(self._execute, step, self._prepare(step))] = step
                self._want_kernels()
            else:
                continue
            progressed = True
        return progressed

    def _unmet_condition(self, step: Step) -> StepResult | None:
        """The step's result when its `when:` condition does not hold (skipped, saying why) or
        cannot be judged (failed); None when it runs."""
        when = step.options.when
        if when is None:
            return None
        name = when.metric
        try:
            if name in step.parameters:
                value = self.values[name]
            else:
                value = serializers.load(self.folder.data(step.inputs[name]), name)
            if holds(when, value):
                return None
        except (GateSyntaxError, SerializationError, OSError) as error:
            return StepResult(step.name, FAILED, error=StepFailed(step.name, f"when:{when}: "
                              f"{error}"))
        shown = f"{float(value):g}" if isinstance(value, int | float) else repr(value)
        return StepResult(step.name, SKIPPED, conditional=True,
                          reason=f"when:{when} does not hold ({name} = {shown})")

    def _try_cache(self, step: Step) -> bool:
        """Settle `step` from the cache if its mode and key allow; a REUSE miss fails it."""
        mode = self.plan[step.name]
        if step.name not in self.keys:
            try:
                self.keys[step.name] = self._key(step, self._input_hashes(step))
            except (SerializationError, OSError) as error:  # an input that cannot be read
                self._settle_step(step, StepResult(step.name, FAILED,
                                                   error=StepFailed(step.name, str(error))))
                return True
        key = self.keys[step.name]
        entry = None if mode == FORCE else self.cache.lookup(key)
        reused = self._reuse(step, key, entry) if entry is not None else None
        if reused is not None:
            self._settle_step(step, reused)
            return True
        if mode == REUSE:
            missing = StepFailed(step.name, self.notes.get(step.name, "no cached result matches "
                                 "the current code and parameters")
                                 + "; run the pipeline without --only first")
            self._settle_step(step, StepResult(step.name, FAILED, cache_key=key, error=missing))
            return True
        return False

    def _complete(self, future: Future[StepResult]) -> None:
        step = self.running.pop(future)
        try:
            result = future.result()
        except BaseException as error:  # noqa: BLE001 - a bug of ours must still settle the step
            result = StepResult(step.name, FAILED, error=StepFailed(step.name, repr(error)))
        self._settle_step(step, result, started=False)

    def _settle_step(self, step: Step, result: StepResult, started: bool = True) -> None:
        if started and step in self.pending:
            self.pending.remove(step)
        self.results[step.name] = result
        result.inputs = dict(step.inputs)
        self._tell("finished", result)
        self._want_kernels()

    def _tell(self, event: str, subject: Any) -> None:
        for listener in list(self.listeners):
            method = getattr(listener, event, None)
            if method is None:
                continue  # a listener that does not follow this event (retries: the progress)
            try:
                method(subject)
            except Exception as error:  # noqa: BLE001 - reporting must not stop the pipeline
                self.listeners.remove(listener)
                log.warning("%s stopped: %r", type(listener).__name__, error)

    # --- kernels ------------------------------------------------------------------------------

    def _predict_runs(self) -> set[str]:
        """Steps expected to need a kernel: those whose result the cache cannot give."""
        entries: dict[str, Path] = {}
        needed: set[str] = set()
        for name, mode in self.plan.items():
            step = self.graph.step(name)
            if mode == FORCE or any(up not in entries for up in step.upstream):
                needed.add(name)
                continue
            try:
                hashes = {value: serializers.content_hash(entries[producer] / "data", value)
                          for value, producer in step.inputs.items()}
            except SerializationError:  # a damaged entry: found and reported when it is reused
                needed.add(name)
                continue
            entry = self.cache.lookup(self._key(step, hashes))
            if entry is None:
                needed.add(name)
            else:
                entries[name] = entry
        return needed - {n for n, mode in self.plan.items() if mode == REUSE}

    def _want_kernels(self) -> None:
        """As many kernels as the widest stage still to run can use, started now, so later
        stages find them warm. The pool counts those running steps hand on (reuse)."""
        self.pool.want(min(self.jobs, self._widest_stage()))

    def _widest_stage(self) -> int:
        """The most steps to run that can be in flight together: steps grouped by depth
        among the pending ones (a step's depth is one more than its deepest pending parent)."""
        depth: dict[str, int] = {}
        for step in self.pending:  # in plan order: parents come first
            parents = [depth[up] for up in step.upstream if up in depth]
            depth[step.name] = 1 + max(parents, default=0)
        widths: dict[int, int] = {}
        for name, level in depth.items():
            if name in self.predicted:
                widths[level] = widths.get(level, 0) + 1
        return max(widths.values(), default=0)

    # --- keys and reuse -----------------------------------------------------------------------

    def _input_hashes(self, step: Step) -> dict[str, str]:
        return {value: serializers.content_hash(self.folder.data(producer), value)
                for value, producer in step.inputs.items()}

    def _prepare(self, step: Step) -> Prepared:
        """The step's notebook, parameters and key parts, built on first use (main thread)."""
        if step.name not in self.prepared:
            notebook = build_step_notebook(self.graph, step)
            self.prepared[step.name] = Prepared(
                notebook, {name: self.values[name] for name in step.parameters},
                [cell.source for cell in notebook.cells[1:]],  # the defaults cell aside
                cache.environment(step.imports, [str(self.workdir)], self.versions))
        return self.prepared[step.name]

    def _key(self, step: Step, input_hashes: dict[str, str]) -> str:
        prepared = self._prepare(step)
        return cache.step_key(prepared.code, prepared.parameters, input_hashes, prepared.env)

    def _reuse(self, step: Step, key: str, entry: Path) -> StepResult | None:
        """The cached result, copied in and checked; None (the step runs) if the entry was
        changed or damaged: it is quarantined and the step's progress line says so."""
        started = time.time()
        problem = self.cache.restore(entry, self.folder.data(step.name),
                                     self.folder.metrics(step.name),
                                     self.folder.notebook(step.name))
        if problem is not None:
            moved = self.cache.quarantine(entry)
            self.notes[step.name] = (f"its cached result was not used: {problem}; the entry was "
                                     f"moved to {moved} and the step runs again")
            return None
        return StepResult(step.name, CACHED, started, time.time() - started, key,
                          self.folder.notebook(step.name), _read_metrics(entry / "metrics.json"),
                          self._prepare(step).parameters)

    # --- in a worker thread -------------------------------------------------------------------

    def _execute(self, step: Step, prepared: Prepared) -> StepResult:
        data, metrics = self.folder.data(step.name), self.folder.metrics(step.name)
        parameters = prepared.parameters | {
            "_mlops_inputs": {name: str(self.folder.data(producer))
                              for name, producer in step.inputs.items()},
            "_mlops_outputs_dir": str(data),
            "_mlops_metrics_path": str(metrics),
        }
        started = time.time()
        outcome, attempts = self._attempts(step, prepared.notebook, parameters)
        result = StepResult(step.name, OK if outcome.ok else FAILED, started,
                            time.time() - started, self.keys.get(step.name),
                            self.folder.notebook(step.name), parameters=prepared.parameters,
                            error=outcome.error, attempts=attempts,
                            reason=self.notes.get(step.name, ""))
        if self.stopping.is_set() and not outcome.ok:
            result.status, result.reason, result.error = KILLED, "interrupted", None
        if outcome.ok:
            result.metrics = _read_metrics(metrics)
            if step.options.cache and result.cache_key:  # replaces an entry: --no-cache, --from
                self.cache.store(result.cache_key, data, metrics, self.folder.notebook(step.name),
                                 {"step": step.name, "run_id": self.folder.run_id,
                                  "notebook": self.graph.path})
        return result

    def _attempts(self, step: Step, notebook: Any,
                  parameters: dict[str, Any]) -> tuple[executor.Outcome, int]:
        """Execute, again after a failure while `retries:N` allows; each try starts clean."""
        data, metrics = self.folder.data(step.name), self.folder.metrics(step.name)
        attempt = 0
        while True:
            attempt += 1
            shutil.rmtree(data, ignore_errors=True)
            metrics.unlink(missing_ok=True)
            outcome = executor.execute(step.name, notebook, self.folder.notebook(step.name),
                                       parameters, metrics, self.pool, step.options.timeout,
                                       self.folder.log(f"{step.name}.output"),
                                       lambda text: self._tell("running", (step.name, text)))
            if outcome.ok or self.stopping.is_set() or attempt > step.options.retries:
                return outcome, attempt
            self._tell("retrying", (step.name, attempt + 1, step.options.retries + 1,
                                    outcome.error))


def _read_metrics(path: Path) -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}
