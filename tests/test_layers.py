"""The package's import layers: nothing imports a layer above its own.

Every module's imports are read with `ast`, those inside functions included (the package imports
heavy libraries late, and an upward import hidden in a function is still a dependency), and so
are module names given as strings (lazy attribute tables, `sys.modules` lookups). Imports under
`if TYPE_CHECKING:` are left out: they cost nothing at run time, and the steps package reads
the notebook layer's objects by attribute with only their types imported. `steps/` runs alone in
KFP containers: it imports nothing else of ours, but under `try: ... except ImportError:` with a
stand-in (its errors derive from MlopsError where the whole package is installed).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jupyter_mlops"

# Layer of each top-level module or subpackage, low to high. A module may import its own
# layer and those below; `steps/` is shipped alone to KFP containers and imports only itself.
LAYERS: dict[str, int] = {
    "steps": 0, "errors": 0, "_lazy": 0, "_version": 0, "settings": 0,
    "notebook": 1,
    "tracking": 2,
    "models": 3,
    "monitoring": 4,
    "runner": 5,
    "kfp": 6, "widgets": 6, "server": 6, "commands": 6, "cli": 6, "demo": 6,
    "magics": 7, "__init__": 7,  # the IPython extension's entry and the package's own face
}
SELF_CONTAINED = {"steps"}
_MODULE_NAME = re.compile(r"jupyter_mlops(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _part(module: str) -> str:
    """The layer's key of a dotted module name: `jupyter_mlops.runner.cache` -> `runner`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _own_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The statements under `if TYPE_CHECKING:` blocks."""
    hidden: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                hidden.update(ast.walk(statement))
    return hidden


def _guarded(tree: ast.AST) -> set[ast.AST]:
    """The statements of `try:` blocks that catch ImportError: optional imports."""
    guarded: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                handler.type is not None and "ImportError" in ast.unparse(handler.type)
                for handler in node.handlers):
            for statement in node.body:
                guarded.update(ast.walk(statement))
    return guarded


def imported(source: str, own: str, is_package: bool = False,
             optional: bool = True) -> list[tuple[int, str]]:
    """(line, module) for every module of ours that `source`, the module `own`, imports;
    `optional=False` leaves out those guarded by `except ImportError`."""
    tree = ast.parse(source)
    hidden = _type_checking_only(tree) | (set() if optional else _guarded(tree))
    package = own if is_package else own.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if node in hidden:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if _is_module(sub) else base))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and _MODULE_NAME.fullmatch(node.value) and _is_module(node.value):
            found.append((node.lineno, node.value))
    return [(line, name) for line, name in found
            if name == "jupyter_mlops" or name.startswith("jupyter_mlops.")]


def violations(path: Path, source: str | None = None) -> list[str]:
    """Each import in `path` that reaches above its layer, said as `file:line: a -> b`."""
    own = _own_name(path)
    part = _part(own)
    text = path.read_text(encoding="utf-8") if source is None else source
    found = []
    alone = part in SELF_CONTAINED
    for line, name in imported(text, own, path.name == "__init__.py", optional=not alone):
        target = _part(name)
        if alone and target != part:
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} -> {name} "
                         f"({part}/ imports only itself)")
        elif LAYERS[target] > LAYERS[part]:
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} -> {name} "
                         f"({part} is below {target})")
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    """A new top-level module or subpackage is placed in LAYERS before it is imported."""
    unplaced = sorted({_part(_own_name(p)) for p in MODULES} - set(LAYERS))
    assert not unplaced, f"place these in tests/test_layers.py LAYERS: {unplaced}"


def test_no_module_imports_a_layer_above_its_own():
    found = [line for path in MODULES for line in violations(path)]
    assert not found, "imports against the layers:\n" + "\n".join(found)


@pytest.mark.parametrize(("where", "source", "expected"), [
    ("tracking/cell.py", "def show():\n    from jupyter_mlops.widgets import run_card\n",
     "tracking.cell -> jupyter_mlops.widgets.run_card (tracking is below widgets)"),
    ("runner/cache.py", "from ..kfp import names\n",
     "runner.cache -> jupyter_mlops.kfp.names (runner is below kfp)"),
    ("steps/runtime.py", "import jupyter_mlops.errors\n",
     "steps.runtime -> jupyter_mlops.errors (steps/ imports only itself)"),
    ("notebook/graph.py", 'LAZY = {"x": "jupyter_mlops.runner.pipeline"}\n',
     "notebook.graph -> jupyter_mlops.runner.pipeline (notebook is below runner)"),
])
def test_the_check_sees_late_relative_and_lazy_imports(where, source, expected):
    [found] = violations(PACKAGE / where, source)
    assert found.endswith(expected), found


@pytest.mark.parametrize("source", [
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from jupyter_mlops import notebook\n",
    "try:\n    from jupyter_mlops.errors import MlopsError\nexcept ImportError:\n    pass\n",
])
def test_type_only_and_optional_imports_are_left_out_of_steps(source):
    assert violations(PACKAGE / "steps/step_notebook.py", source) == []
