"""What a tracked block produces besides values: stdout, figures, duration, status and error."""

from __future__ import annotations

import base64
import io
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_mlops import settings
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking.client import RunRef, Tracker


class StdoutTee:
    """Writes through to the real stdout and keeps the first `cap` characters."""

    def __init__(self, target: Any, cap: int) -> None:
        self._target = target
        self._cap = cap
        self._parts: list[str] = []
        self._kept = 0
        self.total = 0

    def write(self, text: str) -> int:
        self.total += len(text)
        if self._kept < self._cap:
            part = text[: self._cap - self._kept]
            self._parts.append(part)
            self._kept += len(part)
        return self._target.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def text(self) -> str:
        kept = "".join(self._parts)
        if self.total > self._kept:
            kept += (f"\n[jupyter-mlops: stdout cut at {self._kept} of {self.total} characters;"
                     f" raise {settings.STDOUT_CAP.name} to keep more]\n")
        return kept


class FigureCatcher:
    """PNG images the block displays, plus matplotlib figures it leaves open to be shown."""

    def __init__(self, shell: Any = None) -> None:
        self._publisher = getattr(shell, "display_pub", None)
        self._before: set[int] = set()
        self.images: list[bytes] = []

    def __enter__(self) -> FigureCatcher:
        pyplot = sys.modules.get("matplotlib.pyplot")
        self._before = set(pyplot.get_fignums()) if pyplot else set()
        if self._publisher is not None:
            original = self._publisher.publish

            def publish(data: dict, *args: Any, **kwargs: Any) -> Any:
                png = data.get("image/png") if isinstance(data, dict) else None
                if png:
                    self.images.append(base64.b64decode(png) if isinstance(png, str) else png)
                return original(data, *args, **kwargs)

            self._publisher.publish = publish  # instance attribute shadows the method
        return self

    def __exit__(self, *exc: object) -> None:
        if self._publisher is not None:
            self._publisher.__dict__.pop("publish", None)
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return
        for num in pyplot.get_fignums():
            if num not in self._before:
                buffer = io.BytesIO()
                pyplot.figure(num).savefig(buffer, format="png", bbox_inches="tight")
                self.images.append(buffer.getvalue())


def status_of(error: BaseException | None) -> str:
    if error is None:
        return "FINISHED"
    if isinstance(error, KeyboardInterrupt):
        return "KILLED"
    if isinstance(error, SystemExit) and error.code in (None, 0):
        return "FINISHED"
    return "FAILED"


@contextmanager
def captured(tracker: Tracker, run: RunRef, shell: Any = None) -> Iterator[None]:
    """Run a block inside `run`: stdout, figures, status and error are logged; errors re-raise."""
    __tracebackhide__ = True
    tee = StdoutTee(sys.stdout, settings.STDOUT_CAP.get())
    catcher = FigureCatcher(shell)
    error: BaseException | None = None
    sys.stdout = tee
    try:
        with catcher:
            yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        if sys.stdout is tee:
            sys.stdout = tee._target
        _log_outputs(tracker, run, tee, catcher, error)


def _log_outputs(tracker: Tracker, run: RunRef, tee: StdoutTee, catcher: FigureCatcher,
                 error: BaseException | None) -> None:
    if tee.total:
        tracker.log_text(run, vocab.STDOUT_ARTIFACT, tee.text())
    for i, png in enumerate(catcher.images):
        tracker.log_bytes(run, vocab.figure_artifact(i), png)
    status = status_of(error)
    if error is not None and status != "FINISHED":
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        tracker.set_tags(run, {vocab.ERROR_TAG: f"{type(error).__name__}: {error}"[:1000]})
        tracker.log_text(run, vocab.ERROR_ARTIFACT, trace)
    tracker.end_run(run, status)
