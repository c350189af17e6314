"""Sending a spool's unacked records to the store, in order, acking as it goes.

A unit the store rejects is quarantined (quarantine.py) and acked: it is never acknowledged
silently, and never blocks the records after it. A unit the store did not take because it did
not answer (or answered "busy") raises and stays in the spool, to be resent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from jupyter_mlops.tracking import quarantine
from jupyter_mlops.tracking.records import Data, Header, Record
from jupyter_mlops.tracking.sink import REJECTED, MlflowSink, PermanentError, classify, reason
from jupyter_mlops.tracking.spool import Spool

log = logging.getLogger("jupyter_mlops.tracking")


def units(items: list[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    """Merge consecutive data records of one run into one (fewer log_batch calls)."""
    current: Record | None = None
    end = 0
    for offset, record in items:
        if isinstance(current, Data) and isinstance(record, Data) and _mergeable(current, record):
            current.params.update(record.params)
            current.tags.update(record.tags)
            current.metrics.extend(record.metrics)
            end = offset
            continue
        if current is not None:
            yield end, current
        current, end = _copy(record), offset
    if current is not None:
        yield end, current


def _mergeable(current: Data, record: Data) -> bool:
    if current.key != record.key:
        return False
    # A param logged again must reach MLflow as its own call, which refuses a changed value;
    # merged, the later value would silently replace the first.
    return not record.params.keys() & current.params.keys()


def _copy(record: Record) -> Record:
    """A data record that later ones merge into, leaving the one read intact."""
    if not isinstance(record, Data):
        return record
    return replace(record, params=dict(record.params), tags=dict(record.tags),
                   metrics=list(record.metrics))


def apply(sink: MlflowSink, record: Record, spool: Spool) -> bool:
    """Apply one unit; False if the store rejected it (then it is in the quarantine file).
    Raises when the store did not answer or was busy: the unit stays in the spool."""
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
    refused = getattr(error, "record", None) or record
    run_id, run = sink.run_label(getattr(record, "key", None))
    entry = quarantine.keep(spool, refused, reason(error), run_id, run)
    log.warning("jupyter-mlops: %s; kept in %s", quarantine.describe(entry),
                spool.rejected_path)


def header(spool: Spool) -> Header | None:
    items = spool.read(0, 1)
    return items[0][1] if items and isinstance(items[0][1], Header) else None


def send_backlog(spool: Spool, send: Callable[[int, Record], bool]) -> int:
    """Hand each unit after the ack offset to `send`, in order, acking those it settles (it
    returns True: stored, or rejected and quarantined); stops at the first it does not.
    Returns the units settled. The sender's loop and `replay` both send through here."""
    settled = 0
    while True:
        items = spool.read(spool.acked(), 500)
        if not items:
            return settled
        for end, unit in units(items):
            if not send(end, unit):
                return settled
            spool.set_acked(end)
            settled += 1


def replay(spool: Spool, client: Any, uri: str) -> int:
    """Send everything after the ack offset; remove the spool when done. Returns units sent.
    Raises when the store does not answer: what is left stays in the spool."""
    sink = MlflowSink(client, uri, spool.files, spool.load_ids(), spool.save_id)

    def send(end: int, unit: Record) -> bool:
        apply(sink, unit, spool)  # a rejected unit is quarantined: settled all the same
        return True

    sent = send_backlog(spool, send)
    if spool.done() or spool.size() == 0:  # empty: its sender finished while we waited
        spool.remove()
    return sent
