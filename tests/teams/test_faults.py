"""A team's PostgreSQL at fault, under real kernels: down at start, killed mid-session, a
wrong password, a database without MLflow's schema; straight at postgresql:// and through
`mlflow server`. The user sees one line naming the store (never its password), cells keep
running, records wait in the spool, and the live sender or `jupyter-mlops sync` delivers them
once the store is back: each record once."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from kernel_driver import Kernel, Said
from mlflow.tracking import MlflowClient
from pg_server import PASSWORD, USER, MlflowServer, PostgresCluster

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "Churn_Model"
TRACK = """%%mlops track {name} --params n_estimators --metrics accuracy
n_estimators = {n}
accuracy = 0.5 + {n} / 1000
print("fitted", n_estimators)"""
FLUSH = "from jupyter_mlops.tracking.session import current\nassert current().tracker.flush(120)"
_names = itertools.count()


def _env(tmp_path: Path, uri: str) -> dict[str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": uri,
           "JUPYTER_MLOPS_NOTEBOOK": "Churn_Forecast.ipynb", "PYTHONPATH": str(REPO),
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
    env.pop("JUPYTER_MLOPS_SPOOL_DIR", None)
    return env


def _kernel(tmp_path: Path, uri: str) -> Kernel:
    work = tmp_path / "Churn_Work"
    work.mkdir(exist_ok=True)
    kernel = Kernel(work, _env(tmp_path, uri))
    kernel.ok(f"%load_ext jupyter_mlops\n%mlops start --experiment {EXPERIMENT}")
    return kernel


def _track(kernel: Kernel, name: str, n: int) -> Said:
    """A tracked cell runs at once whatever the store does."""
    started = time.monotonic()
    said = kernel.ok(TRACK.format(name=name, n=n))
    assert f"fitted {n}" in said.stdout and time.monotonic() - started < 30
    return said


def _sync(tmp_path: Path, uri: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "sync"],
                          cwd=tmp_path / "Churn_Work", env=_env(tmp_path, uri),
                          capture_output=True, text=True, timeout=300)


def _said(*outputs: Said | subprocess.CompletedProcess[str]) -> str:
    return "\n".join(o.stdout + o.stderr + getattr(o, "error", "") + getattr(o, "html", "")
                     for o in outputs)


def _one_clear_line(end: Said, store: str, why: str, *others: Said,
                    secrets: tuple[str, ...] = ()) -> None:
    """`%mlops end` says the fault in one line naming the store (password masked); nothing
    the user sees holds a traceback or the password (nor any of `secrets`)."""
    shown = _said(end, *others)
    assert all(secret not in shown for secret in secrets), shown
    assert PASSWORD not in shown and "Traceback" not in shown, shown
    said = end.stdout + end.stderr  # its text; the cards it redrew say it on each card
    lines = [line for line in said.splitlines() if store in line and why in line]
    assert len(lines) == 1 and "records kept in the spool" in lines[0], shown


def _delivered(uri: str, names: list[str]) -> None:
    """Each tracked run stored once, with its values, and no run left RUNNING."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    tracked = sorted(r.info.run_name for r in runs if r.info.run_name in names)
    assert tracked == sorted(names), [r.info.run_name for r in runs]
    for run in runs:
        assert run.info.status == "FINISHED", (run.info.run_name, run.info, run.data.tags)
        if run.info.run_name in names:
            n = int(run.data.params["n_estimators"])
            assert run.data.metrics == {"accuracy": 0.5 + n / 1000}


def _kept_then_synced(tmp_path: Path, fault: AbstractContextManager[object], uri: str,
                      why: str, *, store: str | None = None, secrets: tuple[str, ...] = (),
                      database: str | None = None) -> None:
    """Two cells tracked at `uri` while `fault` holds: `%mlops end` says `why` in one line
    naming the store (`uri` masked unless given); once the fault is over, `jupyter-mlops sync`
    delivers both to `database` (else `uri`), each once."""
    with fault:
        kernel = _kernel(tmp_path, uri)
        try:
            cells = [_track(kernel, f"Forest_{n}", n) for n in (50, 100)]
            end = kernel.ok("%mlops end")
        finally:
            kernel.stop()
        _one_clear_line(end, store or _masked(uri), why, *cells, secrets=secrets)
    done = _sync(tmp_path, uri)
    assert done.returncode == 0 and "replayed" in done.stdout, done.stdout + done.stderr
    _delivered(database or uri, ["Forest_50", "Forest_100"])


@contextmanager
def _stopped(cluster: PostgresCluster) -> Iterator[None]:
    cluster.stop()
    try:
        yield
    finally:
        cluster.start()


def _database(cluster: PostgresCluster) -> str:
    name = f"Team_Store_{next(_names)}"
    return cluster.create_database(name, template=cluster.template)  # type: ignore[attr-defined]


def _masked(uri: str) -> str:
    return uri.replace(f":{PASSWORD}@", ":***@")


