"""A pool of kernels started ahead of need, and reused once reset when `reuse` allows.

A kernel takes about a second to start and the setup cells' imports often as much again, so the
pool launches kernels before steps need them and, while a kernel boots, asks it (silently, without
touching the user namespace or history) to import the modules the setup cells import.

With `reuse`, a kernel whose step succeeded goes back to the pool after a reset: its namespace,
history and execution count cleared, its working folder restored. Imported modules stay loaded,
which is the point (a step pays no import twice); module-level state a step changed (an option,
a global random seed) is not undone, which is why `fresh_kernels` exists. A kernel whose step
failed, crashed or timed out is never reused.

A kernel that dies at start (a broken environment, a crash while importing) is seen within a
fraction of a second, while the pool waits for its warm-up answer, and replaced: up to
`START_ATTEMPTS` kernels, each replacement told to the run's progress, then the step fails
naming the kernel and its last output. Local kernels talk over unix sockets (ZMQ's `ipc`
transport) in a temporary folder of their own: TCP ports are picked by the runner and bound
later by the kernel, and on a busy machine another process may take one meanwhile.
"""

from __future__ import annotations

import ast
import itertools
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING

from jupyter_mlops.errors import KernelStartFailed
from jupyter_mlops.runner.rundir import temp_prefix

if TYPE_CHECKING:  # imported when needed: a run served from the cache starts no kernel
    from jupyter_client import KernelManager

    from jupyter_mlops.notebook import Cell

KERNEL_NAME = "python3"
ASYNC_CLIENT = "jupyter_client.asynchronous.AsyncKernelClient"
RESET_TIMEOUT = 30.0
WARM_TIMEOUT = 120.0
START_ATTEMPTS = 3  # kernels tried for one start before the step fails
_SOCKET_PATH_MAX = 100  # unix socket paths are limited to 107 bytes on Linux


@dataclass(eq=False)
class Kernel:
    """A started kernel, its manager and the file its stdout/stderr go to."""

    km: KernelManager
    log_path: Path
    log_file: IO[bytes]
    name: str
    runtime_dir: Path | None = None  # its connection file and sockets, removed when it stops
    started: float = field(default_factory=time.monotonic)
    ready: bool = False  # answered its warm-up (or, slow, was alive): fit for a step
    _warm_client: object | None = field(default=None, repr=False)
    _warm_msg: str | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int | None:
        process = getattr(self.km.provisioner, "process", None)
        return process.poll() if process is not None else None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if "without encryption" not in line]
        return "\n".join(kept[-lines:])


def kill_process(kernel: Kernel) -> None:
    """SIGKILL the kernel's process group and touch none of its sockets: a papermill client in
    another thread may be polling them, and closing them under it (which `shutdown_kernel`
    does) can hang the ZMQ context. The client sees the death; the pool shuts down after."""
    provisioner = kernel.km.provisioner
    process = getattr(provisioner, "process", None)
    if process is None or process.poll() is not None:
        return
    try:
        pgid = getattr(provisioner, "pgid", None)
        if pgid:
            os.killpg(pgid, signal.SIGKILL)  # the kernel leads its own session
        else:
            process.kill()
    except OSError:
        pass  # exited meanwhile


def _kill_and_reap(kernel: Kernel) -> None:
    kill_process(kernel)
    process = getattr(kernel.km.provisioner, "process", None)
    if process is not None:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # shutdown_kernel tries again


def warm_imports(cells: list[Cell]) -> str:
    """Code importing, without binding names, every module the given cells import."""
    modules: list[str] = []
    for cell in cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    tops = {name.split(".")[0] for name in modules}
    # What the generated cells load: the serializers, and the libraries behind their formats.
    modules.append("jupyter_mlops.steps.serializers")
    modules += ["pyarrow.parquet"] if "pandas" in tops else []
    modules += ["joblib"] if "sklearn" in tops else []
    names = list(dict.fromkeys(modules))
    # Failures are left to the real cell, which reports them where the user wrote the import.
    return ("def _mlops_warm(names):\n"
            "    import importlib\n"
            "    for name in names:\n"
            "        try:\n"
            "            importlib.import_module(name)\n"
            "        except Exception:\n"
            "            pass\n"
            f"_mlops_warm({names!r})\n"
            "del _mlops_warm\n")


