"""Fixtures for the widget tests: a recording comm instead of a kernel, and real MLflow
SQLite stores in tmp folders."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm

DATA = Path(__file__).resolve().parents[1] / "data" / "widgets"


@dataclass
class Message:
    comm_id: str
    msg_type: str  # comm_open, comm_msg, comm_close
    data: dict[str, Any]


@dataclass
class Recorder:
    """Every comm message the widgets send, in order, as a frontend would receive them."""

    messages: list[Message] = field(default_factory=list)
    comms: dict[str, RecordingComm] = field(default_factory=dict)

    def opened(self, model_name: str) -> list[Message]:
        return [m for m in self.messages if m.msg_type == "comm_open"
                and m.data.get("state", {}).get("_model_name") == model_name]

    def updates(self, comm_id: str, key: str) -> list[Any]:
        """Values of `key` sent to the frontend in `update` messages of one comm."""
        return [m.data["state"][key] for m in self.messages
                if m.comm_id == comm_id and m.msg_type == "comm_msg"
                and m.data.get("method") == "update" and key in m.data.get("state", {})]

    def receive(self, comm_id: str, state: dict[str, Any]) -> None:
        """A frontend edit (e.g. the user picks rows): an `update` message to the kernel."""
        message = {"content": {"data": {"method": "update", "state": state,
                                        "buffer_paths": []}}, "buffers": []}
        self.comms[comm_id].handle_msg(message)

    def click(self, comm_id: str) -> None:
        """A button press in the frontend: the custom `click` event ipywidgets sends."""
        message = {"content": {"data": {"method": "custom", "content": {"event": "click"}}},
                   "buffers": []}
        self.comms[comm_id].handle_msg(message)


class RecordingComm(BaseComm):
    recorder: Recorder

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        self.recorder.messages.append(Message(self.comm_id, msg_type, data or {}))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Replaces only the comm transport: the widgets' own code runs unchanged."""
    rec = Recorder()

    def create_comm(*args: Any, **kwargs: Any) -> RecordingComm:
        instance = RecordingComm.__new__(RecordingComm)
        instance.recorder = rec
        RecordingComm.__init__(instance, *args, **kwargs)
        rec.comms[instance.comm_id] = instance
        return instance

    monkeypatch.setattr(comm, "create_comm", create_comm)
    yield rec


@dataclass
class Store:
    """A real SQLite MLflow store in a tmp folder; experiments keep their artifacts there."""

    uri: str
    client: Any
    folder: Path

    def experiment(self, name: str) -> str:
        return self.client.create_experiment(name, artifact_location=str(self.folder / name))


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store for the whole run: the first open migrates the schema (seconds)."""
    from jupyter_mlops.widgets.data import resolve_client

    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return Store(uri, resolve_client(uri), folder)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tmp folder as the working directory, holding copies of the test notebooks: nothing
    a test runs writes beside the originals in tests/data."""
    for notebook in DATA.glob("*.ipynb"):
        shutil.copy(notebook, tmp_path / notebook.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def log_run(client: Any, experiment_id: str, name: str, params: dict[str, Any],
            metrics: dict[str, list[float]], status: str = "FINISHED") -> str:
    """A finished run with params and metric histories (one point per step)."""
    run_id = client.create_run(experiment_id, run_name=name).info.run_id
    for key, value in params.items():
        client.log_param(run_id, key, value)
    for key, values in metrics.items():
        for step, value in enumerate(values):
            client.log_metric(run_id, key, value, step=step)
    client.set_terminated(run_id, status)
    return run_id
