"""Applying spooled records to MLflow (in the sender process; the only place mlflow is used).

Every operation is safe to resend: a run is created once per client-side key (the key is a tag,
so it is found again after a crash), identical metric points are deduplicated by MLflow's
store, a param re-logged with the same value is accepted, tags and artifacts overwrite, and a
model is logged only if the run has none under that name yet.
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import MlopsError
from jupyter_mlops.steps.mlflow_vocabulary import (
    PARENT_RUN_TAG,
    RUN_KEY_TAG,
    get_or_create_experiment,
)
from jupyter_mlops.tracking.destination import (
    artifact_root,
    database_reason,
    database_uri,
    masked,
)
from jupyter_mlops.tracking.quarantine import NEVER_CREATED
from jupyter_mlops.tracking.records import (
    Damaged,
    Data,
    File,
    Header,
    Inputs,
    Model,
    Record,
    RunEnd,
    RunStart,
    RunStatus,
)
from jupyter_mlops.tracking.spool import registered_key

log = logging.getLogger("jupyter_mlops.tracking")

MAX_METRICS = 1000  # MLflow's log_batch limits
MAX_PARAMS_TAGS = 100


class PermanentError(Exception):
    """The store refused a record; resending it cannot help.

    `record` is the part refused when the store took the rest (one param of a batch).
    """

    def __init__(self, message: str, record: Data | None = None) -> None:
        super().__init__(message)
        self.record = record


UNREACHABLE, BUSY, REJECTED = "unreachable", "busy", "rejected"
_BUSY_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED",
               "DEADLINE_EXCEEDED"}


def is_permanent(error: BaseException) -> bool:
    """The store answered that this call is wrong (a client error): resending cannot help."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, PermanentError):
        return True
    if not isinstance(error, MlflowException):
        return False
    code = getattr(error, "error_code", "")
    return code in {
        "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST",
        "BAD_REQUEST", "INVALID_STATE", "PERMISSION_DENIED", "UNAUTHENTICATED",
    }


def classify(error: BaseException) -> str:
    """UNREACHABLE: the store did not answer (refused, timed out); BUSY: it answered "later"
    (503, 429, a locked SQLite file); REJECTED: anything else, an answer about the record
    itself (a client error, a model MLflow cannot save), which resending cannot change."""
    if is_permanent(error):
        return REJECTED
    chain = _chain(error)
    if any(_unreachable(e) for e in chain):
        return UNREACHABLE
    if any(getattr(e, "error_code", "") in _BUSY_CODES or "database is locked" in str(e)
           or "too many 429 error" in str(e) or "too many 503 error" in str(e)
           or _disk_full(e) for e in chain):
        return BUSY
    message = str(error)
    # mlflow's REST client wraps what requests raised in a plain MlflowException.
    if message.startswith("API request to") and (
            "failed with exception" in message or "failed with timeout" in message) \
            and "error responses" not in message:
        return UNREACHABLE
    return REJECTED


def _disk_full(error: BaseException) -> bool:
    """A full disk under the store or the spool: it says nothing about the record, and room
    may come back, so it counts as busy (retried), not as a rejection."""
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) \
        or "database or disk is full" in str(error)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _unreachable(error: BaseException) -> bool:
    import requests

    if isinstance(error, requests.exceptions.HTTPError):
        return False  # an answer, with an error status
    return isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                              ConnectionError, TimeoutError)) or _database_down(error)


# SQLSTATE classes of a database that is down or refuses the session, not the record:
# connection exception, invalid authorization, no such database, shutdown / starting up.
_DOWN_SQLSTATES = ("08", "28", "3D", "57P")


def _database_down(error: BaseException) -> bool:
    """A database store's driver lost or could not open its connection (MLflow wraps this in
    TEMPORARILY_UNAVAILABLE, which alone would read as "busy")."""
    if getattr(error, "connection_invalidated", False):  # SQLAlchemy saw a disconnect
        return True
    if type(error).__name__ != "OperationalError" or not type(error).__module__.startswith(
            ("psycopg", "pymysql", "MySQLdb")):
        return False
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state is None or str(state).startswith(_DOWN_SQLSTATES)  # None: no session at all


def problem(uri: str, error: BaseException) -> str:
    """Why the store takes no records now, in one line naming it (its password masked): a
    database that cannot be opened, a server whose database is down, a server that does not
    answer."""
    if isinstance(error, MlopsError):
        return str(error)  # destination.check_database's own words
    if database_uri(uri):
        why = database_reason(_chain(error)[-1])
        return f"the MLflow store {masked(uri)} cannot be opened: {why}"
    if classify(error) == UNREACHABLE:
        return f"the store {masked(uri)} does not answer"
    status = re.search(r"too many (\d{3}) error responses", str(error))
    why = f"HTTP {status[1]}, its database may be down" if status else database_reason(error)
    return f"the store {masked(uri)} answers, but cannot store now ({why})"


