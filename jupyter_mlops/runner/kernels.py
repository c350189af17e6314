"""A pool of kernels started ahead of need, and reused once reset when `reuse` allows.

A kernel takes about a second to start and the setup cells' imports often as much again, so the
pool launches kernels before steps need them and, while a kernel boots, asks it (silently, without
touching the user namespace or history) to import the modules the setup cells import.

With `reuse`, a kernel whose step succeeded goes back to the pool after a reset: its namespace,
history and execution count cleared, its working folder restored. Imported modules stay loaded,
which is the point (a step pays no import twice); module-level state a step changed (an option,
a global random seed) is not undone, which is why `fresh_kernels` exists. A kernel whose step
failed, crashed or timed out is never reused.
"""

from __future__ import annotations

import ast
import itertools
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from jupyter_client import KernelManager

from jupyter_mlops.notebook import Cell

KERNEL_NAME = "python3"
ASYNC_CLIENT = "jupyter_client.asynchronous.AsyncKernelClient"
RESET_TIMEOUT = 30.0
WARM_TIMEOUT = 120.0


@dataclass
class Kernel:
    """A started kernel, its manager and the file its stdout/stderr go to."""

    km: KernelManager
    log_path: Path
    log_file: IO[bytes]
    name: str
    started: float = field(default_factory=time.monotonic)
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
    modules.append("jupyter_mlops.runner.serializers")
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


class KernelPool:
    """Kernels for steps: `want_idle` launches ahead of need, `take` hands one out, `release`
    shuts it down in the background, `close` stops every kernel the pool ever started."""

    def __init__(self, cwd: Path, log_dir: Path, warm_code: str = "",
                 reuse: bool = False) -> None:
        self.cwd = Path(cwd)
        self.log_dir = Path(log_dir)
        self.warm_code = warm_code
        self.reuse = reuse
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._target = 0
        self._starter: threading.Thread | None = None
        self._idle: list[Kernel] = []
        self._live: list[Kernel] = []
        self._stoppers: list[threading.Thread] = []
        self._counter = itertools.count(1)
        self._closed = False
        self._starting = False  # the starter is booting and warming a kernel
        self._waiting = False  # a take() waits for that kernel

    def want_idle(self, count: int) -> None:
        """Keep `count` kernels started and waiting; a background thread starts them."""
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
                while not self._closed and len(self._idle) >= self._target:
                    self._wake.wait()
                if self._closed:
                    return
                self._starting = True
            kernel = self._start()
            # One kernel warms at a time: on few cores, parallel warm-ups slow the one needed first.
            self._await_warm(kernel)
            with self._wake:
                self._starting = False
                self._idle.append(kernel)  # after close() too: close() stops the idle ones
                self._wake.notify_all()

    def _await_warm(self, kernel: Kernel) -> None:
        client = kernel._warm_client
        if client is None:
            return
        deadline = time.monotonic() + WARM_TIMEOUT
        while not self._closed and time.monotonic() < deadline:
            try:
                reply = client.get_shell_msg(timeout=0.2)  # type: ignore[attr-defined]
            except queue.Empty:
                if kernel.exit_code is not None:
                    return  # died while booting: the step that takes it reports the crash
                continue
            if reply["parent_header"].get("msg_id") == kernel._warm_msg:
                return

    @property
    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def live_pids(self) -> list[int]:
        """Process ids of every kernel the pool started and has not stopped yet."""
        with self._lock:
            processes = [getattr(k.km.provisioner, "process", None) for k in self._live]
        return [p.pid for p in processes if p is not None]

    def take(self) -> Kernel:
        with self._lock:
            if self._closed:
                raise RuntimeError("the kernel pool is closed")
            if not self._idle and self._starting and not self._waiting:
                self._waiting = True  # the kernel warming now is this step's, not a new one
                while not self._idle and self._starting and not self._closed:
                    self._wake.wait(0.5)
                self._waiting = False
            if self._idle:
                kernel = self._idle.pop(0)  # reset kernels sit first: they are warm
                self._wake.notify_all()  # the starter replaces it
                return kernel
        kernel = self._start()
        self._await_warm(kernel)  # ready, like the pool's: a step's timeout counts from here
        return kernel

    def release(self, kernel: Kernel, reusable: bool = False) -> None:
        """Back to the pool after a reset when allowed; else shut down off the critical path.

        The reset runs in the caller's thread, so the kernel is idle again before the scheduler
        hears that the step finished and looks for a kernel for the next one.
        """
        if reusable and self.reuse and not self._closed and self._reset(kernel):
            with self._wake:
                if not self._closed:
                    self._idle.insert(0, kernel)
                    self._wake.notify_all()
                    return
        thread = threading.Thread(target=self._stop, args=(kernel, False), daemon=True)
        with self._lock:
            self._stoppers.append(thread)
        thread.start()

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

    def kill_all(self) -> None:
        """Kill every live kernel now (Ctrl-C): steps running in them fail at once."""
        with self._lock:
            live = list(self._live)
        for kernel in live:
            kill_process(kernel)

    def close(self, now: bool = False) -> None:
        """Stop idle kernels and wait until every kernel the pool started has exited."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            starter = self._starter
        if starter is not None:
            starter.join()
        with self._lock:
            idle, self._idle = self._idle, []
        for kernel in idle:
            self._stop(kernel, True)
        with self._lock:
            stoppers = list(self._stoppers)
        for thread in stoppers:
            thread.join()
        with self._lock:
            remaining = list(self._live)
        for kernel in remaining:  # only after an interrupt: a step's kernel not yet released
            self._stop(kernel, True)

    def _start(self) -> Kernel:
        name = f"kernel-{next(self._counter)}"
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("wb")
        # papermill's client must be asynchronous: it polls the kernel's liveness while waiting
        # for output, which a blocking client would never let it do (a crash would hang).
        km = KernelManager(kernel_name=KERNEL_NAME, client_class=ASYNC_CLIENT)
        km.start_kernel(cwd=str(self.cwd), stdout=log_file, stderr=log_file)
        kernel = Kernel(km, log_path, log_file, name)
        with self._lock:
            self._live.append(kernel)
        if self.warm_code:
            self._warm(kernel)
        return kernel

    def _warm(self, kernel: Kernel) -> None:
        # Queued on the shell channel before papermill's requests: runs while the kernel idles.
        client = kernel.km.blocking_client()
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        kernel._warm_msg = client.execute(self.warm_code, silent=True, store_history=False)
        kernel._warm_client = client

    def _stop(self, kernel: Kernel, now: bool) -> None:
        try:
            if kernel._warm_client is not None:
                kernel._warm_client.stop_channels()  # type: ignore[attr-defined]
            if kernel.km.has_kernel:
                kernel.km.shutdown_kernel(now=now)
        except Exception:  # noqa: BLE001 - a dead kernel: clean what is left
            kernel.km.cleanup_resources()
        finally:
            kernel.log_file.close()
            with self._lock:
                if kernel in self._live:
                    self._live.remove(kernel)
