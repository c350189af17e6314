"""A real `jupyter lab` on 127.0.0.1 in a temporary root, and Debian's Chromium via Playwright."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
LABEXTENSION = ROOT / "jupyter_mlops" / "labextension"
TOKEN = "mlops-ui-test-token"
MLFLOW_UI = "http://127.0.0.1:5999"  # only linked to, never fetched
SCREENSHOTS_ENV = "MLOPS_SCREENSHOTS"  # where screenshots go; a temporary folder by default
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
# Upper bounds, not measured timings: on 2 shared cores at load average 6-9 a step that takes a
# second alone can take a minute. Waits end on events (an attribute, a response) well before.
UI_WAIT_MS = 180_000  # Playwright's default for every action and wait of a page
START_DEADLINE = 300.0  # seconds for `jupyter lab` to answer
API_TIMEOUT = 60.0  # seconds for one REST call to the server


@dataclass
class Lab:
    """One server for every browser test; a test module that needs its own store (runs go to
    mlflow.db beside the notebook) or its own notebook names works in a `folder` of the root."""

    url: str
    root: Path
    log: Path

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=API_TIMEOUT) as response:
            body = response.read()
        return json.loads(body) if body else None

    def sessions(self) -> set[str]:
        return {session["id"] for session in self.api("sessions")}

    @contextmanager
    def own_kernels(self) -> Iterator[None]:
        """Shut down the kernels opened inside the block when it ends: on a shared server
        they would otherwise pile up, idle but holding memory, until the last test."""
        before = self.sessions()
        try:
            yield
        finally:
            for session in self.sessions() - before:
                try:
                    self.api(f"sessions/{session}", method="DELETE")
                except urllib.error.HTTPError as error:
                    if error.code != 404:  # already gone: nothing to stop
                        raise


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config_dir(tmp: Path, mlops: dict[str, str] | None = None) -> Path:
    """Enable the server extension explicitly, so the test does not depend on install state;
    `mlops`: further MlopsExtension settings (a KFP host)."""
    config = tmp / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
        # the panel's MLflow UI link
        "MlopsExtension": {"mlflow_ui_url": MLFLOW_UI, **(mlops or {})},
    }))
    return config


def _settings_dir(tmp: Path) -> Path:
    """User settings: JupyterLab's news prompt off."""
    settings = tmp / "settings"
    values = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                              "checkForUpdates": False}}
    for name, value in values.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return settings


def _labextensions(tmp: Path) -> Path:
    """A labextensions folder holding the fresh build under its package name, as JupyterLab
    looks extensions up (static files and settings schemas) by name."""
    folder = tmp / "labextensions"
    folder.mkdir()
    (folder / "jupyter-mlops").symlink_to(LABEXTENSION, target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with start_lab(tmp_path_factory.mktemp("lab")) as started:
        yield started


@contextmanager
def start_lab(tmp: Path, mlops: dict[str, str] | None = None) -> Iterator[Lab]:
    """A `jupyter lab` in `tmp`, stopped when the block ends; `mlops`: MlopsExtension settings
    beyond the tests' own (a module that needs a KFP host starts a lab of its own)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make ui-deps` installs it")
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail("the labextension is not built: `make labextension` builds it")
    root = tmp / "root"
    root.mkdir()
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(_config_dir(tmp, mlops)),
               JUPYTERLAB_SETTINGS_DIR=str(_settings_dir(tmp)),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    env.pop("MLFLOW_TRACKING_URI", None)  # runs go to root/mlflow.db, as by default
    argv = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
            f"--ServerApp.token={TOKEN}", "--allow-root", "--no-browser",
            f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
            # The freshly built extension, whatever the venv holds, in JupyterLab and in
            # Notebook 7 (both are LabServerApps).
            f"--LabServerApp.extra_labextensions_path={_labextensions(tmp)}"]
    log = tmp / "lab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield Lab(url, root, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=10):
                return
        except OSError:
            time.sleep(0.2)  # polling a port that is not open yet: nothing to wait on
    raise RuntimeError(f"jupyter lab did not answer:\n{log.read_text()[-3000:]}")


# Per module, unlike the server: sync Playwright runs an asyncio loop while it is open, which
# would break the event-loop fixtures of the non-browser tests that run after tests/ui.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def new_page(browser, **options: object) -> object:  # noqa: ANN001
    """A page in a fresh browser context whose actions and waits default to UI_WAIT_MS
    (Playwright's own 30 s default flakes under load)."""
    context = browser.new_context(**options)
    context.set_default_timeout(UI_WAIT_MS)
    return context.new_page()


@contextmanager
def explained(request: pytest.FixtureRequest, page, lab: Lab) -> Iterator[None]:  # noqa: ANN001
    """If a test using `page` fails inside the block, print what the page showed and the end of
    the server's log: a timeout alone does not say what the user was looking at."""
    failed = request.session.testsfailed
    try:
        yield
    except BaseException:
        _explain(page, lab)
        raise
    if request.session.testsfailed > failed:
        _explain(page, lab)


def _explain(page, lab: Lab) -> None:  # noqa: ANN001
    try:
        shown = page.locator("body").inner_text(timeout=10_000)[-4000:]
    except Exception as error:  # the page itself may be what broke
        shown = f"(unreadable: {error})"
    print(f"--- the page at the failure ({page.url}):\n{shown}")
    print(f"--- the end of jupyter lab's log:\n{lab.log.read_text()[-3000:]}")


@pytest.fixture
def page(browser, lab, request):  # noqa: ANN001
    with lab.own_kernels():
        page = new_page(browser, viewport={"width": 1400, "height": 900})
        with explained(request, page, lab):
            yield page
        page.context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$MLOPS_SCREENSHOTS when set (`make test` keeps them as artifacts), else a temp folder."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path
