"""The explicit tracking client: turns logging calls into records for the background writer.

Stateless about "the active run": every call names its run (`RunRef`). The fluent layer
(session.py) and the magics sit on top. Nothing here imports mlflow or waits on a store; limits
are applied here, in the caller's thread, so warnings land in the cell that caused them.
"""

from __future__ import annotations

import atexit
import functools
import getpass
import hashlib
import os
import pickle
import sys
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking import limits
from jupyter_mlops.tracking.destination import spool_root, tracking_uri
from jupyter_mlops.tracking.process import identity_tags
from jupyter_mlops.tracking.records import (
    Data,
    File,
    Inputs,
    Model,
    RunEnd,
    RunStart,
    RunStatus,
)
from jupyter_mlops.tracking.writer import Writer

STATUSES = ("FINISHED", "FAILED", "KILLED")
LIVE_STATUSES = ("SCHEDULED", "RUNNING")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class RunRef:
    """A run as the client knows it: a local key until the writer learns its MLflow id."""

    key: str
    name: str
    experiment: str
    parent: str | None = None
    start: int = field(default_factory=_now_ms)
    steps: dict[str, int] = field(default_factory=dict)
    status: str = "RUNNING"
    ended_at: int = 0  # spool offset of its end record: once acked, its fate is known
    end: int = 0  # its end time (ms) as stored: with `start`, the duration MLflow shows


