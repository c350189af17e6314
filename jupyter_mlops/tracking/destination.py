"""Where runs go: the tracking URI, the spool folder, and opening the store safely.

The embedded default is a SQLite MLflow store `mlflow.db` in the working directory with its
artifacts in `mlruns/` beside it. MLflow migrates a new database's schema on first use and
that migration races: processes starting together on a fresh file corrupt it, and a disk
that fills meanwhile leaves it half made. So a new store is migrated under another name and
renamed into place, under a file lock; a ready store is opened without one (a read writes
nothing beside it).

A database server's store (postgresql://, mysql://) is checked before MLflow opens it: MLflow
retries a failed connection for about 100 s, and it creates its schema in any database that
lacks it, a wrong one too. Messages name every store by `masked(uri)`, never with its password.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from jupyter_mlops import settings
from jupyter_mlops.errors import StoreError, did_you_mean

DEFAULT_DB = "mlflow.db"
DEFAULT_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")  # SQLAlchemy stores MLflow opens itself
# The schemes MLflow's tracking store registry knows (mlflow.tracking._tracking_service.utils),
# besides a plain path and plugins' (the `mlflow.tracking_store` entry points).
STORE_SCHEMES = ("sqlite", "http", "https", *DATABASE_SCHEMES, "file", "databricks",
                 "databricks-uc", "uc")
CONNECT_TIMEOUT = "5"  # seconds for a database connection (libpq's default is none)


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else the SQLite store in the working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return checked_uri(uri, "MLFLOW_TRACKING_URI") if uri else \
        f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def checked_uri(uri: str, variable: str | None = None) -> str:
    """`uri` if MLflow has a store for its scheme; else a StoreError naming it (and the
    `variable` it came from), now: the sender would retry a store that can never open, as if
    it were down."""
    scheme = urlsplit(uri).scheme.lower().split("+", 1)[0]
    if len(scheme) <= 1 or scheme in STORE_SCHEMES or scheme in _plugin_schemes():
        return uri  # a path (or a Windows drive letter) is MLflow's file store
    hint = did_you_mean(scheme, STORE_SCHEMES)
    named = f"{variable}={masked(uri)!r}" if variable else f"the store {masked(uri)!r}"
    raise StoreError(f"{named}: MLflow has no store for the scheme "
                     f"{scheme!r}{'; ' + hint if hint else ''} (MLflow takes sqlite:///PATH, "
                     "http(s)://HOST:PORT, postgresql://, mysql://, mssql://, file:PATH)")


def _plugin_schemes() -> set[str]:
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group="mlflow.tracking_store")}


def masked(uri: str) -> str:
    """`uri` with its password as ***: how every message and page names a store."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


def database_uri(uri: str) -> bool:
    """A database server MLflow's SQLAlchemy store opens itself (not SQLite, not a server)."""
    return uri.split(":", 1)[0].split("+", 1)[0] in DATABASE_SCHEMES


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
        return f"open {masked(uri)}"
    return f"mlflow ui --backend-store-uri {shlex.quote(masked(uri))}"


def ui_url(uri: str | None) -> str:
    """The MLflow UI that shows the runs of `uri`: JUPYTER_MLOPS_UI_URL when set, else the
    tracking server itself for an http(s) store, else where `mlflow ui` serves."""
    server = uri if uri and uri.startswith(("http://", "https://")) else None
    return settings.UI_URL.get() or server or DEFAULT_UI


def spool_root(uri: str) -> Path:
    """Spool under the store's folder for SQLite, else ~/.jupyter_mlops/spool/<uri hash>."""
    chosen = settings.SPOOL_DIR.get()
    if chosen is not None:
        return chosen
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
    # libpq (psycopg) waits 130 s on a host that does not answer; PGCONNECT_TIMEOUT bounds it.
    os.environ.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)