def reason(error: BaseException) -> str:
    """The store's answer in a line: the error's code and message, without a traceback."""
    if isinstance(error, PermanentError):
        return str(error)
    return f"{type(error).__name__}: {_reason(error)}"


def _reason(error: BaseException) -> str:
    code = getattr(error, "error_code", None)
    text = getattr(error, "message", None) or str(error)
    return f"{code}: {text}" if code and code != "INTERNAL_ERROR" else text


class MlflowSink:
    """Sends records through an explicit MlflowClient, mapping run keys to run ids."""

    def __init__(self, client: Any, uri: str, files: Path, ids: dict[str, str],
                 on_new_id: Callable[[str, str], None]) -> None:
        self.client = client
        self.uri = uri
        self.files = files
        self.ids = ids
        self.on_new_id = on_new_id
        self._experiments: dict[str, str] = {}
        self._names: dict[str, str] = {}  # run key -> run name, for messages
        # True while sending records no earlier sender could have seen: a run cannot exist
        # yet, so the search for it is skipped.
        self.fresh = False

    # entry point -----------------------------------------------------------------------
    def apply(self, record: Record) -> None:
        """Apply one record to the store: the one place a record becomes MLflow calls."""
        match record:
            case Header():
                pass  # says which store the spool is for: nothing to send
            case RunStart():
                self._create_run(record)
            case RunStatus():
                self.client.update_run(self.run_id(record.key), status=record.status)
            case RunEnd():
                set_status(self.client, self.run_id(record.key), record.status, record.end)
            case Data():
                self._log_data(record)
            case File():
                self._log_file(record)
            case Model():
                self._log_model(record)
            case Inputs():
                self._log_inputs(record)
            case Damaged():
                raise PermanentError(f"not sent: {record.problem}")

    def answers(self) -> bool:
        """Whether the store answers a trivial request right now."""
        try:
            self.client.search_experiments(max_results=1)
            return True
        except Exception:
            return False

    def run_label(self, key: str | None) -> tuple[str | None, str | None]:
        """(run id, run name) of a run key, as far as known; for messages only."""
        run_id = self.ids.get(key or "")
        name = self._names.get(key or "")
        if run_id and name is None:
            try:
                name = self.client.get_run(run_id).info.run_name
            except Exception:
                name = None
        return run_id, name

    # runs ------------------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        if name in self._experiments:
            return self._experiments[name]
        self._experiments[name] = get_or_create_experiment(self.client, name,
                                                           artifact_root(self.uri))
        return self._experiments[name]

    def run_id(self, key: str, experiment: str | None = None) -> str:
        if key in self.ids:
            return self.ids[key]
        found = self._find(key, experiment)
        if found is None:
            raise PermanentError(f"run {key} {NEVER_CREATED}")
        self._remember(key, found)
        return found

    def _find(self, key: str, experiment: str | None) -> str | None:
        if experiment is not None:
            exp_ids = [self.experiment_id(experiment)]
        else:
            exp_ids = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(exp_ids, f"tags.`{RUN_KEY_TAG}` = '{key}'", max_results=1)
        return runs[0].info.run_id if runs else None

    def _remember(self, key: str, run_id: str) -> None:
        self.ids[key] = run_id
        self.on_new_id(key, run_id)

    def _create_run(self, record: RunStart) -> None:
        key = record.key
        self._names[key] = record.name or key
        if key in self.ids or (not self.fresh and self._find(key, record.exp)):
            self.run_id(key, record.exp)
            return
        tags = {k: str(v) for k, v in record.tags.items()}
        tags[RUN_KEY_TAG] = key  # in the same call: a crash after it still finds the run
        if record.parent:
            tags[PARENT_RUN_TAG] = self.run_id(record.parent)
        run = self.client.create_run(
            self.experiment_id(record.exp), start_time=record.start,
            run_name=record.name, tags=tags)
        self._remember(key, run.info.run_id)

    # data ------------------------------------------------------------------------------
    def _log_data(self, record: Data) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run_id = self.run_id(record.key)
        metrics = [Metric(k, v, ts, step) for k, v, ts, step in record.metrics]
        named: list[Param | RunTag] = [Param(k, v) for k, v in record.params.items()]
        named += [RunTag(k, v) for k, v in record.tags.items()]
        for batch_metrics, batch_named in _batches(metrics, named):
            params = [p for p in batch_named if isinstance(p, Param)]
            tags = [t for t in batch_named if not isinstance(t, Param)]
            try:
                self.client.log_batch(run_id, metrics=batch_metrics, params=params, tags=tags)
            except Exception as error:
                if not self._refused(error):
                    raise
                self._one_by_one(record.key, run_id, batch_metrics, params, tags)

    def _refused(self, error: BaseException) -> bool:
        """The store answered that this call is wrong (not: it went away meanwhile)."""
        return classify(error) == REJECTED and (is_permanent(error) or self.answers())

    def _one_by_one(self, key: str, run_id: str, metrics: list, params: list,
                    tags: list) -> None:
        """A refused batch (e.g. a param re-logged with another value): store the rest, then
        raise PermanentError naming the refused values, which the caller quarantines."""
        refused = Data(key)
        reasons: list[tuple[str, str]] = []
        for kind, items in (("metrics", metrics), ("params", params), ("tags", tags)):
            for item in items:
                try:
                    self.client.log_batch(run_id, **{kind: [item]})
                except Exception as error:
                    if not self._refused(error):
                        raise
                    if kind == "metrics":
                        refused.metrics.append([item.key, item.value, item.timestamp,
                                                item.step])
                    else:
                        getattr(refused, kind)[item.key] = item.value
                    reasons.append((f"{kind[:-1]} {item.key!r}", _reason(error)))
        if reasons:
            message = reasons[0][1] if len(reasons) == 1 else "; ".join(
                f"{label}: {why}" for label, why in reasons)
            raise PermanentError(message, record=refused)

    # artifacts -------------------------------------------------------------------------
    def _log_file(self, record: File) -> None:
        if record.text is not None:  # small text, spooled inline
            artifact = f"{record.dest}/{record.artifact}" if record.dest else record.artifact
            self.client.log_text(self.run_id(record.key), record.text, artifact)
            return
        path = self.files / (record.file or "")
        if not record.file or not path.exists():
            raise PermanentError(f"the spooled file {path} is missing (deleted by hand?)")
        run_id = self.run_id(record.key)
        dest = record.dest or None
        name = record.artifact or path.name
        if name == path.name:
            self.client.log_artifact(run_id, str(path), dest)
            return
        # Spooled under a unique name; MLflow names the artifact after the local file.
        with tempfile.TemporaryDirectory(dir=self.files) as folder:
            named = Path(folder) / name
            os.link(path, named)
            self.client.log_artifact(run_id, str(named), dest)

    def _log_model(self, record: Model) -> None:
        from jupyter_mlops.steps.model_logging import ModelLoggingError, log_model

        run_id = self.run_id(record.key)
        name = record.name
        if self._has_model(run_id, name):
            return
        try:
            model, example = _read_model(self.files / record.file, record.serializer)
        except Exception as error:  # missing file, or a class the sender cannot import
            raise PermanentError(f"model {name!r} could not be read back from the spool: "
                                 f"{type(error).__name__}: {error}") from error
        try:
            info = log_model(self.client, run_id, model, name=name, input_example=example,
                             register=record.register)
        except ModelLoggingError as error:
            raise PermanentError(str(error)) from error
        version = getattr(info, "registered_model_version", None)
        if version is not None:  # the run card names it; written before the record's ack
            self.on_new_id(registered_key(record.key, name), str(version))

    def _log_inputs(self, record: Inputs) -> None:
        from jupyter_mlops.steps.datasets import DatasetDescription, log_datasets

        described = [DatasetDescription.from_json(d) for d in record.datasets]
        log_datasets(self.client, self.run_id(record.key), described)

    def _has_model(self, run_id: str, name: str) -> bool:
        """A READY model of that name on the run: one a failed attempt left FAILED is redone."""
        from mlflow.entities import LoggedModelStatus

        try:
            exp_id = self.client.get_run(run_id).info.experiment_id
            models = self.client.search_logged_models(
                [exp_id], filter_string=f"source_run_id = '{run_id}' AND name = '{name}'")
        except Exception:
            return False
        return any(m.status == LoggedModelStatus.READY for m in models)


