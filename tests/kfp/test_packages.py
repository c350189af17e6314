"""Packages are resolved from the installed environment, never guessed; local code is not pip'd."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from jupyter_mlops.kfp.packages import distributions_for, local_modules, pinned
from jupyter_mlops.kfp.runtime import _provide_support
from jupyter_mlops.kfp.stepnotebooks import packed_support


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


def test_the_embedded_serializers_work_in_a_python_without_jupyter_mlops(tmp_path):
    """The kernel of an image without jupyter-mlops gets the same serializers from the component."""
    _provide_support(packed_support(), str(tmp_path / "lib"))  # jupyter_mlops is importable here
    assert not (tmp_path / "lib").exists()
    script = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('jupyter_mlops') is None\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from runtime import _provide_support\n"
        f"_provide_support({packed_support()!r}, {str(tmp_path / 'lib')!r})\n"
        "import os; sys.path.insert(0, os.environ['PYTHONPATH'])\n"
        "from jupyter_mlops.runner import serializers as s\n"
        f"s.dump({{'a': [1, 2]}}, {str(tmp_path / 'v')!r}, 'x')\n"
        f"print(s.load({str(tmp_path / 'v')!r}, 'x'))\n"
        "from jupyter_mlops.models.logging import step_model\n"  # the component logs models
        "print(step_model({'metadata': {'mlops': {'model': {'variable': 'forest'}}}}))\n"
    )
    from jupyter_mlops.kfp import runtime

    (tmp_path / "runtime.py").write_text(open(runtime.__file__).read())
    # -S: no site-packages, so jupyter_mlops (and everything else installed) is out of reach
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.split("\n")[:2] == ["{'a': [1, 2]}", "('forest', None)"]
