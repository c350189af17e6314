"""Why a step failed, read from the executed step notebook and the kernel, for a person to act on.

papermill marks every cell "completed" even after the kernel died, so the runner judges success
by the step's own last act (its metrics file exists) and finds the failing cell from the cells'
start times and error outputs, never from papermill's status.
"""

from __future__ import annotations

import re
from typing import Any

from jupyter_mlops.errors import StepFailed

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ARROW = re.compile(r"^-{2,}>\s*(\d+)\s?(.*)$")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def from_error_output(step: str, notebook: Any) -> StepFailed | None:
    """The first error output of an executed step notebook as a StepFailed, if any."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                traceback = strip_ansi("\n".join(output.get("traceback", [])))
                reason = f"{output.get('ename')}: {output.get('evalue')}"
                return StepFailed(step, reason, _source_index(cell), _source_line(traceback, cell),
                                  traceback)
    return None


def crashed(step: str, notebook: Any, reason: str, log_tail: str = "") -> StepFailed:
    """A failure with no error output (the kernel died, a timeout): blame the last cell started."""
    cell = last_started_cell(notebook)
    index = _source_index(cell) if cell is not None else None
    line = first_line(cell["source"]) if cell is not None else None
    return StepFailed(step, reason, index, line, log_tail.strip() or reason)


def raised_reason(raised: BaseException, notebook: Any) -> str:
    """What papermill's exception says went wrong; when it says nothing (IPython reports an
    unknown magic's UsageError on stderr only, the reply's error is empty), the kernel's own
    text from the failing cell's stderr."""
    ename, evalue = getattr(raised, "ename", None), str(getattr(raised, "evalue", "") or "")
    if ename and evalue.strip():
        return f"{ename}: {evalue.strip()}"
    stderr = _stderr_text(last_started_cell(notebook))
    if stderr:
        return stderr
    if ename:
        return f"{ename} (the kernel gave no message)"
    return f"{type(raised).__name__}: {str(raised).strip() or 'no message'}"


def _stderr_text(cell: Any | None) -> str:
    """The last lines the cell wrote to stderr, without colour codes."""
    if cell is None:
        return ""
    text = "".join(strip_ansi(_joined(output.get("text", ""))) for output in cell.get("outputs", [])
                   if output.get("output_type") == "stream" and output.get("name") == "stderr")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-3:])[:500]


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


def last_started_cell(notebook: Any) -> Any | None:
    started = None
    for cell in notebook.cells if notebook is not None else []:
        if cell.get("cell_type") == "code" and cell.metadata.get("papermill", {}).get("start_time"):
            started = cell
    return started


def describe_exit(code: int | None) -> str:
    if code is None:
        return "the kernel died"
    if code < 0:
        names = {-9: "SIGKILL, out of memory?", -11: "SIGSEGV, a segmentation fault",
                 -6: "SIGABRT", -15: "SIGTERM"}
        return f"the kernel died (signal {-code}: {names.get(code, 'killed')})"
    return f"the kernel exited with code {code}"


def _source_index(cell: Any) -> int | None:
    """The index of this cell in the source notebook; None for generated cells."""
    return (cell.metadata.get("mlops") or {}).get("cell_index")


def _source_line(traceback: str, cell: Any) -> str | None:
    # IPython marks the failing line of the cell's frame with "----> N"; the first one is the cell.
    for line in traceback.splitlines():
        match = _ARROW.match(line.strip())
        if match:
            return match.group(2).strip() or None
    return first_line(cell.get("source", ""))


def first_line(source: str) -> str | None:
    """A cell's first non-blank line, stripped (at most 120 characters), as messages name it."""
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return None