def open_client(uri: str, create: bool = True,
                notice: Callable[[str], None] | None = None) -> Any:
    """An MlflowClient on `uri` whose tracking and registry schemas are ready (imports mlflow).

    A SQLite store is created atomically (migrated under another name, then renamed), so a
    disk that fills meanwhile leaves no half-made `mlflow.db`; one an older version left
    (no runs in it) is moved aside and made anew, said through `notice`. `create=False`
    (a read): a store that is not ready raises StoreError and nothing is written.
    """
    _http_defaults()
    checked_uri(uri)
    from mlflow import MlflowClient

    db = sqlite_path(uri)
    if database_uri(uri):
        check_database(uri)
    if db is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    # The one-time schema creation logs at INFO from a background thread into the cell.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    state = sqlite_state(db)
    if state == READY:
        return _client(uri)  # no lock file: nothing to create or migrate
    if not create or state == NOT_SQLITE:
        raise StoreError(_STATE_MESSAGES[state].format(db=db))
    from filelock import FileLock

    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db) + ".lock", timeout=300):
        state = sqlite_state(db)  # another process may have made it meanwhile
        if state == HALF_MADE:
            aside = db.with_name(f"{db.name}.half-made-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(db, aside)
            if notice is not None:
                notice(f"{db} was a half-made MLflow store (its creation stopped, e.g. on a "
                       f"full disk) holding no runs: moved to {aside}, a new store made")
            state = ABSENT
        if state == ABSENT:
            _create(db)
        elif state != READY and state != OLDER:
            raise StoreError(_STATE_MESSAGES[state].format(db=db))
        # An older schema is upgraded by MLflow as it opens it: inside the lock.
        return _client(uri)


def check_database(uri: str) -> None:
    """Raise StoreError, in one line naming the store, unless the database answers and holds
    MLflow's schema. One short try: the sender retries, and MLflow must not create the schema
    in a database that lacks it (it may be the wrong one)."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    try:
        engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                tables = set(sqlalchemy.inspect(conn).get_table_names())
        finally:
            engine.dispose()
    except Exception as error:  # no driver, a malformed URI, or the database's own answer
        raise StoreError(f"the MLflow store {masked(uri)} cannot be opened: "
                         f"{database_reason(error)}") from None
    if not {"alembic_version", "experiments", "runs"} <= tables:
        raise StoreError(f"the database {masked(uri)} holds no MLflow schema (a wrong "
                         f"database?); if it is the right one, create the schema with "
                         f"`mlflow db upgrade {masked(uri)}` or by starting `mlflow server` "
                         "on it once")


def database_reason(error: BaseException) -> str:
    """A database driver's error in a line: `Connection refused`, `password authentication
    failed for user "mlops"`, without SQLAlchemy's link or libpq's hints."""
    text = str(getattr(error, "orig", None) or error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    # libpq: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  why'
    why = line.rpartition(" failed: ")[2].removeprefix("FATAL:").strip()
    return why[:300] or line[:300]


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)  # the registry's store too
    return client


def _create(db: Path) -> None:
    """Migrate a new store under a temporary name, then rename it into place."""
    # A name of its own each try: MLflow caches engines by URI, and one kept on a failed
    # try's (deleted) file would be handed out again.
    temp = db.with_name(f".{db.name}.creating-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        _dispose(_client(f"sqlite:///{temp}"))
        os.replace(temp, db)
    except Exception as error:
        raise StoreError(f"cannot create the MLflow store {db}: {_cause(error)}; nothing was "
                         "left behind, it is made on the next try") from None
    finally:
        for leftover in (temp, temp.with_name(temp.name + "-journal")):
            leftover.unlink(missing_ok=True)


def _dispose(client: Any) -> None:
    """Close the client's engines on the temporary file (it is renamed next)."""
    stores = [getattr(client._tracking_client, "store", None)]
    try:
        stores.append(client._get_registry_client().store)
    except Exception:  # only a handle kept open a while longer
        pass
    for store in stores:
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


def _cause(error: BaseException) -> str:
    """The root cause in a line: `database or disk is full`, not the SQL that hit it."""
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0][:300] if text else type(error).__name__


ABSENT, READY, OLDER, HALF_MADE, HALF_MADE_WITH_RUNS, NOT_SQLITE = (
    "absent", "ready", "older", "half-made", "half-made-with-runs", "not-sqlite")
_STATE_MESSAGES = {
    ABSENT: "there is no MLflow store at {db}",
    OLDER: "the MLflow store {db} has an older schema; open it once from a notebook (or run "
           "`mlflow db upgrade`) to upgrade it",
    HALF_MADE: "{db} is a half-made MLflow store (its creation stopped, e.g. on a full disk) "
               "holding no runs; the next tracked session makes it anew",
    HALF_MADE_WITH_RUNS: "{db} is a half-migrated MLflow store that holds runs: back it up, "
                         "then run `mlflow db upgrade sqlite:///{db}`",
    NOT_SQLITE: "{db} is not an SQLite database (an MLflow store named mlflow.db is one)",
}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def sqlite_state(db: Path) -> str:
    """What the file at `db` is, read without writing anything beside it."""
    try:
        with open(db, "rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return ABSENT
    except OSError:
        return NOT_SQLITE
    if not head:
        return ABSENT  # an empty file: SQLite's own way of saying "new"
    if head != _SQLITE_MAGIC:
        return NOT_SQLITE
    import sqlite3

    try:
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            tables = {row[0] for row in conn.execute(
                "select name from sqlite_master where type = 'table'")}
            version = (conn.execute("select version_num from alembic_version").fetchall()
                       if "alembic_version" in tables else [])
            # What a half-made store may hold: the default experiment, nothing else.
            content = sum(conn.execute(f"select count(*) from {table}").fetchone()[0] - floor
                          for table, floor in (("runs", 0), ("experiments", 1),
                                               ("registered_models", 0)) if table in tables)
    except sqlite3.DatabaseError:
        return NOT_SQLITE
    from mlflow.store.db.utils import _get_latest_schema_revision

    if version and version[0][0] == _get_latest_schema_revision() \
            and not any(t.startswith("_alembic_tmp_") for t in tables):
        return READY
    if content <= 0:  # not ready and empty: nothing is lost by making it anew
        return HALF_MADE
    if not version or any(t.startswith("_alembic_tmp_") for t in tables):
        return HALF_MADE_WITH_RUNS
    return OLDER
