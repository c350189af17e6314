"""`make dist-check`: the built sdist and wheel hold what a user's install needs, and the wheel,
installed into a fresh venv with no node on PATH, gives JupyterLab both extensions enabled.

The venv is made without system site packages and gets only our wheel from pip (`--no-deps`,
no index); the dependencies come from the development venv through a `.pth` line, which adds
that folder to sys.path but runs none of its `.pth` files (so not the editable install).
Usage: python tests/packaging/dist_check.py BUILD_FOLDER (holding dist/ from `python -m build`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import venv
import zipfile
from pathlib import Path

NAME, LABEXT = "jupyter_mlops", "jupyter-mlops"
IN_WHEEL = ["dist-info/licenses/LICENSE", f"share/jupyter/labextensions/{LABEXT}/install.json",
            f"share/jupyter/labextensions/{LABEXT}/package.json",
            f"share/jupyter/labextensions/{LABEXT}/static/style.js",
            f"etc/jupyter/jupyter_server_config.d/{NAME}.json"]
IN_SDIST = ["LICENSE", "README.md", "pyproject.toml", f"{NAME}/labextension/install.json",
            "labextension/install.json", "labextension/package-lock.json"]


class DistError(Exception):
    """What is missing or wrong, said in one line."""


def missing(names: list[str], wanted: list[str]) -> list[str]:
    return [w for w in wanted if not any(n.endswith(w) for n in names)]


def check_archives(dist: Path) -> Path:
    wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))
    with zipfile.ZipFile(wheel) as archive:
        lost = missing(archive.namelist(), IN_WHEEL)
        metadata = next(archive.read(n).decode() for n in archive.namelist()
                        if n.endswith(".dist-info/METADATA"))
    with tarfile.open(sdist) as archive:
        lost += missing(archive.getnames(), IN_SDIST)
    if lost:
        raise DistError(f"not in {wheel.name} / {sdist.name}: {', '.join(lost)}")
    for field in ("Requires-Python: >=3.11", "Project-URL: Homepage",
                  "Classifier: Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt",
                  "Description-Content-Type: text/markdown"):
        if field not in metadata:
            raise DistError(f"{wheel.name}: METADATA lacks {field!r}")
    if "](docs/" in metadata:  # the long description is shown where docs/ does not exist
        raise DistError(f"{wheel.name}: the README links docs/ relatively")
    return wheel


def fresh_venv(folder: Path, wheel: Path) -> dict[str, str]:
    venv.EnvBuilder(with_pip=False, clear=True).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.check_output([python, "-c", "import sysconfig; "
                                    "print(sysconfig.get_paths()['purelib'])"], text=True)
    Path(site.strip(), "dev-venv-packages.pth").write_text(sysconfig.get_paths()["purelib"])
    config, data = tempfile.mkdtemp(), tempfile.mkdtemp()  # no user config speaks for us
    env = {"PATH": str(folder / "bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "JUPYTER_CONFIG_DIR": config, "JUPYTER_DATA_DIR": data, "LANG": "C.UTF-8"}
    if shutil.which("node", path=env["PATH"]):
        raise DistError("node is on the fresh venv's PATH")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, env=env)
    return env


def listed(folder: Path, env: dict[str, str], module: str) -> str:
    done = subprocess.run([folder / "bin" / "python", "-m", module, "list"], env=env,
                          cwd=folder, capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


def check_install(folder: Path, env: dict[str, str]) -> None:
    python = folder / "bin" / "python"
    where = subprocess.check_output([python, "-c", f"import {NAME}; print({NAME}.__file__)"],
                                    env=env, text=True, cwd=folder).strip()
    if not where.startswith(str(folder)):
        raise DistError(f"{NAME} was imported from {where}, not the fresh venv")
    lab = listed(folder, env, "jupyterlab.labextensions")  # `jupyter labextension list`
    server = listed(folder, env, "jupyter_server.extension.serverextension")
    print(lab, server, sep="\n")
    if not any(LABEXT in line and "enabled" in line and "OK" in line and "python" in line
               for line in lab.splitlines()):
        raise DistError(f"`jupyter labextension list` does not show {LABEXT} enabled and OK "
                        "(installed by its python package)")
    if not any(NAME in line and "enabled" in line for line in server.splitlines()) or \
            not any(NAME in line and "OK" in line for line in server.splitlines()):
        raise DistError(f"`jupyter server extension list` does not show {NAME} enabled and OK")


def main(build: Path) -> int:
    start = time.monotonic()
    try:
        wheel = check_archives(build / "dist")
        env = fresh_venv(build / "venv", wheel)
        check_install(build / "venv", env)
    except (DistError, subprocess.CalledProcessError, StopIteration) as error:
        print(f"dist-check FAILED: {error or 'no wheel or sdist in ' + str(build / 'dist')}",
              file=sys.stderr)
        return 1
    print(f"dist-check ok: {wheel.name} installed with both extensions enabled "
          f"({time.monotonic() - start:.1f} s after the build)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