class Tracker:
    """Logging into one store; one per process and tracking URI."""

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or tracking_uri()
        self.session_id = f"{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._writer: Writer | None = None
        self.reported = 0  # rejections `%mlops end` has told the user about

    @property
    def sending(self) -> bool:
        """This process logged through it and has not closed it: its own spool and sender."""
        return self._writer is not None and not self._writer.closed

    @property
    def writer(self) -> Writer:
        if self._writer is None:
            self._writer = Writer(self.uri, spool_root(self.uri), self.session_id)
            _OPEN.add(self)
        return self._writer

    # runs ------------------------------------------------------------------------------
    def start_run(self, name: str, experiment: str, parent: RunRef | None = None,
                  tags: dict[str, Any] | None = None, notebook: str | None = None) -> RunRef:
        """Open a run. `notebook` (even '') asks the writer to add source and git tags."""
        run = RunRef(key=uuid.uuid4().hex, name=name, experiment=experiment,
                     parent=parent.key if parent else None)
        cleaned = limits.clean_strings(tags or {}, "tag", limits.MAX_TAG_VALUE)
        self.writer.put(RunStart(run.key, experiment, run.start, name, run.parent,
                                 tags={**identity_tags(), vocab.USER_TAG: _user(),
                                       **cleaned.values}), enrich=notebook)
        self._overflow(run, cleaned)
        return run

    def mark(self, run: RunRef, status: str) -> None:
        """Show a run that has not ended as SCHEDULED (queued) or RUNNING in MLflow."""
        if status not in LIVE_STATUSES:
            raise ValueError(f"a live run is {' or '.join(LIVE_STATUSES)}, not {status!r}")
        self.writer.put(RunStatus(run.key, status))

    def end_run(self, run: RunRef, status: str = "FINISHED") -> None:
        if run.status != "RUNNING":
            return
        run.status = status if status in STATUSES else "FAILED"
        run.end = _now_ms()
        run.ended_at = self.writer.put(RunEnd(run.key, run.status, run.end))

    # values ----------------------------------------------------------------------------
    def log_params(self, run: RunRef, params: dict[str, Any]) -> None:
        cleaned = limits.clean_strings(params, "param", limits.MAX_PARAM_VALUE)
        if cleaned.values:
            self.writer.put(Data(run.key, params=cleaned.values))
        self._overflow(run, cleaned)

    def set_tags(self, run: RunRef, tags: dict[str, Any]) -> None:
        cleaned = limits.clean_strings(tags, "tag", limits.MAX_TAG_VALUE)
        if cleaned.values:
            self.writer.put(Data(run.key, tags=cleaned.values))
        self._overflow(run, cleaned)

    def log_metrics(self, run: RunRef, metrics: dict[str, Any], step: int | None = None) -> None:
        """Each key's step counts up from 0 per run unless `step` is given."""
        values = limits.clean_metrics(metrics)
        if not values:
            return
        ts = _now_ms()
        points = []
        for key, value in values.items():
            point_step = run.steps.get(key, 0) if step is None else step
            run.steps[key] = point_step + 1
            points.append([key, value, ts, point_step])
        self.writer.put(Data(run.key, metrics=points))

    def log_datasets(self, run: RunRef, described: list[Any]) -> None:
        """steps/datasets.py descriptions of values as the run's MLflow dataset inputs."""
        if described:
            self.writer.put(Inputs(run.key, [d.to_json() for d in described]))

    # artifacts -------------------------------------------------------------------------
    def log_text(self, run: RunRef, artifact_path: str, text: str) -> None:
        self._file(run, artifact_path, text)

    def log_bytes(self, run: RunRef, artifact_path: str, data: bytes) -> None:
        self._file(run, artifact_path, data)

    def log_model(self, run: RunRef, model: Any, name: str = vocab.MODEL_ARTIFACT,
                  input_example: Any = None, register: str | None = None) -> str:
        """Any object as an MLflow model (steps/model_logging.py picks the flavor), registered
        as `register` if given; the signature comes from the example. Returns the pickle's
        `model_digest`: the same object, unchanged since, has the same one.

        Pickled now, in the caller's thread: later changes to the object must not leak in.
        """
        data = _dumps((model, input_example))
        self.writer.put(Model(run.key, name, register, artifact="model.pkl"), data)
        return hashlib.sha256(data).hexdigest()

    def log_model_file(self, run: RunRef, path: Path, serializer: str,
                       name: str = vocab.MODEL_ARTIFACT, register: str | None = None) -> None:
        """A value file steps/serializers.py wrote (a step's model) as an MLflow model.

        The sender loads it: this process never imports the model's library, which can take
        seconds on a loaded machine.
        """
        self.writer.put(Model(run.key, name, register, artifact=path.name,
                              serializer=serializer), path.read_bytes())

    def _file(self, run: RunRef, artifact_path: str, payload: str | bytes) -> None:
        dest, _, filename = artifact_path.rpartition("/")
        self.writer.put(File(run.key, dest, artifact=filename), payload)

    def _overflow(self, run: RunRef, cleaned: limits.Cleaned) -> None:
        for path, text in cleaned.overflow.items():
            self.log_text(run, path, text)

    # state -----------------------------------------------------------------------------
    def run_id(self, run: RunRef, timeout: float = 0.0) -> str | None:
        """The MLflow run id once the writer created the run (waits up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            run_id = self.writer.run_id(run.key)
            if run_id or time.monotonic() >= deadline:
                return run_id
            time.sleep(0.01)

    def flush(self, timeout: float = 30.0) -> bool:
        """True once the store answered for every record so far: stored, or rejected and
        quarantined (see `rejections`)."""
        return self.writer.flush(timeout)

    def rejections(self, run: RunRef | None = None) -> list[dict[str, Any]]:
        """Quarantine entries (quarantine.py) of this tracker's records, or of one run's."""
        entries = self.writer.rejections()
        return entries if run is None else [e for e in entries if e.get("key") == run.key]

    def recover(self) -> None:
        self.writer.recover()

    def close(self, timeout: float = 30.0) -> None:
        if self._writer is not None:
            self._writer.close(timeout)
            self._tell_rejections()

    def _tell_rejections(self) -> None:
        """Rejections no `%mlops end` reported (a script's, or after the last end): said on
        stderr as the process ends, not left only in the quarantine file."""
        from jupyter_mlops.tracking.delivery import unreported

        message = unreported(self)
        if message:
            sys.stderr.write(f"jupyter-mlops: {message}\n")

    def detach(self) -> None:
        """Leave the rest to the sender process and return at once (see Writer.detach)."""
        if self._writer is not None:
            self._writer.detach()


_OPEN: weakref.WeakSet[Tracker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Flush every writer at interpreter exit (registered at import, so it runs after the
    fluent layer's own exit hook has settled the open runs)."""
    for tracker in list(_OPEN):
        tracker.close()


@functools.cache
def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def model_digest(model: Any, input_example: Any = None) -> str:
    """What `Tracker.log_model` returns for this model and example as they are now."""
    return hashlib.sha256(_dumps((model, input_example))).hexdigest()


def _dumps(value: Any) -> bytes:
    """cloudpickle when present (MLflow ships it): classes the notebook defines are pickled by
    value, so the sender process can load a model built from them."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(value)
    return cloudpickle.dumps(value)
