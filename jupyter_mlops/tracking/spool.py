"""The on-disk spool: an append-only, fsynced log of every record (records.py) a session
produced.

Every record is appended here before it is sent (a write-ahead log), so a store outage or a
killed kernel loses nothing. `<id>.ack` holds the offset up to which the store has the
records; `<id>.ids` maps client-side run keys to MLflow run ids (and a registered model's
`registered_key` to its version, for the run card). Replay resends what follows
the ack offset; every operation is idempotent on resend (see sink.py), so a crash between
sending and acking costs nothing. A session's files are deleted once it is fully acked.

Two locks say who is alive: the kernel holds `<id>.lock` while it appends, its sender process
holds `<id>.sender.lock` while it sends. A spool whose two locks are both free is an orphan.
Records the store rejects are kept apart, in `<id>.rejected.jsonl` (see quarantine.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from jupyter_mlops.tracking.records import Record, decode, encode


class Spool:
    """One session's spool files under `root`."""

    def __init__(self, root: Path, session_id: str) -> None:
        self.root = Path(root)
        self.session_id = session_id
        self.log_path = self.root / f"{session_id}.jsonl"
        self.ack_path = self.root / f"{session_id}.ack"
        self.ids_path = self.root / f"{session_id}.ids"
        self.files = self.root / session_id
        self.state_path = self.root / f"{session_id}.state"
        self.sender_log = self.root / f"{session_id}.log"
        # Records the store rejected (quarantine.py); the spool's cleanup leaves them.
        self.rejected_path = self.root / f"{session_id}.rejected.jsonl"
        self.rejected_files = self.root / f"{session_id}.rejected"
        # Not thread-local: one thread may take a lock and another release it.
        self._locks = {kind: FileLock(str(self.root / f"{session_id}{suffix}"), timeout=0,
                                      thread_local=False)
                       for kind, suffix in (("kernel", ".lock"), ("sender", ".sender.lock"))}
        self._log: Any = None
        self._acked = 0  # the highest ack offset this process has read or written

    # ownership -------------------------------------------------------------------------
    def try_lock(self, kind: str, wait: float = 0) -> bool:
        """Take the kernel's or the sender's lock; False when a live process holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._locks[kind].acquire(timeout=wait)
        except Timeout:
            return False
        return True

    def try_own(self, wait: float = 0) -> bool:
        """Take both locks (to replay an orphan); False while its kernel lives.

        A dead kernel's sender may still be sending what the kernel left: wait up to `wait`
        seconds for it to finish, so that what follows sees every value.
        """
        if not self.try_lock("kernel"):
            return False
        if not self.try_lock("sender", wait):
            self._locks["kernel"].release()
            return False
        return True

    def release(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        for lock in self._locks.values():
            if lock.is_locked:
                lock.release()

    # writing ---------------------------------------------------------------------------
    def append(self, records: list[Record], sync: bool = True) -> list[int]:
        """Append; returns each record's end offset.

        Once written, a record survives the death of the process (it is in the OS's cache);
        `sync` (or a later `sync()`) makes it survive a crash of the machine too.
        """
        lines = [encode(record) for record in records]
        end = self.append_lines(lines)
        ends, offset = [], end - sum(map(len, lines))
        for line in lines:
            offset += len(line)
            ends.append(offset)
        if sync:
            self.sync()
        return ends

    def append_lines(self, lines: list[bytes]) -> int:
        """Append encoded records whole or not at all; returns the log's end offset.

        Unbuffered: a write the disk refuses (ENOSPC) raises here, and the part written is cut
        off again, so a full disk never leaves a torn line that later lines would run into.
        """
        if self._log is None:
            self.files.mkdir(parents=True, exist_ok=True)
            # Readable too: the log is copied from it if its folder is removed (restore).
            self._log = open(self.log_path, "a+b", buffering=0)  # noqa: SIM115 - kept open
        fd = self._log.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        joined = b"".join(lines)
        data = memoryview(joined)
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            os.ftruncate(fd, start)
            raise
        return start + len(joined)

    def sync(self) -> None:
        if self._log is not None:
            os.fsync(self._log.fileno())

    def restore(self) -> bool:
        """Write the log again under its path if it was deleted while this process appends
        to it (its folder removed by hand); True when it did.

        The open file still holds every record, but the sender reads the spool by its path:
        the copy, with the last ack seen and the kernel's lock taken again, lets it send on
        from where it was. Payload files not sent yet went with the folder; the sender
        quarantines their records, which the session's end lists.
        """
        if self._log is None or os.fstat(self._log.fileno()).st_nlink:
            return False
        self.files.mkdir(parents=True, exist_ok=True)
        copy = open(self.log_path, "w+b", buffering=0)  # noqa: SIM115 - kept open
        self._log.seek(0)
        shutil.copyfileobj(self._log, copy)
        self._log.close()
        self._log = copy
        if not self.ack_path.exists():
            self.set_acked(self._acked)
        kernel = self._locks["kernel"]
        if kernel.is_locked:  # held on the deleted lock file: nobody else would see it
            kernel.release(force=True)
            self.try_lock("kernel")
        return True

    def acked(self) -> int:
        try:
            found = int(self.ack_path.read_text() or 0)
        except (OSError, ValueError):
            found = 0
        self._acked = max(self._acked, found)  # an ack file deleted by hand is not a reset
        return self._acked

    def set_acked(self, offset: int) -> None:
        # Not fsynced: a lost ack only means a resend, and resends are idempotent.
        tmp = self.ack_path.with_suffix(".ack.tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.ack_path)
        self._acked = max(self._acked, offset)

    def size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def pending_bytes(self) -> int:
        return max(self.size() - self.acked(), 0)

    # reading ---------------------------------------------------------------------------
    def read(self, start: int, limit: int = 500) -> list[tuple[int, Record]]:
        """Up to `limit` complete records after byte `start`, with their end offsets."""
        out: list[tuple[int, Record]] = []
        try:
            handle = open(self.log_path, "rb")  # noqa: SIM115
        except OSError:
            return out
        with handle:
            handle.seek(start)
            offset = start
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a torn last line from a crash mid-write: never acked, dropped
                out.append((offset + len(line), decode(line, offset)))
                offset += len(line)
                if len(out) >= limit:
                    break
        return out

    # run ids ---------------------------------------------------------------------------
    def save_id(self, key: str, run_id: str) -> None:
        self.save_ids({key: run_id})

    def save_ids(self, ids: dict[str, str]) -> None:
        with open(self.ids_path, "a") as handle:
            handle.writelines(json.dumps([key, run_id]) + "\n" for key, run_id in ids.items())
            handle.flush()
            os.fsync(handle.fileno())

    def load_ids(self) -> dict[str, str]:
        return self.ids_after(0)[0]

    def ids_after(self, offset: int) -> tuple[dict[str, str], int]:
        """The ids appended after byte `offset` (whole lines only), and the offset read to:
        the file only grows, so a reader asking often reads each line once."""
        ids: dict[str, str] = {}
        try:
            with open(self.ids_path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except OSError:
            return ids, offset
        complete = data[:data.rfind(b"\n") + 1]
        for line in complete.splitlines():
            try:
                key, run_id = json.loads(line)
            except ValueError:
                continue
            ids[key] = run_id
        return ids, offset + len(complete)

    # the sender's state, for `%mlops status` --------------------------------------------
    def write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".state.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    def read_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    # cleanup ---------------------------------------------------------------------------
    def done(self) -> bool:
        return self.size() > 0 and self.acked() >= self.size()

    def remove(self) -> None:
        """Delete a fully acked session; call it while holding its sender lock."""
        if self._log is not None:
            self._log.close()
            self._log = None
        for path in (self.log_path, self.ack_path, self.ids_path, self.state_path,
                     self.sender_log):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.files, ignore_errors=True)
        for lock in self._locks.values():
            Path(lock.lock_file).unlink(missing_ok=True)


def registered_key(run_key: str, name: str) -> str:
    """The ids file's key of the version registered from model `name` of run `run_key`."""
    return f"{run_key}/model/{name}"


def sessions(root: Path) -> Iterator[str]:
    """Session ids with a spool log under `root`."""
    if not Path(root).is_dir():
        return
    for path in sorted(Path(root).glob("*.jsonl")):
        if "." not in path.stem:  # not a quarantine file (`<id>.rejected.jsonl`)
            yield path.stem
