"""Progress of a pipeline run: one line per step event; a tqdm bar as well on a terminal."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from jupyter_mlops.runner.results import CACHED, FAILED, OK, StepResult

_WORDS = {OK: "done", CACHED: "cached", FAILED: "FAILED"}


class Progress:
    """Prints `[  1.2s] step  status` lines; `quiet` prints nothing."""

    def __init__(self, total: int, stream: IO[str] | None = None, quiet: bool = False,
                 bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.start = time.perf_counter()
        self._bar: Any = None
        if not quiet and (bar if bar is not None else self.stream.isatty()):
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="step", file=self.stream, leave=False)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        stamp = f"[{time.perf_counter() - self.start:6.1f}s] "
        if self._bar is not None:
            self._bar.write(stamp + text, file=self.stream)
        else:
            print(stamp + text, file=self.stream, flush=True)

    def started(self, step: str) -> None:
        self.line(f"{step:<24} started")
        if self._bar is not None:
            self._bar.set_postfix_str(step)

    def retrying(self, event: tuple[str, int, int, Any]) -> None:
        """Before each further attempt of a step that `retries:N` lets fail: which one, why."""
        step, attempt, attempts, error = event
        self.line(f"{step:<24} retrying (attempt {attempt} of {attempts}) after: {error}")

    def running(self, event: tuple[str, str]) -> None:
        """What a started step waits for or which cell it is at, while it runs long."""
        step, text = event
        self.line(f"{step:<24} {text}")

    def finished(self, result: StepResult) -> None:
        word = _WORDS.get(result.status, result.status)
        detail = f" in {result.duration:.1f}s" if result.status in (OK, FAILED) else ""
        if result.reason:
            detail += f" ({result.reason})"
        if result.error is not None:
            detail += f": {result.error}"
        self.line(f"{result.name:<24} {word}{detail}")
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
