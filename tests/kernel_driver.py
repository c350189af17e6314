"""A real IPython kernel driven cell by cell, for tests that follow one notebook session across
cells (the registry's and monitoring's): what each cell showed, as the user would see it."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Said:
    """What a cell showed: its streams, its error line, and its displays (HTML and plain text)."""

    stdout: str = ""
    stderr: str = ""
    error: str = ""
    html: str = ""
    text: str = ""
    display_ids: list[str] = field(default_factory=list)  # of the displays the cell showed


class Kernel:
    """A real IPython kernel (unix sockets: no port race) driven cell by cell."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager

        self.sockets = tempfile.mkdtemp(prefix="mlk")  # short: unix socket paths are bounded
        self.km = KernelManager(kernel_name="python3", transport="ipc",
                                ip=os.path.join(self.sockets, "k"),
                                connection_file=os.path.join(self.sockets, "kernel.json"))
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        # Each display's latest bundle, as a frontend keeps it: an update redraws the display
        # wherever it is, whichever cell was running when it came (a run card's thread).
        self.displays: dict[str, dict[str, Any]] = {}

    def shown(self, said: Said) -> str:
        """The HTML the cell's first display shows now (a run card, redrawn in place)."""
        return self.displays[said.display_ids[0]].get("text/html", "")

    def run(self, code: str, timeout: float = 300) -> Said:
        said = Said()

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["text"].startswith("UsageError: "):
                said.error += content["text"].strip()  # IPython's way of showing one
            elif kind == "stream":
                setattr(said, content["name"], getattr(said, content["name"]) + content["text"])
            elif kind == "error":
                said.error = f"{content['ename']}: {content['evalue']}"
            elif kind in ("display_data", "execute_result", "update_display_data"):
                said.html += content["data"].get("text/html", "")
                said.text += content["data"].get("text/plain", "")
                display_id = content.get("transient", {}).get("display_id")
                if kind != "update_display_data" and display_id:
                    said.display_ids.append(display_id)

        msg_id = self.kc.execute(code)
        deadline = time.monotonic() + timeout
        while True:  # execute_interactive, but seeing every cell's display updates
            msg = self.kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
            display_id = msg["content"].get("transient", {}).get("display_id")
            if display_id and "data" in msg["content"]:
                self.displays[display_id] = msg["content"]["data"]
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            hook(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        while self.kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.1))[
                "parent_header"].get("msg_id") != msg_id:
            pass
        return said

    def ok(self, code: str) -> Said:
        said = self.run(code)
        assert not said.error, f"{code}\n{said}"
        return said

    def stop(self, graceful: bool = False) -> None:
        """Kill the kernel; `graceful`: ask it to shut down, as closing a notebook does, and
        wait while its exit hooks run (the tracking writer hands its spool over)."""
        self.kc.stop_channels()
        self.km.shutdown_wait_time = 120.0 if graceful else self.km.shutdown_wait_time
        self.km.shutdown_kernel(now=not graceful)
        shutil.rmtree(self.sockets, ignore_errors=True)
