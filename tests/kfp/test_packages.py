"""Packages are resolved from the installed environment, never guessed; local code is not pip'd."""

from __future__ import annotations

import ast
import base64
import json
import re
import subprocess
import sys
import zlib
from importlib import metadata, resources

import yaml
from kfp_helpers import SMALL

from jupyter_mlops.cli import main
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


def test_an_editable_install_is_an_installed_distribution(tmp_path, capsys):
    """This venv holds jupyter-mlops as `pip install -e`: its RECORD names no module, only the
    .pth that puts the source folder on sys.path."""
    notebook = tmp_path / "Editable_Check.ipynb"
    notebook.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                    "cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                                               "execution_count": None,
                                               "source": "import jupyter_mlops\nx = 1"}]}))
    assert main(["compile", str(notebook), "-o", str(tmp_path / "p.yaml")]) == 0
    err = capsys.readouterr().err
    assert "no installed distribution" not in err, err
    assert f"jupyter-mlops=={metadata.version('jupyter-mlops')}" in \
        (tmp_path / "p.yaml").read_text()


def _shipped(yaml_text: str) -> dict[str, str]:
    """The steps package a compiled component carries (the same literal in every component)."""
    spec = yaml.safe_load(yaml_text)
    sources = [executor["container"]["command"][-1]
               for executor in spec["deploymentSpec"]["executors"].values()]
    found = {match for source in sources
             for match in re.findall(r"steps = '([^'\\]+)'", source)}
    assert len(found) == 1, "every component carries one and the same package"
    return _unpacked(found.pop())


def _unpacked(packed: str) -> dict[str, str]:
    """What the component's own code does with the literal (components.component_source)."""
    return json.loads(zlib.decompress(base64.b85decode(packed)))


def _without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            node.body[0].value.value = ""
    return ast.dump(tree)


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
    package = _package_files()
    assert set(shipped) == set(package)
    assert {"jupyter_mlops/steps/runtime.py", "jupyter_mlops/steps/serializers.py",
            "jupyter_mlops/steps/model_logging.py"} <= set(shipped)
    for name, text in shipped.items():  # the same code on the same lines, docstrings emptied
        original = package[name].decode("utf-8")
        assert len(text.splitlines()) == len(original.splitlines()), name
        assert _without_docstrings(text) == _without_docstrings(original), name
    assert '"""\n' in shipped["jupyter_mlops/steps/runtime.py"]  # a docstring kept its lines
    folder = tmp_path / "unpacked"
    for name, text in _unpacked(packed_steps()).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    script = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('jupyter_mlops') is None\n"
        f"sys.path.insert(0, {str(folder)!r})\n"
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
