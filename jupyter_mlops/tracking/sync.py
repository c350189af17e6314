"""Replay every orphaned spool to the store it was meant for, then settle dead runs; report
the records the store rejected (quarantine files), now or earlier, so the user sees them."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import MlopsError, counted
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking import quarantine
from jupyter_mlops.tracking import replay as replay_mod
from jupyter_mlops.tracking.destination import (
    masked,
    open_client,
    spool_root,
    sqlite_path,
    tracking_uri,
)
from jupyter_mlops.tracking.process import fail_dead_runs
from jupyter_mlops.tracking.records import RunStart
from jupyter_mlops.tracking.spool import Spool, sessions


@dataclass
class SyncReport:
    replayed: dict[str, int] = field(default_factory=dict)  # session -> units sent
    busy: dict[str, str] = field(default_factory=dict)  # owned by a live kernel -> its session
    failed: dict[str, str] = field(default_factory=dict)  # session or uri -> error
    spools: dict[str, Path] = field(default_factory=dict)  # a failed session -> its spool log
    recovered: list[str] = field(default_factory=list)  # run ids marked FAILED
    rejected: dict[str, list[str]] = field(default_factory=dict)  # quarantine file -> records
    unsent: dict[str, str] = field(default_factory=dict)  # uri -> a session not fully sent
    notes: list[str] = field(default_factory=list)  # e.g. a half-made store made anew

    def lines(self) -> list[str]:
        out = list(self.notes)
        out += [f"replayed {sid}: {n} record groups" for sid, n in self.replayed.items()]
        out += [f"skipped {sid}{label}: its kernel or its sender is still running"
                for sid, label in self.busy.items()]
        # A spool whose store never comes back is the user's to delete: its file is named.
        out += [f"failed {masked(where)}{self._spool(where)}: {error}"
                for where, error in self.failed.items()]
        out += [f"marked FAILED (kernel gone): {run_id}" for run_id in self.recovered]
        for path, records in self.rejected.items():
            out.append(f"REJECTED by the store: {counted(len(records), 'record')} kept in {path} "
                       "(fix the cause, then delete that file):")
            out += [f"  {line}" for line in records]
        return out or ["nothing to sync"]

    def _spool(self, session_id: str) -> str:
        path = self.spools.get(session_id)
        return f" (spool {path})" if path else ""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.rejected


def sync(spool_dirs: list[Path] | None = None, recover: bool = True,
         exclude: frozenset[str] = frozenset()) -> SyncReport:
    """Replay spools under `spool_dirs` (default: the current store's), then recover runs.
    `exclude`: sessions left to their live sender (the calling kernel's own)."""
    uri = tracking_uri()
    roots = list(spool_dirs or []) or default_roots(uri)
    report = SyncReport()
    clients: dict[str, Any] = {}
    for root in roots:
        for session_id in sessions(root):
            if session_id in exclude:
                continue
            _replay_one(Spool(root, session_id), uri, clients, report)
        for path in quarantine.files(root):
            entries, _ = quarantine.read(path)
            if entries:
                report.rejected[str(path)] = [quarantine.describe(e) for e in entries]
    db = sqlite_path(uri)
    if recover and (clients or db is None or db.exists()):  # never create a store to recover
        for target in clients or {uri: None}:
            if target in report.unsent:
                # Its runs' end records may be among those not sent: marking them FAILED
                # now would be wrong; the next sync settles them.
                session_id = report.unsent[target]
                report.failed[target] = (f"runs not settled: records of session {session_id} "
                                         f"are still in the spool {report.spools[session_id]}")
                continue
            try:
                client = clients.get(target) or open_client(target, notice=report.notes.append)
                report.recovered += fail_dead_runs(client, socket.gethostname())
            except Exception as error:
                report.failed[target] = _why(error, target)
    return report


def default_roots(uri: str) -> list[Path]:
    """The current store's spool, plus every server's spool under ~/.jupyter_mlops/spool:
    each spool names its own store, so `sync` needs no MLFLOW_TRACKING_URI to find them."""
    roots = [spool_root(uri)]
    home = Path.home() / ".jupyter_mlops" / "spool"
    if home.is_dir():
        roots += sorted(p for p in home.iterdir() if p.is_dir() and p not in roots)
    return roots


def _replay_one(spool: Spool, default_uri: str, clients: dict[str, Any],
                report: SyncReport) -> None:
    if not spool.try_own(wait=30):
        report.busy[spool.session_id] = _session_label(spool)
        return
    uri = default_uri
    try:
        head = replay_mod.header(spool)
        uri = head.uri if head else default_uri
        if uri not in clients:
            clients[uri] = open_client(uri, notice=report.notes.append)
        report.replayed[spool.session_id] = replay_mod.replay(spool, clients[uri], uri)
    except Exception as error:
        report.failed[spool.session_id] = _why(error, uri)
        report.spools[spool.session_id] = spool.log_path
        report.unsent.setdefault(uri, spool.session_id)
    finally:
        spool.release()


def _session_label(spool: Spool) -> str:
    """" (notebook /work/Churn.ipynb, experiment 'Churn')": whose session a spool holds, from
    its first run record (the session's run); "" when it has none yet."""
    start = next((record for _, record in spool.read(0, 3) if isinstance(record, RunStart)),
                 None)
    if start is None:
        return ""
    notebook = start.tags.get(vocab.NOTEBOOK_TAG)
    named = [f"notebook {notebook}"] if notebook else []
    return f" ({', '.join([*named, f'experiment {start.exp!r}'])})"


def _why(error: Exception, uri: str) -> str:
    """An error in one line: ours as said (they name the store, masked), a store that does
    not answer as the sender says it, others by class."""
    from jupyter_mlops.tracking.sink import UNREACHABLE, classify, problem

    if isinstance(error, MlopsError):
        return str(error)
    if classify(error) == UNREACHABLE:  # not MLflow's 400 characters of retry details
        return problem(uri, error)
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:400]