def _read_model(path: Path, serializer: str | None) -> tuple[Any, Any]:
    """(model, input example) from a spooled model record's file: a pickled pair, or a
    pipeline step's value file written by steps/serializers.py (no example)."""
    if serializer:
        from jupyter_mlops.steps.serializers import load_file

        return load_file(serializer, path), None
    with open(path, "rb") as handle:
        return pickle.load(handle)


def set_status(client: Any, run_id: str, status: str, end_time: int) -> None:
    """set_terminated's store call, without its "View run at" lines (noise in the log)."""
    from mlflow.entities import RunStatus

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if store is None or not hasattr(store, "update_run_info"):
        client.set_terminated(run_id, status, end_time)
        return
    store.update_run_info(run_id, run_status=RunStatus.from_string(status), end_time=end_time,
                          run_name=None)


def _batches(metrics: list, named: list) -> list[tuple[list, list]]:
    """Split into log_batch calls of at most 1000 metrics and 100 params+tags."""
    out: list[tuple[list, list]] = []
    m, n = 0, 0
    while m < len(metrics) or n < len(named) or not out:
        out.append((metrics[m : m + MAX_METRICS], named[n : n + MAX_PARAMS_TAGS]))
        m += MAX_METRICS
        n += MAX_PARAMS_TAGS
    return out
