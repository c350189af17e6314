"""The one exception root of jupyter-mlops and its subclasses, each naming where the fault is.

Errors of the notebook, tracking, runner and KFP layers live here; a few others are declared
beside the code that raises them (the registry's, the monitor's, the server's HTTP answers).
Any layer may import this module: it imports nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def cell_number(index: int) -> int:
    """A cell's number as a person finds it: JupyterLab's status bar ("Cell 4 of 10") and
    Notebook 7 count every cell, markdown included, from 1. `index` is the 0-based position
    our metadata and step notebooks keep; only text for people goes through here."""
    return index + 1


def cell_ref(index: int, first_line: str | None = None) -> str:
    """"cell 4 ('import pandas as pd')": a cell named in a message, with its first line."""
    line = f" ({first_line!r})" if first_line else ""
    return f"cell {cell_number(index)}{line}"


def cells_ref(indices: list[int]) -> str:
    """"cells 4,5,6" (or "cell 4"): the cells of a step named in text."""
    numbers = ",".join(str(cell_number(i)) for i in indices)
    return f"cells {numbers}" if len(indices) > 1 else f"cell {numbers}"


def counted(count: int, noun: str) -> str:
    """"1 step", "3 steps", "0 versions": a count with its noun, plural unless the count is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def close_match(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The one of `choices` that `name` looks like a misspelling of, or None (difflib)."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str], quote: bool = True,
                 cutoff: float = 0.6) -> str:
    """"did you mean 'n_estimators'?" for a misspelt name, else "": the one phrasing of a
    suggestion in every message (an unknown parameter, variable, option, model)."""
    found = close_match(name, choices, cutoff)
    if found is None:
        return ""
    return f"did you mean {found!r}?" if quote else f"did you mean {found}?"


class MlopsError(Exception):
    """Root of every error jupyter-mlops raises on purpose; its message is meant for a person."""


class NotebookError(MlopsError, ValueError):
    """A notebook cannot be used: names the file and the fault."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NotebookFormatError(NotebookError):
    """The file is not a valid notebook (not JSON, unknown version, schema violation)."""


class CellError(NotebookError):
    """A fault in one cell: names its index and first line."""

    def __init__(self, path: str, cell_index: int, first_line: str, reason: str) -> None:
        self.cell_index = cell_index
        self.first_line = first_line
        super().__init__(path, f"{cell_ref(cell_index, first_line)}: {reason}")
        self.reason = reason


class GraphError(NotebookError):
    """The steps do not form a valid pipeline (cycle, unknown upstream step, name collision)."""

    def __init__(self, path: str, reason: str, steps: tuple[str, ...] = ()) -> None:
        self.steps = steps
        super().__init__(path, reason)


class ParameterError(MlopsError, ValueError):
    """A parameter name or value is not acceptable: names the parameter and, where known,
    the notebook (or pipeline file) it belongs to."""

    def __init__(self, name: str, reason: str, notebook: str | None = None) -> None:
        self.name = name
        self.reason = reason
        self.notebook = notebook
        where = f"{notebook}: " if notebook else ""
        super().__init__(f"{where}parameter {name!r}: {reason}")


class ParametersFileError(ParameterError):
    """A parameters file (`-f`) that cannot be read, or a value in it the notebook refuses:
    named as the file (and the notebook it was given for), not as a parameter."""

    def __init__(self, path: str, reason: str, notebook: str | None = None) -> None:
        self.name, self.reason, self.notebook, self.path = path, reason, notebook, path
        of = f" of notebook {notebook!r}" if notebook else ""
        MlopsError.__init__(self, f"parameters file {path!r}{of}: {reason}")


class TrackingError(MlopsError):
    """A tracking operation cannot be done as asked."""


class NoActiveRunError(TrackingError):
    """A logging call came with no run to log into."""

    def __init__(self) -> None:
        super().__init__("no active run: run `%mlops start` or use `%%mlops track` first")


class StoreError(TrackingError):
    """A SQLite store that cannot be opened as it is: not SQLite, half made, or not creatable."""


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
        line = f" ({source_line!r})" if source_line else ""
        where = f" in {cell_ref(cell_index, source_line)}" if cell_index is not None else line
        super().__init__(f"step {step!r} failed{where}: {reason}")

    @property
    def details(self) -> str:
        """The message, then the kernel's traceback where it says more (a timeout has none)."""
        said = self.traceback.strip()
        return f"{self}\n{said}" if said and said != self.reason else str(self)


class KernelStartFailed(RunnerError):
    """Every kernel tried for a step died at start: names the kernel spec and what each said."""

    def __init__(self, kernel_name: str, deaths: list[str], log_tail: str = "") -> None:
        self.kernel_name = kernel_name
        self.deaths = deaths
        self.log_tail = log_tail
        super().__init__(f"the {kernel_name!r} kernel died at start {counted(len(deaths), 'time')} "
                         f"in a row ({'; '.join(deaths)})")


class KfpCompileError(MlopsError, ValueError):
    """The notebook cannot become a KFP pipeline: names the notebook and, where known, the step."""

    def __init__(self, path: str, reason: str, step: str | None = None) -> None:
        self.path = str(path)
        self.step = step
        self.reason = reason
        where = f"{self.path}: step {step!r}" if step else self.path
        super().__init__(f"{where}: {reason}")


class KfpSubmitError(MlopsError, RuntimeError):
    """The KFP API did not take the pipeline: unreachable, refused or rejected, said plainly."""


def reason_of(error: BaseException) -> str:
    """What went wrong, in words, also for errors Python raises without a message: the parser's
    MemoryError on code nested too deeply says nothing at all."""
    text = str(error).strip()
    if isinstance(error, MemoryError):
        return f"out of memory (MemoryError{': ' + text if text else ''})"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is not None and problem:  # PyYAML's message spans lines with a snippet and a caret
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return text or type(error).__name__
