"""Errors of the local runner, each naming the step (and cell or variable) at fault."""

from __future__ import annotations

from jupyter_mlops.errors import MlopsError


class RunnerError(MlopsError):
    """A pipeline run cannot start or go on."""


class SweepError(RunnerError, ValueError):
    """A sweep's notebook, grid or options cannot be used: names the fault."""


class StepFailed(RunnerError):
    """A step's notebook failed: names the step, the notebook cell and the kernel's traceback."""

    def __init__(self, step: str, reason: str, cell_index: int | None = None,
                 source_line: str | None = None, traceback: str = "") -> None:
        self.step = step
        self.reason = reason
        self.cell_index = cell_index
        self.source_line = source_line
        self.traceback = traceback
        where = f" in cell {cell_index}" if cell_index is not None else ""
        line = f" ({source_line!r})" if source_line else ""
        super().__init__(f"step {step!r} failed{where}{line}: {reason}")


class KernelStartFailed(RunnerError):
    """Every kernel tried for a step died at start: names the kernel spec and what each said."""

    def __init__(self, kernel_name: str, deaths: list[str], log_tail: str = "") -> None:
        self.kernel_name = kernel_name
        self.deaths = deaths
        self.log_tail = log_tail
        super().__init__(f"the {kernel_name!r} kernel died at start {len(deaths)} time(s) in a "
                         f"row ({'; '.join(deaths)})")
