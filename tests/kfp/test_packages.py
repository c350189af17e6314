"""Packages are resolved from the installed environment, never guessed; local code is not pip'd."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
import zipfile
from importlib import metadata, resources

from kfp_helpers import SMALL

from jupyter_mlops.kfp import compile_notebook
from jupyter_mlops.kfp.components import packed_steps
from jupyter_mlops.kfp.packages import distributions_for, local_modules, pinned


def test_modules_map_to_the_distributions_that_ship_them():
    assert distributions_for(["sklearn", "yaml", "os", "json"]) == ["PyYAML", "scikit-learn"]
    assert pinned("numpy") == f"numpy=={metadata.version('numpy')}"


def test_the_fast_module_index_agrees_with_importlib_metadata():
    expected = metadata.packages_distributions()
    assert expected
    for module, names in expected.items():
        if module not in sys.stdlib_module_names and module != "__pycache__":
            assert distributions_for([module]) == sorted(set(names), key=str.lower), module


def test_a_local_module_is_not_a_pip_package():
    assert distributions_for(["my_helpers"]) == []
    assert local_modules(["my_helpers", "numpy", "os"]) == ["my_helpers"]


def _shipped(yaml_text: str) -> zipfile.ZipFile:
    """The steps package a compiled component carries (the same literal in every component)."""
    found = set(re.findall(r"steps = '([A-Za-z0-9+/=]+)'", yaml_text))
    assert len(found) == 1, "every component carries one and the same package"
    return zipfile.ZipFile(io.BytesIO(base64.b64decode(found.pop())))


def _package_files() -> dict[str, bytes]:
    """jupyter_mlops.steps' files as importlib.resources lists them, bytecode aside."""
    files: dict[str, bytes] = {}
    pending = [(resources.files("jupyter_mlops.steps"), "jupyter_mlops/steps/")]
    while pending:
        folder, prefix = pending.pop()
        for item in folder.iterdir():
            if item.is_dir() and item.name != "__pycache__":
                pending.append((item, f"{prefix}{item.name}/"))
            elif item.is_file() and not item.name.endswith(".pyc"):
                files[prefix + item.name] = item.read_bytes()
    return files


def test_each_component_ships_the_steps_package_whole(tmp_path):
    """No hand-kept list: the files shipped are the package's, and they work in a Python that
    has no jupyter-mlops (nor anything else installed), as in a bare cluster image."""
    shipped = _shipped(compile_notebook(SMALL, install_packages=False).yaml)
    files = {info.filename: shipped.read(info) for info in shipped.infolist()
             if not info.is_dir()}
    assert files == _package_files()
    assert {"jupyter_mlops/steps/runtime.py", "jupyter_mlops/steps/serializers.py",
            "jupyter_mlops/steps/model_logging.py"} <= set(files)
    archive = tmp_path / "steps.zip"
    archive.write_bytes(base64.b64decode(packed_steps()))
    script = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('jupyter_mlops') is None\n"
        f"sys.path.insert(0, {str(archive)!r})\n"
        "from jupyter_mlops.steps import serializers as s\n"
        f"s.dump({{'a': [1, 2]}}, {str(tmp_path / 'v')!r}, 'x')\n"
        f"print(s.load({str(tmp_path / 'v')!r}, 'x'))\n"
        "from jupyter_mlops.steps.model_logging import step_model\n"  # the component logs models
        "print(step_model({'metadata': {'mlops': {'model': {'variable': 'forest'}}}}))\n"
        "from jupyter_mlops.steps.runtime import run_step_notebook\n"
        "try:\n"
        f"    s.load({str(tmp_path)!r}, 'absent')\n"
        "except Exception as error:  # the stand-in MlopsError root\n"
        "    print(error)\n"
    )
    # -S, -E: no site-packages nor PYTHONPATH, so jupyter_mlops (and all else) is out of reach
    out = subprocess.run([sys.executable, "-S", "-E", "-c", script], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert lines[:2] == ["{'a': [1, 2]}", "('forest', None)"]
    assert lines[2].startswith("cannot read variable 'absent': no readable value")
