"""Identity of the current process, recorded on runs so a dead kernel's runs can be found."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from jupyter_mlops.steps.mlflow_vocabulary import HOST_TAG, PID_TAG, START_TAG


def _start_ticks(pid: int) -> str:
    """The process start time in clock ticks since boot ('' where /proc is absent).

    Together with the pid it tells a live process apart from a later one that reused the pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


_identity: dict[int, dict[str, str]] = {}


def identity_tags() -> dict[str, str]:
    """Read once per process (a forked child gets its own)."""
    pid = os.getpid()
    if pid not in _identity:
        _identity[pid] = {PID_TAG: str(pid), HOST_TAG: socket.gethostname(),
                          START_TAG: _start_ticks(pid)}
    return dict(_identity[pid])


def is_alive(pid: int, start: str = "") -> bool:
    """Whether the process that had `pid` (and started at `start`, if known) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start and _start_ticks(pid) not in ("", start):
        return False
    state = _state(pid)
    return state not in ("Z", "X")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def run_is_orphaned(tags: dict[str, str]) -> bool:
    """A run recorded by a process on this host that no longer exists."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    return not is_alive(int(tags[PID_TAG]), tags.get(START_TAG, ""))
