"""The fluent layer: the notebook's session run and the run that logging calls go to.

Like mlflow.tracking.fluent, it keeps implicit state (one session per process, a stack of
active runs) and delegates every write to the explicit Tracker.
"""

from __future__ import annotations

import atexit
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import NoActiveRunError, counted
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking import notebook_info
from jupyter_mlops.tracking.client import RunRef, Tracker
from jupyter_mlops.tracking.destination import tracking_uri


@dataclass(frozen=True)
class LoggedModel:
    """A tracked cell's `--model`: the object (a weak reference where it can be), the
    `--input-example` option, the digest of the two as logged, and the cell's run."""

    value: Callable[[], Any]
    example: str | None
    digest: str
    run: RunRef


class Session:
    """The session run (parent of cell runs) and the stack of runs in progress."""

    def __init__(self) -> None:
        self._tracker: Tracker | None = None
        self.run: RunRef | None = None
        self.stack: list[RunRef] = []
        self.notebook: Path | None = None
        self.experiment: str | None = None
        self.logged_models: dict[str, LoggedModel] = {}  # by the variable that held it
        self.cell_runs: list[RunRef] = []  # the session's tracked cells, for `%mlops end`
        self.not_logged: list[str] = []  # values options asked for and cells did not define
        # metrics `%mlops log` put into a run (by run key), for the card of the cell it ran in
        self.logged_metrics: dict[str, dict[str, Any]] = {}

    @property
    def tracker(self) -> Tracker:
        """The store is chosen on first use and at each `%mlops start`, not per call: a cell
        that changes directory must not move the open runs' children to another store."""
        if self._tracker is None:
            self._tracker = Tracker(tracking_uri())
        return self._tracker

    def _retarget(self) -> None:
        uri = tracking_uri()
        if self._tracker is not None and self._tracker.uri != uri:
            self._tracker.close(timeout=10)
            self._tracker = None
            self.logged_models.clear()  # their runs are the old store's

    def start(self, experiment: str | None = None, run_name: str | None = None,
              user_ns: dict[str, Any] | None = None) -> RunRef:
        """Open the session run; a session already open is finished first."""
        if self.run is not None:
            self.end("FINISHED")
        self._retarget()
        self.cell_runs, self.not_logged = [], []
        self.notebook = notebook_info.detect_path(user_ns)
        self.experiment = experiment or default_experiment(self.notebook)
        tracker = self.tracker
        tracker.recover()  # settles runs of kernels that died, before this one starts
        name = run_name or (self.notebook.stem if self.notebook else "session")
        # The notebook tag now, not only with the source tags the writer adds later: the
        # panel's index looks for new runs once, by start time.
        tags = {vocab.KIND_TAG: vocab.KIND_SESSION, **notebook_info.notebook_tags(self.notebook)}
        self.run = tracker.start_run(name, self.experiment, tags=tags,
                                     notebook=str(self.notebook or ""))
        params = parameter_values(self.notebook, user_ns or {})
        if params:
            tracker.log_params(self.run, params)
        return self.run

    def ensure(self, user_ns: dict[str, Any] | None = None) -> RunRef:
        return self.run if self.run is not None else self.start(user_ns=user_ns)

    def active(self) -> RunRef:
        if self.stack:
            return self.stack[-1]
        if self.run is None:
            raise NoActiveRunError()
        return self.run

    def end(self, status: str = "FINISHED") -> RunRef | None:
        run, self.run = self.run, None
        while self.stack:
            self.tracker.end_run(self.stack.pop(), status)
        if run is not None:
            self.tracker.end_run(run, status)
        return run

    def outcomes(self) -> tuple[str, str, bool]:
        """`%mlops end`'s account of the session's cells, apart from the store's: how their
        runs ended ("3 cell runs: 2 finished, 1 failed (boom)") and the values asked for and
        not logged; and whether all went well."""
        ended: dict[str, list[str]] = {}
        for run in self.cell_runs:
            ended.setdefault(run.status.lower(), []).append(run.name)
        counts = [f"{len(names)} {status}" + ("" if status == "finished" else
                                              f" ({', '.join(names)})")
                  for status, names in sorted(ended.items(), key=lambda i: i[0] != "finished")]
        total = len(self.cell_runs)
        runs = f"{counted(total, 'cell run')}: {', '.join(counts)}" if total else ""
        missing = len(self.not_logged)
        values = (f"{missing} value{'s were' if missing > 1 else ' was'} asked for and not "
                  f"logged ({', '.join(self.not_logged)})") if missing else ""
        return runs, values, not missing and set(ended) <= {"finished"}

    def close(self) -> None:
        """At interpreter exit: settle open runs and flush (client.py's exit hook then stops the
        sender)."""
        if self.run is not None or self.stack:
            self.end("FINISHED")
        if self._tracker is not None:
            self._tracker.flush(timeout=30)


def default_experiment(notebook: Path | None) -> str:
    if notebook is not None:
        return notebook_info.experiment_name(notebook)
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    ignored = ("", "ipykernel_launcher", "-c", "__main__", "pytest")
    return script if script not in ignored else "notebooks"


def parameter_values(notebook: Path | None, user_ns: dict[str, Any]) -> dict[str, Any]:
    """Current values of the names the notebook's `parameters` cell binds: data only (a cell
    papermill accepts may also import a module or define a function)."""
    names = notebook_info.parameter_names(notebook)
    return {n: user_ns[n] for n in names
            if n in user_ns and not callable(user_ns[n])
            and not isinstance(user_ns[n], types.ModuleType)}


_SESSION: Session | None = None


def current() -> Session:
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
        # Registered after client.py's exit hook, so it runs first (LIFO): runs end, then flush.
        atexit.register(_SESSION.close)
    return _SESSION
