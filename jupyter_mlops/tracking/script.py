"""`jupyter_mlops.track(...)`: the same capture as `%%mlops track`, for scripts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking import session as session_mod
from jupyter_mlops.tracking.capture import captured
from jupyter_mlops.tracking.client import RunRef, Tracker


class RunHandle:
    """What `with track(...) as run:` gives: logging bound to that run."""

    def __init__(self, tracker: Tracker, run: RunRef) -> None:
        self._tracker = tracker
        self.ref = run

    @property
    def run_id(self) -> str | None:
        """The MLflow run id (waits up to 5 s for the sender to create the run)."""
        return self._tracker.run_id(self.ref, timeout=5)

    def log_params(self, params: dict[str, Any]) -> None:
        self._tracker.log_params(self.ref, params)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._tracker.log_metrics(self.ref, metrics, step)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._tracker.set_tags(self.ref, tags)

    def log_text(self, artifact_path: str, text: str) -> None:
        self._tracker.log_text(self.ref, artifact_path, text)

    def log_model(self, model: Any, name: str = vocab.MODEL_ARTIFACT, input_example: Any = None,
                  register: str | None = None) -> None:
        self._tracker.log_model(self.ref, model, name, input_example, register)

    def flush(self, timeout: float = 30.0) -> bool:
        return self._tracker.flush(timeout)


@contextmanager
def track(name: str | None = None, *, experiment: str | None = None,
          params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None
          ) -> Iterator[RunHandle]:
    """Log the block as an MLflow run: params, stdout, figures, duration, status, error.

    Inside a notebook session the run is a child of the session run. Exceptions re-raise;
    a KeyboardInterrupt ends the run KILLED. Values are flushed at interpreter exit.
    """
    session = session_mod.current()
    tracker = session.tracker
    parent = session.run
    # In a notebook's kernel the run is the notebook's, with or without a session run.
    notebook = session.notebook if parent else session_mod.notebook_info.detect_path()
    run = tracker.start_run(name or "run", experiment or session.experiment
                            or session_mod.default_experiment(None), parent=parent,
                            tags={vocab.KIND_TAG: vocab.KIND_SCRIPT, **(tags or {}),
                                  **session_mod.notebook_info.notebook_tags(notebook)},
                            notebook=None if parent else str(notebook or ""))
    if params:
        tracker.log_params(run, params)
    session.stack.append(run)
    try:
        with captured(tracker, run):
            yield RunHandle(tracker, run)
    finally:
        session.stack.remove(run)
