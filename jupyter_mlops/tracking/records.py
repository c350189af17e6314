"""The spool's records: one typed record per operation the store is asked for.

The tracking client makes them, the writer appends them to the spool (one JSON line each),
the sink applies them to MLflow and the quarantine keeps the ones the store rejected: all
through these types. `to_json`/`from_json` are the spool line's shape, unchanged since the
first spool, so a spool (or a quarantine file) an earlier version left is read as it was.
A line of the wrong shape is read as `Damaged`, which is set aside instead of stopping replay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jupyter_mlops.steps import mlflow_vocabulary as vocab

Json = dict[str, Any]
MetricPoint = list[Any]  # [key, value, timestamp ms, step]


class ShapeError(ValueError):
    """A spool line that is not a record of a known operation (its message says why)."""


@dataclass
class Header:
    """A spool's first record: the store it was written for, and by which host."""

    op: ClassVar[str] = "header"
    uri: str
    host: str = ""

    def to_json(self) -> Json:
        return {"op": self.op, "uri": self.uri, "host": self.host}

    @classmethod
    def from_json(cls, obj: Json) -> Header:
        return cls(_text(obj, "uri"), obj.get("host") or "")


@dataclass
class RunStart:
    """Create the run of client-side `key` (found again by its key tag when resent)."""

    op: ClassVar[str] = "run"
    key: str
    exp: str
    start: int
    name: str | None = None
    parent: str | None = None  # the parent run's key
    tags: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> Json:
        return {"op": self.op, "key": self.key, "exp": self.exp, "parent": self.parent,
                "name": self.name, "start": self.start, "tags": self.tags}

    @classmethod
    def from_json(cls, obj: Json) -> RunStart:
        return cls(_text(obj, "key"), _text(obj, "exp"), _int(obj, "start"),
                   _optional_text(obj, "name"), _optional_text(obj, "parent"), _map(obj, "tags"))


@dataclass
class RunEnd:
    """Settle the run's status and end time."""

    op: ClassVar[str] = "end"
    key: str
    status: str
    end: int

    def to_json(self) -> Json:
        return {"op": self.op, "key": self.key, "status": self.status, "end": self.end}

    @classmethod
    def from_json(cls, obj: Json) -> RunEnd:
        return cls(_text(obj, "key"), _text(obj, "status"), _int(obj, "end"))


@dataclass
class RunStatus:
    """Mark a live run SCHEDULED or RUNNING (a sweep's queued runs); `RunEnd` settles it."""

    op: ClassVar[str] = "status"
    key: str
    status: str

    def to_json(self) -> Json:
        return {"op": self.op, "key": self.key, "status": self.status}

    @classmethod
    def from_json(cls, obj: Json) -> RunStatus:
        return cls(_text(obj, "key"), _text(obj, "status"))


@dataclass
class Data:
    """Params, tags and metric points of one run (one log_batch, or several if large)."""

    op: ClassVar[str] = "data"
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    metrics: list[MetricPoint] = field(default_factory=list)

    def to_json(self) -> Json:
        # Only what it holds: most records carry one of the three.
        out: Json = {"op": self.op, "key": self.key}
        for name in ("params", "tags", "metrics"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, obj: Json) -> Data:
        metrics = obj.get("metrics") or []
        if not isinstance(metrics, list) or any(
                not (isinstance(m, list) and len(m) == 4) for m in metrics):
            raise ShapeError("data record with a metric that is not [key, value, time, step]")
        return cls(_text(obj, "key"), _map(obj, "params"), _map(obj, "tags"), metrics)


@dataclass
class File:
    """An artifact: small text inline (`text`), else a payload file in the spool's folder."""

    op: ClassVar[str] = "file"
    key: str
    dest: str = ""  # the artifact's folder in the run
    artifact: str | None = None  # its name there
    file: str | None = None  # the payload's name in the spool's folder
    text: str | None = None

    def to_json(self) -> Json:
        out: Json = {"op": self.op, "key": self.key, "dest": self.dest, "artifact": self.artifact}
        out.update({"text": self.text} if self.text is not None else {"file": self.file})
        return out

    @classmethod
    def from_json(cls, obj: Json) -> File:
        text, file = obj.get("text"), obj.get("file")
        if not (isinstance(text, str) or isinstance(file, str)):
            raise ShapeError("file record with neither text nor a file")
        return cls(_text(obj, "key"), obj.get("dest") or "", _optional_text(obj, "artifact"),
                   file if isinstance(file, str) else None, text if isinstance(text, str) else None)


