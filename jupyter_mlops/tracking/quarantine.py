"""The quarantine: records the store rejected, kept with the reason instead of being dropped.

A session's rejected records go to `<spool dir>/<session>.rejected.jsonl`, one JSON entry a line
(the record, the reason, the run it belongs to); a rejected model's or artifact's payload is
kept beside it in `<session>.rejected/`. The spool's cleanup leaves both alone: they stay until
the user has dealt with them. The sender (and `jupyter-mlops sync`) write entries; the kernel
reads them to tell the user on the run card, in `%mlops end` and `%mlops status`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_mlops.tracking import records
from jupyter_mlops.tracking.records import (
    Damaged,
    Data,
    File,
    Inputs,
    Model,
    Record,
    RunEnd,
    RunStart,
    RunStatus,
)
from jupyter_mlops.tracking.spool import Spool

SUFFIX = ".rejected.jsonl"
REASON_CHARS = 2000  # kept in the file; messages show a shorter cut
SHOWN_CHARS = 300

Entry = dict[str, Any]


def keep(spool: Spool, record: Record, reason: str, run_id: str | None = None,
         run: str | None = None) -> Entry:
    """Append a rejected record and why to the spool's quarantine file (fsynced)."""
    entry: Entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "session": spool.session_id,
                    "key": getattr(record, "key", None), "run_id": run_id, "run": run,
                    "what": what(record), "reason": reason[:REASON_CHARS],
                    "record": record.to_json()}
    if isinstance(record, (File, Model)) and record.file:
        entry["payload"] = _keep_payload(spool, record.file)
    spool.root.mkdir(parents=True, exist_ok=True)
    with open(spool.rejected_path, "a") as handle:
        handle.write(json.dumps(entry, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def _keep_payload(spool: Spool, name: str) -> str | None:
    """The spool's payload files are deleted with the spool: keep the rejected one."""
    source = spool.files / name
    if not source.exists():
        return None
    spool.rejected_files.mkdir(parents=True, exist_ok=True)
    target = spool.rejected_files / name
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    except OSError:
        shutil.copyfile(source, target)
    return str(target)


def read(path: Path, offset: int = 0) -> tuple[list[Entry], int]:
    """Entries after byte `offset` (whole lines only) and the offset read to."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return [], offset
    complete = data[:data.rfind(b"\n") + 1]
    entries = []
    for line in complete.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries, offset + len(complete)


def files(root: Path) -> Iterator[Path]:
    """Quarantine files under a spool folder."""
    if Path(root).is_dir():
        yield from sorted(Path(root).glob(f"*{SUFFIX}"))


def what(record: Record) -> str:
    """The record in the user's words: which model, artifact, params, metrics or tags."""
    match record:
        case Damaged():
            at = (f"at byte {record.offset}" if record.offset is not None
                  else f"ending at byte {record.end}")
            return f"damaged spool line {at}"
        case Model():
            name = f"model {record.name!r}"
            return f"{name} (to register as {record.register!r})" if record.register else name
        case File():
            file = record.artifact or record.file
            return f"artifact {f'{record.dest}/{file}' if record.dest else file!r}"
        case Inputs():
            names = ", ".join(repr(d.get("name")) for d in record.datasets)
            return f"dataset inputs {names}"
        case RunStart():
            return f"run {record.name!r}"
        case RunStatus():
            return f"the run's status ({record.status})"
        case RunEnd():
            return f"end of the run ({record.status})"
        case Data():
            parts = [f"param {k!r} = {_short(v)}" for k, v in record.params.items()]
            parts += [f"metric {m[0]!r}" for m in record.metrics]
            parts += [f"tag {k!r}" for k in record.tags]
            if len(parts) > 4:
                return f"{', '.join(parts[:3])} and {len(parts) - 3} more values"
            return ", ".join(parts) or "data record"
    return f"{record.op} record"


def record_of(entry: Entry) -> Record:
    """The rejected record an entry keeps, read through the spool's own types."""
    try:
        return records.from_json(entry.get("record"))
    except ValueError as error:  # an entry edited by hand
        return Damaged(None, str(error), str(entry.get("record"))[:2000])


NEVER_CREATED = "was never created"  # the end of the reason of a record whose run was refused


def follows_its_run(entry: Entry) -> bool:
    """Whether the record was refused only because the store refused its run before it (the
    run's own rejection says why)."""
    return str(entry.get("reason", "")).endswith(NEVER_CREATED)


def describe(entry: Entry, with_run: bool = True) -> str:
    """One line: the run (unless told), what was rejected, and the store's reason."""
    reason = " ".join(str(entry.get("reason", "")).split())
    if len(reason) > SHOWN_CHARS:
        reason = reason[:SHOWN_CHARS] + "..."
    damaged = isinstance(record_of(entry), Damaged)
    line = f"{entry.get('what')}{':' if damaged else ' rejected by the store:'} {reason}"
    if not with_run:
        return line
    run = f"run {entry['run']!r}" if entry.get("run") else f"run {entry.get('run_id') or '?'}"
    return f"{run}: {line}"


def _short(value: Any) -> str:
    text = str(value)  # params are spooled as text
    return text if len(text) <= 60 else text[:57] + "..."
