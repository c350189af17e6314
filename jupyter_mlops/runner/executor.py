"""Execute one step notebook with papermill in a pool kernel, and judge the outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from jupyter_mlops.errors import KernelStartFailed, StepFailed, cell_ref
from jupyter_mlops.runner import failures
from jupyter_mlops.runner.kernels import KERNEL_NAME, Kernel, KernelPool, kill_process

HEARTBEAT_EVERY = 10.0  # seconds between "running cell N" lines of a step that runs long


@dataclass
class Outcome:
    ok: bool
    duration: float
    error: StepFailed | None = None


def execute(step: str, notebook: nbformat.NotebookNode, output: Path,
            parameters: dict[str, Any], metrics_path: Path, pool: KernelPool,
            timeout: float | None = None, output_log: Path | None = None,
            report: Callable[[str], None] | None = None) -> Outcome:
    """Run `notebook` as step `step`; ok only when its final cell wrote `metrics_path`.
    Outputs beyond the engine's cap go to `output_log`; `report` is told what the step waits
    for and, while it runs long, which cell it is at."""
    # Imported here, in a worker thread, while the first kernel boots (papermill takes ~1 s).
    import papermill

    from jupyter_mlops.runner import engine

    started = time.perf_counter()
    if report is not None and pool.idle_count == 0:
        report("waiting for its kernel to start and import the notebook's modules...")
    try:
        kernel = pool.take()
    except KernelStartFailed as error:  # the step never ran: say why, with the kernel's output
        return Outcome(False, time.perf_counter() - started,
                       StepFailed(step, str(error), traceback=error.log_tail or str(error)))
    started = time.perf_counter()
    timed_out = threading.Event()
    watchdog = _watchdog(kernel, timeout, timed_out)
    heartbeat = Heartbeat(report)
    raised: BaseException | None = None
    try:
        papermill.execute_notebook(
            notebook, str(output), parameters=parameters, engine_name=engine.ENGINE_NAME,
            kernel_name=KERNEL_NAME, km=kernel.km, progress_bar=False, log_output=False,
            output_log=output_log, on_cell=heartbeat.at)
    except Exception as error:  # noqa: BLE001 - judged below, from the notebook and the kernel
        raised = error
    finally:
        heartbeat.stop()
        if watchdog is not None:
            watchdog.cancel()
        exit_code = kernel.exit_code
    # papermill's cell statuses are not trusted: the step's own last act proves it finished.
    ok = raised is None and exit_code is None and not timed_out.is_set() and metrics_path.is_file()
    pool.release(kernel, reusable=ok)
    duration = time.perf_counter() - started
    if ok:
        return Outcome(True, duration)
    return Outcome(False, duration, _diagnose(step, output, kernel, exit_code, raised, timeout,
                                              timed_out.is_set()))


class Heartbeat:
    """While a step runs, every HEARTBEAT_EVERY seconds: which cell it is at, so a long step is
    not silent. Quiet for a step done sooner; no thread without someone to tell."""

    def __init__(self, report: Callable[[str], None] | None) -> None:
        self.report = report
        self.where = "its first cell"
        self._done = threading.Event()
        if report is not None:
            threading.Thread(target=self._beat, name="mlops-heartbeat", daemon=True).start()

    def at(self, cell: Any) -> None:
        """papermill's hook, as each cell starts."""
        self.where = _where(cell)

    def stop(self) -> None:
        self._done.set()

    def _beat(self) -> None:
        assert self.report is not None
        while not self._done.wait(HEARTBEAT_EVERY):
            self.report(f"running {self.where}...")


def _where(cell: Any) -> str:
    """The cell as the user knows it: its number and first line in their notebook, or what a
    generated cell does."""
    mlops = cell.get("metadata", {}).get("mlops", {})
    if mlops.get("cell_index") is not None:
        first = failures.first_line(cell.get("source", "")) or ""
        return cell_ref(mlops["cell_index"], first[:60])
    return _GENERATED.get(mlops.get("role"), "its parameters")


_GENERATED = {"inputs": "the loading of its inputs", "outputs": "the saving of its outputs"}


def _watchdog(kernel: Kernel, timeout: float | None, fired: threading.Event) -> Any:
    if not timeout:
        return None

    def expire() -> None:
        fired.set()
        kill_process(kernel)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


def _diagnose(step: str, output: Path, kernel: Kernel, exit_code: int | None,
              raised: BaseException | None, timeout: float | None,
              timed_out: bool) -> StepFailed:
    notebook = _read(output)
    if timed_out:
        return failures.crashed(step, notebook, f"timed out after {timeout:g} s")
    if exit_code is None and notebook is not None:
        found = failures.from_error_output(step, notebook)
        if found is not None:
            return found
    if exit_code is not None:
        return failures.crashed(step, notebook, failures.describe_exit(exit_code),
                                kernel.log_tail())
    reason = failures.raised_reason(raised, notebook) if raised else "the step did not finish"
    return failures.crashed(step, notebook, reason, kernel.log_tail())


def _read(path: Path) -> nbformat.NotebookNode | None:
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001 - no notebook written: the error says what is known
        return None
