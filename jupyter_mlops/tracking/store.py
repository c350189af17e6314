"""Where runs go: the tracking URI, the spool folder, and opening the store safely.

The embedded default is a SQLite MLflow store `mlflow.db` in the working directory with its
artifacts in `mlruns/` beside it. MLflow migrates a new database's schema on first use and
that migration races: processes starting together on a fresh file corrupt it. So the first
open in each process happens under a file lock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

DEFAULT_DB = "mlflow.db"
SPOOL_ENV = "JUPYTER_MLOPS_SPOOL_DIR"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else the SQLite store in the working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return uri or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:"):
        return None
    path = unquote(urlparse(uri).path)
    # sqlite:///rel.db -> "/rel.db" is relative; sqlite:////abs.db -> "//abs.db" is absolute.
    path = path[1:] if path.startswith("/") else path
    return Path(path).resolve() if path else None


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite database (MLflow's UI opens the pair as is)."""
    db = sqlite_path(uri)
    return str(db.parent / "mlruns") if db else None


def view_hint(uri: str) -> str:
    """How a person looks at the runs of `uri`: a server's own page, else `mlflow ui` on it."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)}"


def spool_root(uri: str) -> Path:
    """Spool under the store's folder for SQLite, else ~/.jupyter_mlops/spool/<uri hash>."""
    if os.environ.get(SPOOL_ENV):
        return Path(os.environ[SPOOL_ENV])
    db = sqlite_path(uri)
    if db is not None:
        return db.parent / ".jupyter_mlops" / "spool"
    digest = hashlib.sha1(uri.encode()).hexdigest()[:12]
    return Path.home() / ".jupyter_mlops" / "spool" / digest


def _http_defaults() -> None:
    # MLflow retries an unreachable server for minutes by default; the writer has its own
    # retry and spool, so keep each attempt short. Only when the user has not chosen.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def open_client(uri: str) -> Any:
    """An MlflowClient on `uri` whose tracking and registry schemas are ready (imports mlflow)."""
    _http_defaults()
    from mlflow import MlflowClient

    db = sqlite_path(uri)
    if db is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    from filelock import FileLock

    # The one-time schema creation logs at INFO from a background thread into the cell.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db) + ".lock", timeout=300):
        # The client opens the store eagerly: creating it is what migrates, so inside the lock.
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)  # the registry's store too
    return client
