"""Sending a spool's unacked records to the store, in order, acking as it goes.

A unit the store rejects is quarantined (quarantine.py) and acked: it is never acknowledged
silently, and never blocks the records after it. A unit the store did not take because it did
not answer (or answered "busy") raises and stays in the spool, to be resent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from jupyter_mlops.tracking import quarantine
from jupyter_mlops.tracking.sink import REJECTED, MlflowSink, PermanentError, classify, reason
from jupyter_mlops.tracking.spool import Record, Spool

log = logging.getLogger("jupyter_mlops.tracking")


def units(items: list[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    """Merge consecutive data records of one run into one (fewer log_batch calls)."""
    current: Record | None = None
    end = 0
    for offset, record in items:
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
