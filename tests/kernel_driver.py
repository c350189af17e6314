"""A real IPython kernel driven cell by cell, for tests that follow one notebook session across
cells (the registry's and monitoring's): what each cell showed, as the user would see it."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
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

        self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return said

    def ok(self, code: str) -> Said:
        said = self.run(code)
        assert not said.error, f"{code}\n{said}"
        return said

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        shutil.rmtree(self.sockets, ignore_errors=True)
