"""The sender process: reads a session's spool from the ack offset and sends it to MLflow.

It runs beside the kernel (`python -m jupyter_mlops.tracking.sender ROOT SESSION KERNEL_PID`,
its store in MLFLOW_TRACKING_URI, where `ps` does not show a password), so
neither `import mlflow` nor MLflow's work holds the kernel's GIL while a cell runs. The kernel
talks to it over stdin, one request a line; answers go to the reply pipe (the original stdout):

- `data`          new records are in the spool;
- `flush N OFF`   send the spool up to byte OFF, then answer `done N 1` (the store answered for
                  every record: stored, or rejected and quarantined) or `done N 0` (not yet);
- `recover`       replay orphaned spools of this store and settle dead kernels' runs;
- `stop N OFF`    the kernel is closing: send what is left, answer, remove the spool, exit;
- `idle N OFF`    nothing was logged for a while: if the store has everything, answer and exit
                  (the kernel starts a new sender for its next record).

End of input without `stop` means the kernel died: the sender still sends everything (retrying
a while if the store is down), marks the dead kernel's open runs FAILED and exits. Whatever it
cannot send stays in the spool for the next `%mlops start` or `jupyter-mlops sync`.

A record the store rejects is quarantined at once (replay.py), not retried: only a store that
does not answer, or answers "busy", is worth waiting for. The state file says which
(`store`: answers, unreachable, busy), for the kernel's messages.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_mlops.tracking import replay as replay_mod
from jupyter_mlops.tracking.destination import masked, open_client
from jupyter_mlops.tracking.records import Record
from jupyter_mlops.tracking.sink import BUSY, UNREACHABLE, MlflowSink, classify, problem, reason
from jupyter_mlops.tracking.spool import Spool, sessions

log = logging.getLogger("jupyter_mlops.tracking")

_RETRY_MIN, _RETRY_MAX = 0.5, 5.0
_BUSY_STRIKES = 8  # a unit the store answers "busy" to this often is quarantined
_ORPHAN_PATIENCE = 120.0  # seconds a dead kernel's sender keeps retrying an unreachable store
_PARENT_CHECK = 1.0  # seconds between checks that the kernel still lives


class Sender:
    """Owns the spool's sender lock; one per kernel session."""

    def __init__(self, root: Path, session_id: str, uri: str, kernel_pid: int,
                 replies: Any) -> None:
        self.spool = Spool(root, session_id)
        self.uri = uri
        self.kernel_pid = kernel_pid
        self.replies = replies
        self.online = False
        self.store = "unknown"  # answers, unreachable, busy (or error: the sender's own)
        self.problem: str | None = None  # why the store takes no records now, in one line
        self.errors: list[str] = []
        self.sent = 0
        self.rejected = 0
        self._client: Any = None
        self._sink: MlflowSink | None = None
        self._backoff = _RETRY_MIN
        self._retry_at = 0.0
        self._strikes: dict[int, int] = {}
        self._buffer = b""
        self._fresh_from = 0

    # main loop -------------------------------------------------------------------------
    def run(self) -> int:
        if not self.spool.try_lock("sender"):
            return 0  # another sender already serves this session
        # Records that end past this offset were appended after this sender took over: no
        # earlier sender can have sent them.
        self._fresh_from = self.spool.size()
        self._state("starting")
        recover = False
        while True:
            lines, eof = self._read(self._timeout())
            kinds = {line.split(" ", 1)[0] for line in lines}
            recover |= "recover" in kinds
            self._work(force=bool(kinds & {"flush", "stop", "recover"}))
            orphaned = eof or not self._kernel_alive()
            if self.online and recover and not orphaned:
                # Only a live kernel's sender waits for others (see _orphaned).
                recover = False
                self._guard(self._recover)
            ending = self._answer(lines)
            if ending == "stop":
                self._finish()
                return 0
            if ending == "idle":
                self._state("idle: exited, restarted on the next record")
                self.spool.release()
                return 0
            if orphaned:
                return self._orphaned()

    def _timeout(self) -> float:
        if self.online:
            return _PARENT_CHECK
        return min(max(self._retry_at - time.monotonic(), 0.0), _PARENT_CHECK)

    def _work(self, force: bool) -> None:
        """Connect if due, then send the backlog; never raises."""
        attempted = self.online or force or time.monotonic() >= self._retry_at
        if not self.online and attempted:
            self._connect()
        if self.online:
            self._guard(self._send_backlog)
        if not self.online and attempted:  # the next try backs off; new records don't push it
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _RETRY_MAX)

    def _answer(self, lines: list[str]) -> str | None:
        """Answer flush, stop and idle requests; returns "stop" or "idle" when it should end."""
        ending = None
        for line in lines:
            kind, *args = line.split()
            if kind in ("flush", "stop", "idle") and len(args) == 2:
                seq, offset = args
                stored = self.online and self.spool.acked() >= int(offset)
                self._reply(f"done {seq} {int(stored)}")
                if kind == "stop" or (kind == "idle" and stored and ending is None):
                    ending = kind
        return ending

    def _orphaned(self) -> int:
        """The kernel is gone without `stop`: send what it left, settle its runs, exit."""
        deadline = time.monotonic() + _ORPHAN_PATIENCE
        while time.monotonic() < deadline:
            self._work(force=False)
            if self.online and self.spool.acked() >= self.spool.size():
                # Waiting here could wait on a sender that waits on us: a sender only waits
                # for another whose kernel is dead, and only while its own kernel lives.
                self._guard(lambda: self._recover(wait=0))
                break
            time.sleep(max(self._retry_at - time.monotonic(), 0.05))
        self._finish()
        return 0

    # the kernel's requests ---------------------------------------------------------------
    def _read(self, timeout: float) -> tuple[list[str], bool]:
        ready, _, _ = select.select([sys.stdin.fileno()], [], [], timeout)
        if not ready:
            return [], False
        chunk = os.read(sys.stdin.fileno(), 65536)
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [text for line in lines if (text := line.decode().strip())], not chunk

    def _reply(self, line: str) -> None:
        try:
            self.replies.write(line + "\n")
            self.replies.flush()
        except (BrokenPipeError, ValueError):
            pass  # the kernel is gone; nobody waits for the answer

    def _kernel_alive(self) -> bool:
        return os.getppid() == self.kernel_pid

    # sending ---------------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            self._client = self._client or open_client(self.uri, notice=self._error)
            self._client.search_experiments(max_results=1)
        except Exception as error:
            self._go_offline(f"store {masked(self.uri)} unreachable: {reason(error)[:200]}",
                             UNREACHABLE, problem(self.uri, error))
            return
        self._sink = MlflowSink(self._client, self.uri, self.spool.files, self.spool.load_ids(),
                                self.spool.save_id)
        self.online = True
        self.store = "answers"
        self.problem = None
        self._backoff = _RETRY_MIN
        self._state("online")

    def _send_backlog(self) -> None:
        """Send what the spool holds after the ack offset, in order (replay.py's loop)."""
        assert self._sink is not None
        if self._sink.ids and self.spool.root.is_dir() and not self.spool.ids_path.exists():
            # The folder was removed and the kernel wrote the log again (Spool.restore): the
            # kernel learns the run ids it has not read yet from this file only.
            self.spool.save_ids(self._sink.ids)
        replay_mod.send_backlog(self.spool, self._send_unit)

    def _send_unit(self, end: int, unit: Record) -> bool:
        """Send one unit; False (and offline) when the store did not take it: resent later."""
        assert self._sink is not None
        self._sink.fresh = end > self._fresh_from
        try:
            stored = replay_mod.apply(self._sink, unit, self.spool)
        except Exception as error:
            if classify(error) != BUSY:  # rejections were quarantined by apply
                self._go_offline(f"store {masked(self.uri)} unreachable, records kept in the "
                                 f"spool: {reason(error)[:200]}", UNREACHABLE,
                                 problem(self.uri, error))
                return False
            if not self._sink.answers():  # the whole store is down (a server's database),
                self._go_offline(f"store {masked(self.uri)} down, records kept in the spool: "
                                 f"{reason(error)[:200]}", UNREACHABLE,
                                 problem(self.uri, error))
                return False  # not this record's fault: no strike against it
            self._strikes[end] = self._strikes.get(end, 0) + 1
            if self._strikes[end] < _BUSY_STRIKES:
                self._go_offline(f"store busy, retrying: {reason(error)[:200]}", BUSY)
                return False
            replay_mod.reject(self._sink, self.spool, unit, error)
            stored = False
        self.sent += stored
        self.rejected += not stored
        return True

    def _recover(self, wait: float = _ORPHAN_PATIENCE / 2) -> None:
        """Replay spools whose kernel died, waiting up to `wait` for their own senders to
        finish, then mark FAILED what dead kernels left RUNNING."""
        from jupyter_mlops.tracking.process import fail_dead_runs

        for session_id in sessions(self.spool.root):
            if session_id != self.spool.session_id:
                self._replay_orphan(session_id, wait)
        fail_dead_runs(self._client, socket.gethostname())

    def _replay_orphan(self, session_id: str, wait: float) -> None:
        other = Spool(self.spool.root, session_id)
        if not other.try_own(wait=wait):
            return  # its kernel is alive (or its sender is still retrying a store)
        try:
            head = replay_mod.header(other)
            if head is None or head.uri == self.uri:
                replay_mod.replay(other, self._client, self.uri)
        finally:
            other.release()

    def _finish(self) -> None:
        if self.spool.done():
            self.spool.remove()
        else:
            self._state("stopped" if self.online else "offline: records kept in the spool")
        self.spool.release()

    # state -----------------------------------------------------------------------------
    def _guard(self, action: Any) -> None:
        try:
            action()
        except Exception as error:  # the sender must outlive any one failure
            unreachable = classify(error) == UNREACHABLE
            self._go_offline(f"sender: {reason(error)[:300]}",
                             UNREACHABLE if unreachable else "error",
                             problem(self.uri, error) if unreachable else None)

    def _go_offline(self, message: str, store: str, why: str | None = None) -> None:
        self.online = False
        self.store = store
        self.problem = why
        self._error(message)
        self._state("offline (retrying)")

    def _error(self, message: str) -> None:
        self.errors = [*self.errors[-19:], f"{time.strftime('%H:%M:%S')} {message}"]
        log.warning("jupyter-mlops: %s", message)

    def _state(self, state: str) -> None:
        try:
            self.spool.write_state({"state": state, "store": self.store, "errors": self.errors,
                                    "problem": self.problem, "pid": os.getpid(),
                                    "rejected": self.rejected})
        except OSError:
            pass


def main(argv: list[str]) -> int:
    root, session_id, kernel_pid = argv
    uri = os.environ["MLFLOW_TRACKING_URI"]
    # Answers go to the original stdout; anything a library prints lands in the log instead.
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` writes its stacks to the log
    os.nice(10)  # on a busy machine the kernel's cells come first
    return Sender(Path(root), session_id, uri, int(kernel_pid), replies).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
