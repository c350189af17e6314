"""Sending a spool's unacked records to the store, in order, acking as it goes.

A unit the store rejects is quarantined (quarantine.py) and acked: it is never acknowledged
silently, and never blocks the records after it. A unit the store did not take because it did
not answer (or answered "busy") raises and stays in the spool, to be resent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from jupyter_mlops.tracking import quarantine
from jupyter_mlops.tracking.sink import REJECTED, MlflowSink, PermanentError, classify, reason
from jupyter_mlops.tracking.spool import Record, Spool

log = logging.getLogger("jupyter_mlops.tracking")


def units(items: list[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    """Merge consecutive data records of one run into one (fewer log_batch calls). A record
    of the wrong shape becomes a `damaged` unit of its own, which `apply` quarantines."""
    current: Record | None = None
    end = 0
    start = None
    for offset, record in items:
        record, start = _checked(record, start, offset), offset
        if current is not None and _mergeable(current, record):
            current["params"].update(record.get("params") or {})
            current["tags"].update(record.get("tags") or {})
            current["metrics"].extend(record.get("metrics") or ())
            end = offset
            continue
        if current is not None:
            yield end, current
        current, end = _copy(record), offset
    if current is not None:
        yield end, current


_TEXT, _INT, _MAP, _LIST = (str,), (int,), (dict, type(None)), (list, type(None))
_SHAPES: dict[str, dict[str, tuple[type, ...]]] = {
    "run": {"key": _TEXT, "exp": _TEXT, "start": _INT, "tags": _MAP,
            "name": (str, type(None)), "parent": (str, type(None))},
    "end": {"key": _TEXT, "status": _TEXT, "end": _INT},
    "data": {"key": _TEXT, "params": _MAP, "tags": _MAP, "metrics": _LIST},
    "file": {"key": _TEXT},
    "model": {"key": _TEXT, "file": _TEXT},
}


def shape_problem(record: Record) -> str | None:
    """What is wrong with a spool record's shape (None: nothing). Unknown ops pass: the
    sink refuses them by name."""
    op = record.get("op")
    if not isinstance(op, str):
        return "no op"
    for name, types in _SHAPES.get(op, {}).items():
        if not isinstance(record.get(name), types) or isinstance(record.get(name), bool):
            return f"{op} record with {name}={str(record.get(name))[:60]!r}"
    if op == "data" and any(not (isinstance(m, list) and len(m) == 4)
                            for m in record.get("metrics") or ()):
        return "data record with a metric that is not [key, value, time, step]"
    if op == "file" and not (isinstance(record.get("text"), str)
                             or isinstance(record.get("file"), str)):
        return "file record with neither text nor a file"
    return None


def _checked(record: Record, start: int | None, end: int) -> Record:
    if record.get("op") == "damaged":
        return record
    problem = shape_problem(record)
    if problem is None:
        return record
    return {"op": "damaged", "offset": start, "end": end, "problem": problem,
            "line": json.dumps(record, default=str)[:2000]}


def _mergeable(current: Record, record: Record) -> bool:
    if not (current["op"] == record["op"] == "data" and current["key"] == record["key"]):
        return False
    # A param logged again must reach MLflow as its own call, which refuses a changed value;
    # merged, the later value would silently replace the first.
    return not (record.get("params") or {}).keys() & current["params"].keys()


def _copy(record: Record) -> Record:
    if record["op"] != "data":
        return record
    return {"op": "data", "key": record["key"], "params": dict(record.get("params") or {}),
            "tags": dict(record.get("tags") or {}), "metrics": list(record.get("metrics") or ())}


def apply(sink: MlflowSink, record: Record, spool: Spool) -> bool:
    """Apply one unit; False if the store rejected it (then it is in the quarantine file).
    Raises when the store did not answer or was busy: the unit stays in the spool."""
    if record["op"] == "header":
        return True
    if record["op"] == "damaged":  # never sent: kept apart, named, and passed over
        reject(sink, spool, record, PermanentError(f"not sent: {record['problem']}"))
        return False
    try:
        sink.apply(record)
    except Exception as error:
        if not isinstance(error, PermanentError) and classify(error) != REJECTED:
            raise
        if not isinstance(error, PermanentError) and not sink.answers():
            raise  # an odd error from a store that has just gone away: resend later
        reject(sink, spool, record, error)
        return False
    return True


def reject(sink: MlflowSink, spool: Spool, record: Record, error: BaseException) -> None:
    """Quarantine the (refused part of the) record, with the store's reason."""
    part = getattr(error, "record", None)
    refused = {**part, "key": record.get("key")} if part else record
    run_id, run = sink.run_label(record.get("key"))
    entry = quarantine.keep(spool, refused, reason(error), run_id, run)
    log.warning("jupyter-mlops: %s; kept in %s", quarantine.describe(entry),
                spool.rejected_path)


def header(spool: Spool) -> Record | None:
    items = spool.read(0, 1)
    return items[0][1] if items and items[0][1].get("op") == "header" else None


def replay(spool: Spool, client: Any, uri: str) -> int:
    """Send everything after the ack offset; remove the spool when done. Returns units sent."""
    sink = MlflowSink(client, uri, spool.files, spool.load_ids(), spool.save_id)
    sent = 0
    while True:
        items = spool.read(spool.acked(), 500)
        if not items:
            break
        for end, unit in units(items):
            apply(sink, unit, spool)
            spool.set_acked(end)
            sent += 1
    if spool.done() or spool.size() == 0:  # empty: its sender finished while we waited
        spool.remove()
    return sent
