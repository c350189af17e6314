"""Real parts the models tests share: an `mlflow server` on 127.0.0.1 (no job runner), started
once per test module and stopped by its pid."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_server import MlflowServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's URI; its SQLite store and artifacts in a folder of the test's own."""
    folder = tmp_path_factory.mktemp("registry_server")
    server = MlflowServer(f"sqlite:///{folder / 'server.db'}", folder)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()
