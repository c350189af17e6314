"""Real parts for the shared-server tests: one private PostgreSQL cluster per session, holding
a migrated MLflow template database, and `mlflow server`s on copies of it (tests/pg_server.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_server import MlflowServer, PostgresCluster, migrated_template

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    cluster.template = migrated_template(cluster, tmp_path_factory.mktemp("pg"))  # type: ignore[attr-defined]
    yield cluster
    cluster.remove()


@pytest.fixture(scope="module")
def new_team_server(pg_cluster: PostgresCluster,
                    tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Callable[[], MlflowServer]]:
    """Starts `mlflow server`s on fresh copies of the migrated database; stopped at the end."""
    started: list[MlflowServer] = []

    def start() -> MlflowServer:
        name = f"mlflow_{next(_names)}"
        url = pg_cluster.create_database(name, template=pg_cluster.template)  # type: ignore[attr-defined]
        server = MlflowServer(url, Path(tmp_path_factory.mktemp(name)))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def team_server(new_team_server: Callable[[], MlflowServer]) -> MlflowServer:
    """One PostgreSQL-backed `mlflow server` with proxied artifacts, shared by a module's tests."""
    return new_team_server()
