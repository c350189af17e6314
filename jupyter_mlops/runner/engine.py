"""A papermill engine that executes a notebook in a kernel the runner started beforehand.

papermill's own nbclient engine starts a kernel per notebook; this one takes the pool's kernel
(`km=`), executes with papermill's client and closes its channels after, leaving the kernel to
the pool. Two costs papermill pays per notebook are cut, as they add up over many small steps:

- connecting waits for 0.2 s of silence on IOPub (jupyter_client's `wait_for_ready`); here the
  client waits for the kernel's `idle` answer to its own `kernel_info` request instead;
- the output notebook is written around every cell; here at the start, at the end (papermill
  writes it then, failed or not) and at most every `SAVE_EVERY` seconds in between, so a long
  step still shows its progress.

A step's outputs are kept in memory (and in its notebook) up to `settings.STEP_OUTPUT_CAP` bytes;
beyond, its printed text goes to a log file in the run folder, which a note in the notebook names,
and rich outputs are dropped (their text goes to the log). Error outputs are always kept. So a
step that prints gigabytes leaves the runner's memory and the step notebook bounded.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_core.utils import run_sync
from nbformat import NotebookNode
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

from jupyter_mlops import settings

ENGINE_NAME = "mlops-pooled"
SAVE_EVERY = 5.0  # seconds between writes of the output notebook while a step runs
IOPUB_WAIT = 0.5  # seconds to wait for the kernel_info's idle status before asking again


class SparseSaves(NotebookExecutionManager):
    """Writes the output notebook at the start, at the end and every SAVE_EVERY seconds;
    tells `on_cell` of each cell as it starts (the runner's progress says where a step is)."""

    _force = True
    on_cell: Callable[[Any], None] | None = None

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        super().cell_start(cell, cell_index, **kwargs)
        if self.on_cell is not None:
            self.on_cell(cell)

    def save(self, **kwargs: Any) -> None:
        since = time.monotonic() - getattr(self, "_saved_at", float("-inf"))
        if self._force or since >= SAVE_EVERY:
            super().save(**kwargs)
            self._saved_at = time.monotonic()
            self._force = False

    def notebook_complete(self, **kwargs: Any) -> None:
        self._force = True
        super().notebook_complete(**kwargs)


class PooledClient(PapermillNotebookClient):
    output_log: Path | None = None  # where outputs beyond the cap go
    _kept = 0  # bytes of outputs kept so far
    _noted: frozenset[int] = frozenset()  # cells whose outputs say where the rest went

    @functools.cached_property
    def _cap(self) -> int:
        """Bytes of outputs kept in the step's notebook."""
        return settings.STEP_OUTPUT_CAP.get()

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> Any:
        """nbclient's, within the cap: beyond it, text goes to `output_log`."""
        kind, content = msg["msg_type"], msg.get("content", {})
        room = self._cap - self._kept
        if kind == "error" or self.output_hook_stack[msg["parent_header"].get("msg_id")]:
            return super().output(outs, msg, display_id, cell_index)
        if kind == "stream":
            text = str(content.get("text", ""))
            if len(text) > room:
                self._divert(outs, cell_index, text[max(room, 0):])
                if room <= 0:
                    return None
                msg = {**msg, "content": {**content, "text": text[:room]}}
            self._kept += min(len(text), max(room, 0))
            return super().output(outs, msg, display_id, cell_index)
        size = len(str(content.get("data", "")))
        if size > room:
            self._divert(outs, cell_index,
                         str(content.get("data", {}).get("text/plain", "")) + "\n")
            return None
        self._kept += size
        return super().output(outs, msg, display_id, cell_index)

    def _divert(self, outs: list[Any], cell_index: int, text: str) -> None:
        log = self.output_log
        if log is not None:
            with open(log, "a", encoding="utf-8", errors="replace") as stream:
                stream.write(text)
        if cell_index not in self._noted:
            self._noted |= {cell_index}
            where = f"the rest is in {log}" if log is not None else "the rest was not kept"
            outs.append(NotebookNode(output_type="stream", name="stderr", text=(
                f"\n[jupyter-mlops: this step's output passed {self._cap:,} bytes; {where}]\n")))

    async def async_start_new_kernel_client(self) -> Any:
        self.kc = self.km.client()
        await _maybe_await(self.kc.start_channels())
        try:
            await _wait_for_ready(self.kc, self.startup_timeout)
        except Exception:
            self.kc.stop_channels()
            raise
        self.kc.allow_stdin = False
        return self.kc

    # nbclient binds the sync wrapper to its own coroutine: bind it to this one.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)


async def _wait_for_ready(kc: Any, timeout: float) -> None:
    """Until the kernel answered `kernel_info` on shell and reported idle for it on IOPub
    (which proves the IOPub subscription is live, so no output of the first cell is lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg_id = kc.kernel_info()
        if await _reply(kc, msg_id, 1.0) and await _idle(kc, msg_id, IOPUB_WAIT):
            return
        if not await _maybe_await(kc.is_alive()):
            raise RuntimeError("Kernel died before replying to kernel_info")
    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


async def _reply(kc: Any, msg_id: str, wait: float) -> bool:
    return await _await_msg(kc.shell_channel, msg_id, wait, lambda msg: True)


async def _idle(kc: Any, msg_id: str, wait: float) -> bool:
    return await _await_msg(kc.iopub_channel, msg_id, wait, lambda msg: (
        msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"))


async def _await_msg(channel: Any, msg_id: str, wait: float,
                     accept: Callable[[dict[str, Any]], bool]) -> bool:
    """True once `channel` brings a message answering `msg_id` that `accept` takes."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await channel.get_msg(timeout=left)
        except Empty:
            return False
        if msg["parent_header"].get("msg_id") == msg_id and accept(msg):
            return True
    return False


async def _maybe_await(value: Any) -> Any:
    return await value if hasattr(value, "__await__") else value


class PooledKernelEngine(NBClientEngine):
    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: Any = None,
                         progress_bar: bool = True, log_output: bool = False,
                         autosave_cell_every: int = 30,
                         on_cell: Callable[[Any], None] | None = None, **kwargs: Any) -> Any:
        nb_man = SparseSaves(nb, output_path=output_path, progress_bar=progress_bar,
                             log_output=log_output, autosave_cell_every=autosave_cell_every)
        nb_man.on_cell = on_cell
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None,
                                 start_timeout: int = 60, execution_timeout: float | None = None,
                                 km: Any = None, output_log: Path | None = None,
                                 **kwargs: Any) -> Any:
        client = PooledClient(
            nb_man, km=km, timeout=execution_timeout, startup_timeout=start_timeout,
            kernel_name=kernel_name, log_output=log_output, stdout_file=stdout_file,
            stderr_file=stderr_file)
        client.output_log = output_log
        try:
            return client.execute()
        finally:
            if client.kc is not None:
                client.kc.stop_channels()


papermill_engines.register(ENGINE_NAME, PooledKernelEngine)