class KernelState(Enum):
    """Where a kernel of the pool is in its life; the pool keeps one state per kernel."""

    LAUNCHED = "launched"  # booting, not yet sent its warm-up: `launch` started it early
    WARMING = "warming"  # sent its warm-up by the starter thread; idle once it answers
    IDLE = "idle"  # warm (or reset), waiting for a step
    BUSY = "busy"  # a step's (or its starting thread's): started or warmed for it, running it
    STOPPING = "stopping"  # shut down in the background; leaves the pool once it has exited


LAUNCHED, WARMING, IDLE, BUSY, STOPPING = KernelState


class KernelPool:
    """Kernels for steps: `launch` boots some at once, `want` keeps some started ahead of
    need, `take` hands one out, `release` resets it for reuse or shuts it down in the
    background, `close` (or leaving `with KernelPool(...) as pool`) stops every kernel the pool
    started. Its one owner is `run_pipeline`.

    Every kernel started and not yet exited is a key of one map, kernel -> KernelState. The
    map's order is the order kernels are handed on: launched ones oldest first, idle ones
    reset ones first (they are warm), then in the order they became idle.

    `log_dir` and `warm_code` may be set after kernels were launched: until the run has a
    folder, kernel logs go to a temporary folder, whose files `close` moves into `log_dir`.
    """

    def __init__(self, cwd: Path, log_dir: Path | None = None, warm_code: str = "",
                 reuse: bool = False, report: Callable[[str], None] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.cwd = Path(cwd)
        self.env = env or {}  # set in the kernels' environment, beside the runner's own
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.warm_code = warm_code
        self.reuse = reuse
        self.report = report  # told when a kernel died at start and is replaced
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._kernels: dict[Kernel, KernelState] = {}
        self._target = 0  # kernels wanted for steps, those running steps included (reuse)
        self._starter: threading.Thread | None = None
        self._start_error: KernelStartFailed | None = None  # the starter gave up
        self._closed = False
        self._counter = itertools.count(1)
        self._staging: Path | None = None  # kernel logs written before the run had a folder

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the map --------------------------------------------------------------------------

    def _set(self, kernel: Kernel, state: KernelState, first: bool = False) -> None:
        """Move `kernel` to `state`, at the end of the map or, `first`, at its front.
        The caller holds the lock."""
        self._kernels.pop(kernel, None)
        if first:
            self._kernels = {kernel: state, **self._kernels}
        else:
            self._kernels[kernel] = state

    def _first(self, state: KernelState) -> Kernel | None:
        return next((k for k, s in self._kernels.items() if s is state), None)

    def _count(self, state: KernelState) -> int:
        return sum(1 for s in self._kernels.values() if s is state)

    @property
    def idle_count(self) -> int:
        with self._lock:
            return self._count(IDLE)

    def live_pids(self) -> list[int]:
        """Process ids of every kernel the pool started and has not stopped yet."""
        with self._lock:
            processes = [getattr(k.km.provisioner, "process", None) for k in self._kernels]
        return [p.pid for p in processes if p is not None]

    # --- starting ahead of need -----------------------------------------------------------

    def launch(self, count: int = 1, warm: bool = False) -> None:
        """Start `count` kernels now, before the warm-up code may be known: they boot while
        the caller reads the notebook, and are warmed when the pool first hands them on, or,
        `warm`, sent their warm-up now (it runs as soon as they have booted)."""
        for _ in range(count):
            kernel = self._spawn(BUSY)  # the launching thread's until its process is started
            if warm:
                self._warm(kernel)
            with self._lock:
                if self._kernels.get(kernel) is BUSY:
                    self._set(kernel, LAUNCHED)

    def want(self, count: int) -> None:
        """Keep `count` kernels for steps, started ahead of need by a background thread. With
        `reuse`, kernels held by steps count among them: they are handed on once reset."""
        with self._wake:
            self._target = count
            if count > 0 and self._starter is None and not self._closed:
                self._starter = threading.Thread(target=self._start_loop, daemon=True,
                                                 name="mlops-kernel-starter")
                self._starter.start()
            self._wake.notify_all()

    def _start_loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and self._short() <= 0:
                    self._wake.wait()
                if self._closed:
                    return
            try:
                # The others wanted boot meanwhile, as many as there are other cores, and are
                # sent their warm-up at once: a kernel warmed only after the first one was not
                # ready when a second branch became ready, which then waited for the first.
                kernel = self._start_alive(
                    WARMING, lambda: self.launch(self._unlaunched(), warm=True))
            except KernelStartFailed as error:
                with self._wake:  # take() raises it: starting more would only fail again
                    self._start_error = error
                    self._wake.notify_all()
                return
            with self._wake:
                if self._kernels.get(kernel) is WARMING:  # else a take() claimed it: busy
                    self._set(kernel, IDLE)  # after close() too: close() stops the idle ones
                self._wake.notify_all()

    def _short(self) -> int:
        """Kernels wanted beyond the idle ones and, with reuse, those steps hold (claimed while
        warming, or running a step). Counted from the kernels' states, not from the steps the
        scheduler started: a started step claims its kernel only once papermill is imported."""
        with self._lock:
            held = self._count(BUSY) if self.reuse else 0
            return self._target - self._count(IDLE) - held

    def _unlaunched(self) -> int:
        """Kernels wanted that are neither idle, held, warming nor booting, up to the cores
        left beside the one warming."""
        with self._lock:
            launched = self._count(LAUNCHED)
            short = self._short() - self._count(WARMING) - launched
        return max(0, min(short, (os.cpu_count() or 1) - 1 - launched))

    def _await_warm(self, kernel: Kernel) -> bool:
        """Wait for the answer to the warm-up request; False if the kernel died first."""
        client = kernel._warm_client
        if client is None:
            return kernel.exit_code is None
        deadline = time.monotonic() + WARM_TIMEOUT
        while not self._closed and time.monotonic() < deadline:
            try:
                reply = client.get_shell_msg(timeout=0.2)  # type: ignore[attr-defined]
            except queue.Empty:
                if kernel.exit_code is not None:
                    return False
                continue
            if reply["parent_header"].get("msg_id") == kernel._warm_msg:
                return True
        return kernel.exit_code is None  # closing, or slow: the step that takes it judges

    # --- handing out and taking back ------------------------------------------------------

    def take(self) -> Kernel:
        with self._wake:
            while True:
                if self._closed:
                    raise RuntimeError("the kernel pool is closed")
                kernel = self._first(IDLE)  # reset kernels sit first: they are warm
                if kernel is not None:
                    self._wake.notify_all()  # the starter replaces it
                    if kernel.exit_code is None:
                        self._set(kernel, BUSY)
                        return kernel
                    self._say(f"{kernel.name} died while idle ({_death(kernel)}); replacing it")
                    self._stop_in_background(kernel, now=True)
                    continue
                warming = self._first(WARMING)
                if warming is None:
                    break
                # The kernel warming now is this step's, not a new one: claimed, so that
                # another step starting meanwhile starts its own.
                self._set(warming, BUSY)
                if self._await_claimed(warming):
                    return warming
            if self._start_error is not None:
                raise self._start_error
        # Ready, like the pool's: a step's timeout counts from here.
        return self._start_alive(BUSY)

    def _await_claimed(self, kernel: Kernel) -> bool:
        """Wait (holding the lock's condition) until the starter has warmed the claimed
        kernel; False if it died, the pool closed, or a reset kernel went idle first (then
        the claim is given back)."""
        while not self._closed and self._kernels.get(kernel) is BUSY and not kernel.ready:
            if self._first(IDLE) is not None:
                self._set(kernel, WARMING)
                return False
            self._wake.wait(0.5)
        return not self._closed and self._kernels.get(kernel) is BUSY

    def release(self, kernel: Kernel, reusable: bool = False) -> None:
        """Back to the pool after a reset when allowed; else shut down off the critical path.

        The reset runs in the caller's thread, so the kernel is idle again before the scheduler
        hears that the step finished and looks for a kernel for the next one.
        """
        if reusable and self.reuse and not self._closed and self._reset(kernel):
            with self._wake:
                if not self._closed and self._kernels.get(kernel) is BUSY:
                    self._set(kernel, IDLE, first=True)
                    self._wake.notify_all()
                    return
        self._stop_in_background(kernel, now=False)

    def _reset(self, kernel: Kernel) -> bool:
        """Clear the kernel's namespace and history and restore its folder; False on failure."""
        code = (f"import os as _mlops_os\n_mlops_os.chdir({str(self.cwd)!r})\n"
                "get_ipython().reset(new_session=True)\n")
        client = kernel.km.blocking_client()
        try:
            client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
            msg_id = client.execute(code, silent=True, store_history=False)
            while True:
                reply = client.get_shell_msg(timeout=RESET_TIMEOUT)
                if reply["parent_header"].get("msg_id") == msg_id:
                    return bool(reply["content"].get("status") == "ok")
        except Exception:  # noqa: BLE001 - an unanswering kernel is simply not reused
            return False
        finally:
            client.stop_channels()

    # --- stopping -------------------------------------------------------------------------

    def kill_all(self) -> None:
        """Kill every live kernel now (Ctrl-C): steps running in them fail at once."""
        with self._lock:
            live = list(self._kernels)
        for kernel in live:
            kill_process(kernel)

    def close(self) -> None:
        """Stop every kernel the pool started, all at once, and wait until they have exited.
        Calling it again does nothing."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            starter = self._starter
        if starter is not None:
            starter.join()
        with self._wake:
            while self._kernels:
                # Idle and never-used kernels; after an interrupt, the steps' kernels too.
                for kernel, state in list(self._kernels.items()):
                    if state is not STOPPING:
                        self._stop_in_background(kernel, now=True)
                self._wake.wait(1.0)
        self._file_staged_logs()

    def _stop_in_background(self, kernel: Kernel, now: bool) -> None:
        with self._lock:
            if self._kernels.get(kernel) in (None, STOPPING):
                return  # stopped already, or being stopped
            self._set(kernel, STOPPING)
            self._wake.notify_all()  # a take() that claimed it
        threading.Thread(target=self._stop, args=(kernel, now), daemon=True,
                         name=f"mlops-stop-{kernel.name}").start()

    def _stop(self, kernel: Kernel, now: bool) -> None:
        try:
            if kernel._warm_client is not None:
                kernel._warm_client.stop_channels()  # type: ignore[attr-defined]
            if now:
                _kill_and_reap(kernel)  # shutdown_kernel would poll for the exit every 0.1 s
            if kernel.km.has_kernel:
                kernel.km.shutdown_kernel(now=now)
        except Exception:  # noqa: BLE001 - a dead kernel: clean what is left
            kernel.km.cleanup_resources()
        finally:
            kernel.log_file.close()
            if kernel.runtime_dir is not None:
                shutil.rmtree(kernel.runtime_dir, ignore_errors=True)
            with self._wake:
                self._kernels.pop(kernel, None)
                self._wake.notify_all()

    def _file_staged_logs(self) -> None:
        """Into the run's `logs/`, or removed when the run never got a folder."""
        with self._lock:
            staging, self._staging = self._staging, None
        if staging is None:
            return
        if self.log_dir is not None and self.log_dir.is_dir():
            for path in staging.iterdir():
                shutil.move(path, self.log_dir / path.name)
        shutil.rmtree(staging, ignore_errors=True)

    # --- starting one ---------------------------------------------------------------------

    def _start_alive(self, state: KernelState,
                     booted: Callable[[], None] | None = None) -> Kernel:
        """A warmed kernel in `state` (WARMING: the starter's, BUSY: the caller's): one that
        dies before answering its warm-up is replaced, up to START_ATTEMPTS kernels in all.
        `booted` runs once the first one is sent its warm-up."""
        deaths: list[str] = []
        tail = ""
        kernel = self._start(state)
        if booted is not None:
            booted()
        for attempt in range(1, START_ATTEMPTS + 1):
            if self._await_warm(kernel):
                with self._wake:
                    kernel.ready = True
                    self._wake.notify_all()  # a take() that claimed it
                return kernel
            deaths.append(f"{kernel.name}: {_death(kernel)}")
            tail = kernel.log_tail()
            if self._closed or attempt == START_ATTEMPTS:
                self._stop_in_background(kernel, now=True)
                break
            last = tail.splitlines()[-1:] or [""]
            self._say(f"{kernel.name} ({KERNEL_NAME}) died at start ({_death(kernel)}"
                      f"{': ' + last[0] if last[0] else ''}); starting another kernel "
                      f"(attempt {attempt + 1} of {START_ATTEMPTS})")
            # The replacement is in the pool before the dead one leaves it: a take() that
            # claimed the dead one finds it to claim instead.
            dead, kernel = kernel, self._start(state)
            self._stop_in_background(dead, now=True)
        raise KernelStartFailed(KERNEL_NAME, deaths, tail)

    def _say(self, text: str) -> None:
        if self.report is not None:
            try:
                self.report(text)
            except Exception:  # noqa: BLE001 - reporting must not stop the run
                pass

    def _start(self, state: KernelState) -> Kernel:
        """A launched kernel if one waits, else a new one, put in `state`; sent the warm-up
        code, or a kernel_info request, whose answer shows it got through its start."""
        with self._lock:
            kernel = self._first(LAUNCHED)
            if kernel is not None:
                self._set(kernel, state)
        if kernel is None:
            kernel = self._spawn(state)
        if kernel._warm_msg is None:  # else launched with its warm-up sent
            self._warm(kernel)
        return kernel

    def _spawn(self, state: KernelState) -> Kernel:
        from jupyter_client import KernelManager

        # papermill's client must be asynchronous: it polls the kernel's liveness while waiting
        # for output, which a blocking client would never let it do (a crash would hang).
        runtime = _runtime_dir()
        sockets = {} if runtime is None else {
            "transport": "ipc", "connection_file": str(runtime / "kernel.json"),
            "ip": str(runtime / "k")}
        km = KernelManager(kernel_name=KERNEL_NAME, client_class=ASYNC_CLIENT, **sockets)
        name = f"kernel-{next(self._counter)}"
        log_path = self._log_folder() / f"{name}.log"
        kernel = Kernel(km, log_path, log_path.open("wb"), name, runtime)
        with self._lock:  # known before it starts: a Ctrl-C from here on still stops it
            self._set(kernel, state)
        km.start_kernel(cwd=str(self.cwd), stdout=kernel.log_file, stderr=kernel.log_file,
                        env={**os.environ, **self.env})
        return kernel

    def _log_folder(self) -> Path:
        """The run's `logs/` once it is known, else the pool's temporary folder."""
        log_dir = self.log_dir  # read once: the run may set it meanwhile
        if log_dir is not None:
            return log_dir
        with self._lock:
            if self._staging is None:
                self._staging = Path(tempfile.mkdtemp(prefix=f"{temp_prefix()}logs-"))
            return self._staging

    def _warm(self, kernel: Kernel) -> None:
        # Queued on the shell channel before papermill's requests: runs while the kernel idles.
        client = kernel.km.blocking_client()
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        kernel._warm_msg = (client.execute(self.warm_code, silent=True, store_history=False)
                            if self.warm_code else client.kernel_info())
        kernel._warm_client = client


def _runtime_dir() -> Path | None:
    """A private folder for a kernel's connection file and unix sockets; None where unix
    sockets are not an option (Windows) and the kernel uses TCP."""
    if os.name != "posix":
        return None
    prefix = f"{temp_prefix()}ipc-"
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if len(str(folder)) + len("/k-99999") > _SOCKET_PATH_MAX:  # a long TMPDIR
        folder.rmdir()
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    return folder


def _death(kernel: Kernel) -> str:
    from jupyter_mlops.runner.failures import describe_exit

    return describe_exit(kernel.exit_code)
