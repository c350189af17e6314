"""Where a pipeline run writes: `<out>/runs/<run-id>/` with the executed step notebooks.

Layout of one run (`out` defaults to `.mlops`)::

    <out>/runs/<run-id>/<step>.ipynb       the executed step notebook
    <out>/runs/<run-id>/data/<step>/       the step's output values (serializers)
    <out>/runs/<run-id>/metrics/<step>.json
    <out>/runs/<run-id>/logs/              kernel stderr, one file per kernel
    <out>/runs/<run-id>/run.json           parameters, step states, cache keys; "running"
                                           (with the runner's pid) until the run ends
    <out>/active/<run-id>                  runs not ended yet: a later run checks their pids
    <out>/cache/<key>/                     results reused by later runs
    <out>/cache/reruns/<digest>            inputs of runs a re-run takes all from the cache

Paths come from the run id and step names (DNS-safe by the tag grammar), never from parameter
values. A run id is fresh per run, so two runs at once never share files. A run whose process
died (SIGKILL, a power cut) leaves `run.json` saying "running"; the next run, or `jupyter-mlops
sync`, finds its process gone and marks it failed (`settle_dead_runs`), and removes what its
kernels kept in the system temp folder until the run had a folder (`temp_prefix`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import RunnerError

DEFAULT_OUT = ".mlops"
RUNNING = "running"
ACTIVE = "active"
DEAD = "its process ended without finishing it (killed, or the machine stopped)"
_TEMP_OWNER = re.compile(r"mlops-(\d+)\.(\w+)-")  # what temp_prefix() writes


def new_run_id() -> str:
    """Sortable by start time, unique thanks to the random suffix."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def cache_root(out: str | Path | None = None) -> Path:
    """Where the results that runs under `out` may reuse are kept."""
    return Path(out or DEFAULT_OUT).resolve() / "cache"


@dataclass(frozen=True)
class RunFolder:
    root: Path
    run_id: str
    settled: tuple[str, ...] = ()  # earlier runs found dead and marked failed on creation

    @classmethod
    def create(cls, out: str | Path | None = None,
               summary: dict[str, Any] | None = None) -> RunFolder:
        """A new run folder whose run.json says "running" from the start, with `summary`."""
        base = Path(out or DEFAULT_OUT).resolve()
        settled = settle_dead_runs(base)
        run_id = new_run_id()
        root = base / "runs" / run_id
        try:
            root.mkdir(parents=True, exist_ok=False)  # a clash means a second run: refuse
        except FileExistsError:
            raise
        except OSError as error:  # --out names a file, or a folder the user cannot write
            raise RunnerError(f"cannot make a run folder in {base}: {error.strerror}") from None
        for sub in ("data", "metrics", "logs"):
            (root / sub).mkdir()
        folder = cls(root, run_id, tuple(settled))
        (base / ACTIVE).mkdir(exist_ok=True)
        (base / ACTIVE / run_id).touch()
        folder.write_summary({"run_id": run_id, **(summary or {}), "status": RUNNING,
                              "started": time.time(), "runner": _this_process()})
        return folder

    @property
    def cache_root(self) -> Path:
        return self.root.parent.parent / "cache"

    def notebook(self, step: str) -> Path:
        return self.root / f"{step}.ipynb"

    def data(self, step: str) -> Path:
        return self.root / "data" / step

    def metrics(self, step: str) -> Path:
        return self.root / "metrics" / f"{step}.json"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """Write run.json; once it no longer says "running" the run is off the active list."""
        path = self.root / "run.json"
        staging = path.with_suffix(".json.tmp")
        staging.write_text(json.dumps(summary, indent=1, default=str))
        os.replace(staging, path)
        if summary.get("status") != RUNNING:
            (self.root.parent.parent / ACTIVE / self.run_id).unlink(missing_ok=True)
        return path


def settle_dead_runs(out: str | Path | None = None) -> list[str]:
    """Mark failed the runs under `out` whose run.json says "running" while their process, on
    this machine, is gone; returns their ids."""
    base = Path(out or DEFAULT_OUT).resolve()
    settled = []
    for marker in sorted((base / ACTIVE).glob("*")) if (base / ACTIVE).is_dir() else []:
        folder = RunFolder(base / "runs" / marker.name, marker.name)
        try:
            summary = json.loads((folder.root / "run.json").read_text())
        except (OSError, ValueError):
            marker.unlink(missing_ok=True)  # no run behind it (removed by hand)
            continue
        if summary.get("status") != RUNNING:
            marker.unlink(missing_ok=True)
        elif not _alive(summary.get("runner") or {}):
            folder.write_summary(summary | {"status": "failed", "error": DEAD})
            settled.append(marker.name)
    _remove_dead_runners_temp_files()
    return settled


def temp_prefix() -> str:
    """The start of the names of this process's files in the system temp folder (early kernel
    logs, kernel sockets): its pid and start time, so a later run can tell a dead runner's."""
    return f"mlops-{os.getpid()}.{_started(os.getpid())}-"


def _remove_dead_runners_temp_files() -> None:
    for folder in {Path(tempfile.gettempdir()), Path("/tmp")}:
        for path in folder.glob("mlops-*"):
            owner = _TEMP_OWNER.match(path.name)
            if owner is None or process_alive(int(owner[1]), owner[2]):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": _started(os.getpid())}


def _started(pid: int) -> str | None:
    """The process's start time since boot (Linux), which tells a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(runner: dict[str, Any]) -> bool:
    """Whether the process that wrote a "running" run.json still runs (unknown: assume so)."""
    pid = runner.get("pid")
    if not isinstance(pid, int) or runner.get("host") != socket.gethostname():
        return True  # another machine's run (a shared folder): not ours to judge
    return process_alive(pid, runner.get("since"))


def process_alive(pid: int, since: str | None) -> bool:
    """Whether process `pid`, started at `since` (None: unknown), still runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process holds the pid
    return since in (None, "None") or _started(pid) in (since, None)