@dataclass
class Model:
    """A model (a pickled pair, or a step's value file) to log, and maybe register."""

    op: ClassVar[str] = "model"
    key: str
    name: str = vocab.MODEL_ARTIFACT
    register: str | None = None
    artifact: str | None = None  # the payload's original file name
    file: str = ""  # the payload's name in the spool's folder (set when spooled)
    serializer: str | None = None  # set for a step's value file (steps/serializers.py)

    def to_json(self) -> Json:
        out: Json = {"op": self.op, "key": self.key, "name": self.name,
                     "register": self.register, "artifact": self.artifact, "file": self.file}
        if self.serializer:
            out["serializer"] = self.serializer
        return out

    @classmethod
    def from_json(cls, obj: Json) -> Model:
        return cls(_text(obj, "key"), obj.get("name") or vocab.MODEL_ARTIFACT,
                   _optional_text(obj, "register"), _optional_text(obj, "artifact"),
                   _text(obj, "file"), _optional_text(obj, "serializer"))


@dataclass
class Inputs:
    """Values the run used (or, a pipeline step, wrote) as MLflow dataset inputs: each is a
    steps/datasets.py `DatasetDescription` as JSON, computed where the value was."""

    op: ClassVar[str] = "inputs"
    key: str
    datasets: list[Json] = field(default_factory=list)

    def to_json(self) -> Json:
        return {"op": self.op, "key": self.key, "datasets": self.datasets}

    @classmethod
    def from_json(cls, obj: Json) -> Inputs:
        datasets = obj.get("datasets")
        if not isinstance(datasets, list) or not all(isinstance(d, dict) for d in datasets):
            raise ShapeError("inputs record without a list of datasets")
        return cls(_text(obj, "key"), datasets)


@dataclass
class Damaged:
    """A spool line that is not a record (torn, garbled, of the wrong shape): never sent,
    kept in the quarantine with `problem`."""

    op: ClassVar[str] = "damaged"
    offset: int | None  # where the line starts in the spool
    problem: str
    line: str = ""
    end: int | None = None  # where it ends (quarantine entries of earlier versions)

    def to_json(self) -> Json:
        out: Json = {"op": self.op, "offset": self.offset, "problem": self.problem,
                     "line": self.line}
        if self.end is not None:
            out["end"] = self.end
        return out

    @classmethod
    def from_json(cls, obj: Json) -> Damaged:
        offset, end = obj.get("offset"), obj.get("end")
        return cls(offset if isinstance(offset, int) else None, str(obj.get("problem", "")),
                   str(obj.get("line", "")), end if isinstance(end, int) else None)


Record = Header | RunStart | RunStatus | RunEnd | Data | File | Model | Inputs | Damaged
KINDS: dict[str, type[Record]] = {kind.op: kind for kind in (
    Header, RunStart, RunStatus, RunEnd, Data, File, Model, Inputs, Damaged)}


def from_json(obj: Any) -> Record:
    """The record a decoded spool line holds; ShapeError when it holds none."""
    if not isinstance(obj, dict):
        raise ShapeError(f"a JSON {type(obj).__name__}, not a record")
    op = obj.get("op")
    if not isinstance(op, str):
        raise ShapeError("no op")
    kind = KINDS.get(op)
    if kind is None:
        raise ShapeError(f"unknown spool record {op!r} (written by a newer jupyter-mlops?)")
    return kind.from_json(obj)


def encode(record: Record) -> bytes:
    """A record as its spool line."""
    return json.dumps(record.to_json(), separators=(",", ":")).encode() + b"\n"


def decode(line: bytes, offset: int) -> Record:
    """A spool line's record; a line that holds none (damaged on disk, written by hand, or of
    the wrong shape) is a `Damaged` record, which replay quarantines instead of stopping."""
    try:
        return from_json(json.loads(line))
    except ValueError as error:  # ShapeError, or not JSON at all
        problem = str(error) if isinstance(error, ShapeError) else f"not JSON ({error})"
    return Damaged(offset, problem, line.decode("utf-8", "replace")[:2000])


def _text(obj: Json, name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ShapeError(f"{obj.get('op')} record with {name}={str(value)[:60]!r}")
    return value


def _optional_text(obj: Json, name: str) -> str | None:
    return None if obj.get(name) is None else _text(obj, name)


def _int(obj: Json, name: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShapeError(f"{obj.get('op')} record with {name}={str(value)[:60]!r}")
    return value


def _map(obj: Json, name: str) -> dict[str, Any]:
    value = obj.get(name)
    if value is not None and not isinstance(value, dict):
        raise ShapeError(f"{obj.get('op')} record with {name}={str(value)[:60]!r}")
    return value or {}
