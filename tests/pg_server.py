"""A private PostgreSQL cluster and an `mlflow server` on it, both on 127.0.0.1, started and
stopped by pid: the shared team server of the README's "For teams", as tests and benchmarks run it.

`python tests/pg_server.py [FOLDER]` (or `make team-server`) starts both for trying it and
prints the MLFLOW_TRACKING_URI to use; Ctrl-C stops them.

The cluster comes from Debian's server binaries (`initdb` in a temp dir, never a system
service). PostgreSQL refuses to run as root, so as root it runs as the `postgres` user the
Debian package creates. Password authentication is on (scram), so a wrong password fails
as it would on a team's server.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

USER = "mlops"
PASSWORD = "mlops-test"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin folder (`make pg-deps` installs one)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries are missing: run `make pg-deps`")
    return Path(found[-1]).parent


class PostgresCluster:
    """One `initdb` cluster in its own temp folder, listening on 127.0.0.1:port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bin = server_binaries()
        # Its own folder under /tmp, not pytest's (mode 700, root's): the server user reads it.
        self.folder = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
        self.data = self.folder / "data"
        self._as_root = os.geteuid() == 0

    def url(self, database: str = "mlflow", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if not self.data.exists():
            self._initdb()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder}", "-w", "-t", "300",
                  "start")

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of `template` when given); returns its URL."""
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        self.psql(sql)
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database,
             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            env=env, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def postmaster_pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def kill(self) -> None:
        """A crash: SIGKILL the postmaster, then its backends (they would exit on their own)."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        for victim in [pid, *map(int, children.stdout.split())]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(pid)

    def stop(self) -> None:
        pid = self.postmaster_pid()
        if pid is not None:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            except RuntimeError:
                self.kill()
            _wait_gone(pid)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _initdb(self) -> None:
        pwfile = self.folder / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_root:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        # Tests, not production: no fsync (only an OS crash would lose data) and a small
        # footprint on a shared machine. Commits stay synchronous: kill() must not lose them.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("fsync = off\nfull_page_writes = off\n"
                       "shared_buffers = 64MB\nmax_connections = 200\n")

    def _run(self, program: str, *args: str) -> None:
        cmd = [str(self.bin / program), *args]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        if done.returncode:
            log = self.folder / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stderr.strip()}\n{tail}")


class MlflowServer:
    """`mlflow server` on a backend store URI with proxied artifacts (`--serve-artifacts`)."""

    def __init__(self, backend_uri: str, folder: Path, port: int | None = None) -> None:
        self.backend_uri = backend_uri
        self.folder = folder
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 600) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        cmd = [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port",
               str(self.port), "--workers", "1", "--backend-store-uri", self.backend_uri,
               "--serve-artifacts", "--artifacts-destination", str(self.folder / "artifacts")]
        # Own session: the server and its uvicorn worker are stopped together by the pid.
        with open(self.folder / "server.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout  # schema migration on a fresh database: ~20 s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError((self.folder / "server.log").read_text()[-3000:])

    def kill(self) -> None:
        """A crash: SIGKILL the server and its worker; start() brings it back on the same port."""
        self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


def migrated_template(cluster: PostgresCluster, folder: Path) -> str:
    """A database holding MLflow's schema, to copy per server (migrating takes ~20 s)."""
    cluster.create_database("mlflow_template")
    server = MlflowServer(cluster.url("mlflow_template"), folder / "migrate")
    server.start()
    server.stop()
    return "mlflow_template"


def _wait_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="mlops-team-server-"))
    cluster = PostgresCluster()
    cluster.start()
    server = MlflowServer(cluster.create_database("mlflow"), folder, port=5000)
    try:
        server.start()
        print(f"MLflow on PostgreSQL {cluster.url()} with artifacts in {folder / 'artifacts'}")
        print(f"export MLFLOW_TRACKING_URI={server.uri}    (Ctrl-C stops both)", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        cluster.remove()
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main(sys.argv[1:]))
