"""The Binder configuration: consistent with the package, and opening a notebook that exists."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def test_environment_has_python_and_node_for_the_extension_build():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    names = {re.split(r"[=<>]", d)[0] for d in env["dependencies"] if isinstance(d, str)}
    assert {"python", "nodejs", "pip"} <= names


def test_post_build_installs_and_checks_both_extensions():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)  # parses
    text = script.read_text()
    assert "pip install --no-cache-dir ." in text
    lab_name = json.loads((ROOT / "labextension" / "package.json").read_text())["name"]
    [server_config] = (ROOT / "jupyter-config" / "server-config").glob("*.json")
    [server_name] = json.loads(server_config.read_text())["ServerApp"]["jpserver_extensions"]
    assert f'grep -q "{lab_name}.*enabled"' in text
    assert f'grep -q "{server_name}.*enabled"' in text
    copied = re.search(r"cp (\S+) ", text).group(1)
    assert (ROOT / copied).is_file()


def test_binder_opens_the_quickstart():
    config = Config()
    source = (BINDER / "jupyter_server_config.py").read_text()
    exec(compile(source, "jupyter_server_config.py", "exec"), {"get_config": lambda: config})
    url = config.ServerApp.default_url
    assert url.startswith("/lab/tree/")
    assert (ROOT / url.removeprefix("/lab/tree/")).is_file()
    assert url.endswith("01_tracking_quickstart.ipynb")