def test_postgresql_down_at_start(pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    uri = _database(pg_cluster)
    _kept_then_synced(tmp_path, _stopped(pg_cluster), uri,
                      "cannot be opened: Connection refused")


@pytest.mark.parametrize("through", ["postgresql", "mlflow server"])
def test_postgresql_killed_mid_session(pg_cluster: PostgresCluster, tmp_path: Path,
                                       through: str) -> None:
    """Killed after the first cell was stored; started again, the session's own sender
    delivers the rest: `%mlops end` says all records stored."""
    database = _database(pg_cluster)
    # As a team's server commits (the test cluster's default is off, for speed): a crash
    # must not take back a commit the sender was told of.
    pg_cluster.psql(f'ALTER DATABASE "{database.rsplit("/", 1)[1]}" SET synchronous_commit = on')
    server = None
    if through == "mlflow server":
        server = MlflowServer(database, tmp_path / "server")
        server.start()
    uri = server.uri if server else database
    kernel = _kernel(tmp_path, uri)
    try:
        _track(kernel, "Forest_50", 50)
        kernel.ok(FLUSH)
        pg_cluster.kill()
        try:
            _track(kernel, "Forest_100", 100)
            deadline = time.monotonic() + 120
            status = kernel.ok("%mlops status")
            while "store unreachable" not in status.stdout:  # the sender's next try says so
                assert time.monotonic() < deadline, status
                time.sleep(0.5)
                status = kernel.ok("%mlops status")
        finally:
            pg_cluster.start()
        end = kernel.ok("%mlops end")
    finally:
        kernel.stop()
        if server:
            server.stop()
    assert "all records stored" in end.stdout, end
    assert PASSWORD not in status.stdout and f"store:      {_masked(uri)}" in status.stdout
    why = "cannot be opened" if server is None else "answers, but cannot store now"
    [line] = [line for line in status.stdout.splitlines() if line.startswith("  the ")]
    assert _masked(uri) in line and why in line, status.stdout
    _delivered(database, ["Forest_50", "Forest_100"])


def test_a_wrong_password(pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    """The analyst's password is not the one the database holds; once the administrator sets
    it, `jupyter-mlops sync` delivers what waited. A sync before that fails in one line."""
    database = _database(pg_cluster)
    role, typed = f"analyst_{next(_names)}", "Typed-Secret-42"
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'Other-Secret-7'")
    pg_cluster.psql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; "
                    f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
                    database=database.rsplit("/", 1)[1])
    uri = database.replace(f"{USER}:{PASSWORD}@", f"{role}:{typed}@")
    store = uri.replace(f":{typed}@", ":***@")

    @contextmanager
    def until_the_password_is_set() -> Iterator[None]:
        yield
        early = _sync(tmp_path, uri)
        assert early.returncode == 1 and typed not in early.stdout + early.stderr
        assert "Traceback" not in early.stderr and store in early.stdout, \
            early.stdout + early.stderr
        pg_cluster.psql(f"ALTER ROLE {role} PASSWORD '{typed}'")

    _kept_then_synced(tmp_path, until_the_password_is_set(), uri,
                      f'password authentication failed for user "{role}"', store=store,
                      secrets=(typed,), database=database)


def test_a_database_without_mlflows_schema(pg_cluster: PostgresCluster,
                                           tmp_path: Path) -> None:
    """MLflow would create its schema in any empty database, a wrong one too: we do not.
    Once the right database is in place, `jupyter-mlops sync` delivers."""
    name = f"Team_Empty_{next(_names)}"
    uri = pg_cluster.create_database(name)

    @contextmanager
    def until_the_right_database_is_in_place() -> Iterator[None]:
        yield
        tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        assert pg_cluster.psql(tables, database=name).strip() == "0"  # nothing created in it
        pg_cluster.psql(f'DROP DATABASE "{name}"')
        pg_cluster.create_database(name,
                                   template=pg_cluster.template)  # type: ignore[attr-defined]

    _kept_then_synced(tmp_path, until_the_right_database_is_in_place(), uri,
                      "holds no MLflow schema")


def test_every_message_names_a_store_without_its_password() -> None:
    from jupyter_mlops.tracking.destination import masked, view_hint

    assert masked("postgresql://mlops:s3cr%40t:x@db.team:5432/mlflow") == \
        "postgresql://mlops:***@db.team:5432/mlflow"
    assert masked("postgresql+psycopg://analyst:pw@10.0.0.7/mlflow?sslmode=require") == \
        "postgresql+psycopg://analyst:***@10.0.0.7/mlflow?sslmode=require"
    assert masked("https://ops:token@mlflow.team.example") == "https://ops:***@mlflow.team.example"
    for kept in ("postgresql://mlops@db.team/mlflow", "http://127.0.0.1:5000",
                 "sqlite:////home/ana/Churn/mlflow.db"):
        assert masked(kept) == kept
    assert "pw" not in view_hint("postgresql://analyst:pw@10.0.0.7/mlflow")
