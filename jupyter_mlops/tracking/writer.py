"""The kernel's side of the background writer: the spool, and a sender process.

- A logging call appends its record to the on-disk spool at once (a `write`, tens of
  microseconds): from then on it survives the kernel being killed. Payloads (figures, models,
  text) go to files beside it.
- The syncer thread fsyncs what was appended (so it survives the machine too), adds the git
  tags a session run needs, and wakes the sender. It never touches the network.
- A sender process (sender.py) imports mlflow, reads the spool from the ack offset and sends
  it in log_batch-sized units. Being a process, its work never competes with the cell for the
  kernel's GIL, and it finishes sending even when the kernel is killed.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from jupyter_mlops import settings
from jupyter_mlops.errors import counted
from jupyter_mlops.tracking import quarantine
from jupyter_mlops.tracking.gitinfo import source_tags
from jupyter_mlops.tracking.records import Data, File, Header, Model, Record, encode
from jupyter_mlops.tracking.spool import Spool


class Writer:
    """One per process and store; owns the session's spool and its sender process."""

    def __init__(self, uri: str, spool_root: Path, session_id: str) -> None:
        self.uri = uri
        self.spool = Spool(spool_root, session_id)
        # Records the disk refused (full): held here, in order, and written when it has room.
        self._held: list[tuple[bytes, Path | None, bytes | None]] = []
        self._held_bytes = 0
        self._planned = 0  # the spool's end offset once every held record is written
        self.fault: str | None = None  # why the spool cannot be written right now
        self.lost = 0  # records dropped: held records beyond HELD_BYTES
        try:
            self.spool.try_lock("kernel")
        except OSError as error:  # a full or read-only disk: the cell still runs
            self._refused(error)
        self._ids: dict[str, str] = {}
        self._ids_read = 0  # bytes of the spool's ids file read into _ids
        self._rejected: list[quarantine.Entry] = []  # the quarantine file's entries so far
        self._rejected_read = 0
        self._rejected_lock = threading.Lock()  # read by cards' ticker and the cell thread
        self._append = threading.Lock()  # one writer of the spool at a time
        self._io = threading.Lock()  # one request to the sender at a time
        self._stdin = threading.Lock()
        self._wake = threading.Condition()
        self._unsynced: list[Path] = []  # payload files not fsynced yet
        self._enrich: list[tuple[str, str]] = []  # (run key, notebook) needing source tags
        self._recover = False
        self._proc: subprocess.Popen | None = None
        self._replies = b""
        self._seq = 0
        self._files = 0
        self._end = 0
        self._closed = False
        self._idle = settings.SENDER_IDLE.get()
        self.put(Header(uri, socket.gethostname()))
        self._syncer = threading.Thread(target=self._sync_loop, name="jupyter-mlops-syncer",
                                        daemon=True)
        self._syncer.start()

    # cell-thread API -------------------------------------------------------------------
    def put(self, record: Record, payload: str | bytes | None = None,
            enrich: str | None = None) -> int:
        """Append the record to the spool now; fsync and sending happen in the background.
        Returns the spool offset the store has it once acked (see `settled`).

        `payload` is an artifact's or a model's content: small text goes into the record,
        the rest to a file beside the spool. `enrich` (a notebook path, maybe '') asks for the
        run's source and git tags, which the syncer thread adds.
        """
        with self._append:
            if isinstance(record, File) and _inline(payload):
                record.text, payload = str(payload), None
            named: tuple[Path | None, bytes | None] = (None, None)
            if payload is not None and isinstance(record, (File, Model)):
                named = self._name_payload(record, payload)
            if enrich is not None:
                self._enrich.append((getattr(record, "key", ""), enrich))
            end = self._hold(encode(record), *named)
            self._write_held()
        with self._wake:
            self._wake.notify()
        return end

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record put so far is in the store (True) or only spooled (False).
        False at once while records are held because the disk refused them."""
        return self._request("flush", timeout) and not self.held and not self.lost

    @property
    def held(self) -> int:
        """Records not in the spool yet: the disk refused them (see `fault`)."""
        return len(self._held)

    def recover(self) -> None:
        """Have the sender replay orphaned spools and settle dead kernels' runs."""
        with self._wake:
            self._recover = True
            self._wake.notify()

    def close(self, timeout: float = 30.0) -> bool:
        """Send what is left, stop the sender, release the spool (once)."""
        if self._closed:
            return False
        if (self._proc is None and self.spool.acked() >= self._end and self._enrich == []
                and not self._sync_held()):
            return self._close_rested()
        deadline = time.monotonic() + timeout
        if self._request("flush", timeout):
            self._ids.update(self.spool.load_ids())  # known after the spool is gone
        stored = self._request("stop", max(deadline - time.monotonic(), 1.0))
        self._closed = True
        with self._wake:
            self._wake.notify()
        self._syncer.join(timeout=5)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)  # reaped here, not left a zombie
            except subprocess.TimeoutExpired:
                pass  # still sending; it exits on its own
        self._say_lost()
        self.spool.release()
        return stored

    def _close_rested(self) -> bool:
        """The sender exited idle and the store has everything: no need to start one."""
        self._closed = True
        with self._wake:
            self._wake.notify()
        self._ids.update(self.spool.load_ids())
        if self.spool.try_lock("sender"):
            self.spool.remove()
        self.spool.release()
        return True

    def detach(self) -> None:
        """Hand what is left to the sender and return without waiting for the store (a command
        that ends now): the sender sends it and exits; what it cannot send stays in the spool
        for `jupyter-mlops sync`. The writer is closed after."""
        if self._closed:
            return
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._syncer.join(timeout=10)  # it may be running git for a run's source tags
        self._add_source_tags()
        self._sync()
        if self._tell(f"stop 0 {self._end}") and self._proc is not None:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()  # nobody reads its answer; it exits after the stop
        self._say_lost()
        self.spool.release()

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        """Bytes of spooled records the store has not acknowledged yet."""
        return self.spool.pending_bytes()

    def run_id(self, key: str) -> str | None:
        if key not in self._ids and not self._closed:  # asked on the cell's thread: read only
            found, self._ids_read = self.spool.ids_after(self._ids_read)  # what is new
            self._ids.update(found)
        return self._ids.get(key)

    @property
    def state(self) -> str:
        if self._closed:
            return "closed"
        return self.spool.read_state().get("state", "starting")

    @property
    def online(self) -> bool:
        return self.state == "online"

    @property
    def errors(self) -> list[str]:
        return list(self.spool.read_state().get("errors", []))

    @property
    def problem(self) -> str | None:
        """Why the store takes no records now, in one line naming it (None: no known fault)."""
        return None if self._closed else self.spool.read_state().get("problem")

    @property
    def store(self) -> str:
        """What the sender last saw of the store: answers, unreachable, busy, error, unknown."""
        if self._closed:
            return "unknown"
        return self.spool.read_state().get("store", "unknown")

    def settled(self, offset: int) -> bool:
        """Whether the store answered for every record up to `offset` (stored or rejected),
        or this writer is closed (what it could not send stays in the spool)."""
        return self._closed or self.spool.acked() >= offset

    def rejections(self) -> list[quarantine.Entry]:
        """The records the store rejected so far (the quarantine file, read incrementally)."""
        with self._rejected_lock:
            new, self._rejected_read = quarantine.read(self.spool.rejected_path,
                                                       self._rejected_read)
            self._rejected += new
            return list(self._rejected)

    # requests to the sender ------------------------------------------------------------
    def _request(self, kind: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        self._sync()
        with self._io:
            self._seq += 1
            seq = self._seq
            if not self._tell(f"{kind} {seq} {self._end}"):
                return False
            return self._await(seq, deadline)

    def _await(self, seq: int, deadline: float) -> bool:
        proc = self._proc
        while proc is not None and proc.stdout is not None:
            for line in self._replies.split(b"\n")[:-1]:
                word, got, stored = (line.decode().split() + ["", "", ""])[:3]
                if word == "done" and got == str(seq):
                    self._replies = b""
                    if stored == "1":
                        self.spool.acked()  # remembered, should the ack file be deleted
                    return stored == "1"
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    return False  # the sender died; it is restarted on the next request
                self._replies += chunk
        return False

    def _tell(self, line: str) -> bool:
        """Write one line to the sender, starting (or restarting) it when needed."""
        with self._stdin:
            for _ in range(2):
                stdin = self._sender().stdin
                assert stdin is not None  # spawned with stdin=PIPE
                try:
                    stdin.write(line.encode() + b"\n")
                    stdin.flush()
                    return True
                except (BrokenPipeError, OSError, ValueError):
                    self._proc = None
            return False

    def _sender(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._spawn()
            self._replies = b""
        return self._proc

    def _spawn(self) -> subprocess.Popen:
        # The kernel's import path, so that what the kernel imports the sender can unpickle.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        env["MLFLOW_TRACKING_URI"] = self.uri  # not on its command line: `ps` shows that
        with open(self.spool.sender_log, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "jupyter_mlops.tracking.sender", str(self.spool.root),
                 self.spool.session_id, str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                # Its own session: a kernel killed with its process group still gets its
                # records sent.
                start_new_session=True)

    # syncer thread ---------------------------------------------------------------------
    def _sync_loop(self) -> None:
        synced = 0
        while not self._closed:
            idle = False
            with self._wake:
                if self._held:  # a full disk: try again in a while
                    self._wake.wait(_HELD_RETRY)
                elif synced == self._end and not self._recover and not self._enrich:
                    idle = not self._wake.wait(self._idle)
                recover, self._recover = self._recover, False
            if self._closed:
                return
            if idle:
                self._rest()
                continue
            try:
                self._add_source_tags()
                synced = self._sync()
            except Exception as error:  # a full disk must not end the thread
                sys.stderr.write(f"jupyter-mlops: spool write failed: {error!r}\n")
                time.sleep(1)
            self._tell("recover" if recover else "data")

    def _rest(self) -> None:
        """Nothing logged for a while: once the store has everything, the sender exits (it
        holds mlflow in memory); the next record starts a new one."""
        with self._io:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            self._seq += 1
            seq = self._seq
            if not (self._tell(f"idle {seq} {self._end}")
                    and self._await(seq, time.monotonic() + 30)):
                return
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                return
            self._proc = None

    def _sync(self) -> int:
        """fsync the spool and the payload files written so far; returns the synced offset."""
        with self._append:
            self._write_held()
            files, self._unsynced = self._unsynced, []
            end = self._end
        for path in files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # removed with the spool's folder: see Spool.restore
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.spool.sync()
        return end

    def _add_source_tags(self) -> None:
        """Git runs here, not in the cell: its tags follow the run's record in the spool."""
        with self._append:
            pending, self._enrich = self._enrich, []
        for key, notebook in pending:
            self.put(Data(key, tags=source_tags(notebook)))

    def _name_payload(self, record: File | Model, payload: str | bytes) -> tuple[Path, bytes]:
        """The payload goes to a file; the spooled record names it."""
        self._files += 1
        record.file = f"{self._files:06d}"  # flat: a folder per file costs a mkdir per cell
        return self.spool.files / record.file, (
            payload.encode() if isinstance(payload, str) else payload)

    # records the disk refused ------------------------------------------------------------
    def _hold(self, line: bytes, path: Path | None, payload: bytes | None) -> int:
        """Queue a record to be written (now, or once the disk has room); returns the spool
        offset it ends at. Beyond HELD_BYTES held, a record is dropped and counted."""
        size = len(line) + len(payload or b"")
        if self._held and self._held_bytes + size > HELD_BYTES:
            self.lost += 1
            return self._planned
        self._held.append((line, path, payload))
        self._held_bytes += size
        self._planned += len(line)
        return self._planned

    def _write_held(self) -> None:
        """Write the held records in order (call with `_append` held); stops at the first the
        disk refuses, which stays held, and says so once per fault."""
        try:
            restored = self.spool.restore()
        except OSError as error:  # the records stay in the open log, and new ones held
            self._refused(error)
            return
        if restored:
            self._ids_read = self._rejected_read = 0  # their files are new ones
            sys.stderr.write(f"jupyter-mlops: the spool {self.spool.log_path} was deleted while "
                             "the kernel ran; it is written again from the kernel's open copy "
                             "and sending goes on\n")
        while self._held:
            line, path, payload = self._held[0]
            try:
                if path is not None:
                    _write_file(path, payload or b"")
                self._end = self.spool.append_lines([line])
            except OSError as error:
                if path is not None:
                    path.unlink(missing_ok=True)
                self._refused(error)
                return
            self._held.pop(0)
            self._held_bytes -= len(line) + len(payload or b"")
            if path is not None:
                self._unsynced.append(path)
        self._planned = self._end
        if self.fault is not None:
            self.fault = None
            sys.stderr.write(f"jupyter-mlops: the spool {self.spool.log_path} is written "
                             "again; the held records are in it\n")

    def _sync_held(self) -> int:
        with self._append:
            self._write_held()
            return len(self._held)

    def _say_lost(self) -> None:
        """Closing with records the disk still refuses: they end with the process, said."""
        if self._held or self.lost:
            lost = counted(len(self._held) + self.lost, "tracking record")
            sys.stderr.write(f"jupyter-mlops: {lost} "
                             f"LOST: the spool {self.spool.log_path} could not be written "
                             f"({self.fault}) before the process ended\n")

    def _refused(self, error: OSError) -> None:
        """One line the first time the disk refuses: the cell runs on, the records wait."""
        if self.fault is not None:
            return
        self.fault = error.strerror or str(error)
        sys.stderr.write(f"jupyter-mlops: tracking records cannot be written to the spool "
                         f"{self.spool.log_path}: {self.fault}; the cell ran, its records are "
                         "held in memory until the disk has room\n")


HELD_BYTES = 256 * 1024 * 1024  # records held in memory while the disk is full
_HELD_RETRY = 2.0  # seconds between attempts to write held records


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


INLINE_TEXT = 16 * 1024  # characters of a text artifact kept in its spooled record


def _inline(payload: str | bytes | None) -> bool:
    """Small text goes into the spool line itself: a file of its own costs a create, a write
    and an fsync (about 0.5 ms of the cell here for the cell's source and its stdout)."""
    return isinstance(payload, str) and len(payload) <= INLINE_TEXT
