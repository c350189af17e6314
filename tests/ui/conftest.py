"""A real `jupyter lab` on 127.0.0.1 in a temporary root, and Debian's Chromium via Playwright."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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


@dataclass
class Lab:
    url: str
    root: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config_dir(tmp: Path) -> Path:
    """Enable the server extension explicitly, so the test does not depend on install state."""
    config = tmp / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
    }))
    return config


def _settings_dir(tmp: Path) -> Path:
    """User settings: the extension's MLflow UI link set, JupyterLab's news prompt off."""
    settings = tmp / "settings"
    values = {"jupyter-mlops/plugin": {"trackingUri": MLFLOW_UI},
              "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make ui-deps` installs it")
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail("the labextension is not built: `make labextension` builds it")
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(_config_dir(tmp)),
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
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"jupyter lab did not answer:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab):  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$MLOPS_SCREENSHOTS when set (`make test` keeps them as artifacts), else a temp folder."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path
