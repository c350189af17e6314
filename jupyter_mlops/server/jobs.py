"""Local pipeline runs started from the UI: each one a child process, with a log file to poll.

A child process, not a thread: cancelling kills its whole process group (papermill's kernels
included), and a crashing run cannot take the server down. The child runs `run_child`, which
prints one progress line per step (the runner's) to the log the panel polls, and writes each
step's state and the run's end as JSON lines to an events file, so the export dialog can
colour its DAG and link the executed step notebooks and the run folder.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.server.errors import ApiError

MAX_LOG_CHUNK = 64_000
MAX_JOBS_KEPT = 50
# `-c`, not `-m` this module: the package imports it, and runpy warns of running a module twice.
_CHILD = ("import sys; from jupyter_mlops.server.jobs import run_child; "
          "sys.exit(run_child(sys.argv[1:]))")


@dataclass
class Job:
    id: str
    api_path: str
    process: subprocess.Popen[bytes]
    log_path: Path
    folder: str = ""  # the notebook's folder: API paths of the run's files are relative to it
    started: float = field(default_factory=time.time)
    ended: float | None = None
    cancelled: bool = False

    @property
    def status(self) -> str:
        code = self.process.poll()
        if code is None:
            return "running"
        if self.ended is None:
            self.ended = time.time()
        if self.cancelled:
            return "cancelled"
        return "succeeded" if code == 0 else "failed"

    def to_dict(self, offset: int | None = 0) -> dict[str, Any]:
        """Status, and the log from `offset` (None: no log, e.g. in a listing)."""
        status = self.status
        log, next_offset = self.read_log(offset) if offset is not None else ("", None)
        steps, run = self.read_events()
        return {"id": self.id, "path": self.api_path, "status": status,
                "returncode": self.process.returncode, "started": self.started,
                "ended": self.ended, "log": log, "offset": next_offset,
                "steps": steps, "run": run}

    def read_events(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Each step's latest state ({status, duration, notebook}) and the runner's own account
        of the run ({run_id, status, duration, folder}) once it ended; paths as API paths."""
        steps: dict[str, Any] = {}
        run = None
        for line in self._event_lines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line the child is still writing
            if "step" in event:
                event["notebook"] = self._api_path(event.get("notebook"))
                steps[event.pop("step")] = event
            else:
                run = dict(event, folder=self._api_path(event.get("folder")))
        return steps, run

    def step_notebook(self, step: str) -> Path | None:
        """The executed notebook of `step` as the runner reported it (None: none yet)."""
        for line in reversed(self._event_lines()):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("step") == step and event.get("notebook"):
                path = Path(event["notebook"])
                inside = path.is_relative_to(Path(self.folder).resolve())  # the run's own file
                return path if inside and path.is_file() else None
        return None

    def _event_lines(self) -> list[str]:
        try:
            return self.log_path.with_suffix(".events").read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []

    def _api_path(self, path: str | None) -> str | None:
        """A file of the run by its API path (the notebook's, relative); None outside it."""
        if not path or not self.folder:
            return None
        relative = os.path.relpath(path, self.folder)
        if relative.startswith(".."):
            return None
        return posixpath.normpath(posixpath.join(posixpath.dirname(self.api_path),
                                                 Path(relative).as_posix()))

    def read_log(self, offset: int) -> tuple[str, int]:
        with open(self.log_path, "rb") as file:
            file.seek(max(offset, 0))
            chunk = file.read(MAX_LOG_CHUNK)
        return chunk.decode("utf-8", errors="replace"), max(offset, 0) + len(chunk)


class Jobs:
    """The local runs this server started, by id."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._folder: Path | None = None  # the logs, made on the first run, removed at stop

    def start(self, api_path: str, real_path: str, parameters: dict[str, Any],
              tracking_uri: str | None) -> Job:
        job_id = uuid.uuid4().hex[:12]
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="jupyter-mlops-jobs-"))
        log_path = self._folder / f"{job_id}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if tracking_uri:
            env["MLFLOW_TRACKING_URI"] = tracking_uri
        argv = [sys.executable, "-c", _CHILD, real_path, json.dumps(parameters),
                str(log_path.with_suffix(".events"))]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=os.path.dirname(real_path),
                                       env=env, start_new_session=True)
        job = self._jobs[job_id] = Job(job_id, api_path, process, log_path,
                                       os.path.dirname(real_path))
        self._forget_old()
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job-not-found", "no such local run")
        return job

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.process.poll() is None:
            job.cancelled = True
            _kill_group(job.process)
        return job

    def stop_all(self) -> None:
        """Cancel the runs still going and remove their logs (the server is stopping)."""
        for job in self._jobs.values():
            if job.process.poll() is None:
                job.cancelled = True
                _kill_group(job.process)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.process.poll() is not None]
        for job in finished[: max(0, len(self._jobs) - MAX_JOBS_KEPT)]:
            del self._jobs[job.id]


class StepEvents:
    """A runner Listener writing each step's state as a JSON line, flushed at once."""

    def __init__(self, path: str | None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, event: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()

    def started(self, step: str) -> None:
        self.write({"step": step, "status": "running"})

    def finished(self, result: Any) -> None:
        self.write({"step": result.name, "status": result.status,
                    "duration": round(result.duration, 3), "reason": result.reason or None,
                    "notebook": _absolute(result.notebook)})


def run_child(argv: list[str]) -> int:
    """The child process: `NOTEBOOK PARAMETERS_JSON [EVENTS_FILE]`. The exit code is the
    runner's: 0 ok, 1 a step failed (or the notebook or a value was refused), 130 killed."""
    notebook, parameters = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    events = StepEvents(argv[2] if len(argv) > 2 else None)
    print(f"local run of {notebook.rsplit('/', 1)[-1]} started", flush=True)
    from jupyter_mlops.errors import MlopsError
    from jupyter_mlops.runner import RunOptions, run_pipeline

    try:
        result = run_pipeline(notebook, RunOptions(parameters=parameters, stream=sys.stdout,
                                                   listeners=(events,)))
    except MlopsError as error:
        print(f"error: {error}", flush=True)
        return 1
    events.write({"run_id": result.run_id, "status": result.status,
                  "duration": round(result.duration, 3), "folder": _absolute(result.run_dir)})
    print(f"local run finished: {result.status}", flush=True)
    return result.exit_code


def notebook_html(path: Path) -> str:
    """An executed notebook as a static page to read (nbconvert's HTML export)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    return str(body)


def _absolute(path: Path | None) -> str | None:
    """The child runs in the notebook's folder; the server maps paths from it absolute."""
    return str(Path(path).resolve()) if path else None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the run's process group, SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
