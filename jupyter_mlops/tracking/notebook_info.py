"""Which notebook the kernel runs, and the names its `parameters` cell assigns.

MLflow alone records `ipykernel_launcher`. Sources, most explicit first:
JUPYTER_MLOPS_NOTEBOOK; JupyterLab / Notebook 7 (`JPY_SESSION_NAME`, also `__session__`);
papermill's `PAPERMILL_INPUT_PATH` (injected with `inject_paths=True`); VS Code's
`__vsc_ipynb_file__`; the `papermill` command line of the parent process.

Every run a notebook causes names it in one form, here: the absolute path with symlinks
resolved. Kernels see absolute paths under their working directory, the server sees paths
relative to its root; both resolve to the same real file, so the panel finds the runs by tag.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

from jupyter_mlops import settings
from jupyter_mlops.steps.mlflow_vocabulary import LAUNCHED_FROM_TAG, NOTEBOOK_TAG

_PARAM_TAGS = ("parameters", "injected-parameters")
_cache: dict[Path, tuple[float, list[str]]] = {}


def detect_path(user_ns: dict[str, Any] | None = None) -> Path | None:
    ns = user_ns or {}
    candidates = [
        settings.NOTEBOOK.get(),
        os.environ.get("JPY_SESSION_NAME"),
        ns.get("__session__"),
        ns.get("PAPERMILL_INPUT_PATH"),
        ns.get("__vsc_ipynb_file__"),
    ]
    for candidate in candidates:
        path = _as_notebook(candidate)
        if path is not None:
            return path
    return _papermill_parent()


def tag_value(path: str | Path) -> str:
    """A notebook's path as runs record it: absolute, symlinks resolved."""
    return os.path.realpath(Path(path).expanduser())


def notebook_tags(path: str | Path | None, launched_from: str | Path | None = None
                  ) -> dict[str, str]:
    """The tags naming a run's notebook (and the notebook that launched it, if another)."""
    tags = {NOTEBOOK_TAG: tag_value(path)} if path else {}
    if launched_from and (not path or tag_value(launched_from) != tags[NOTEBOOK_TAG]):
        tags[LAUNCHED_FROM_TAG] = tag_value(launched_from)
    return tags


def _as_notebook(value: object) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        return None
    path = Path(value).expanduser()
    if path.suffix not in (".ipynb", ".py"):
        return None
    # JPY_SESSION_NAME is absolute in jupyter_server 2; older servers gave it relative.
    return path if path.is_absolute() else (Path.cwd() / path)


def _papermill_parent() -> Path | None:
    """`papermill in.ipynb out.ipynb` started this kernel: take the input from its command line."""
    ppid = os.getppid()
    try:
        argv = Path(f"/proc/{ppid}/cmdline").read_bytes().decode().split("\0")
        cwd = Path(os.readlink(f"/proc/{ppid}/cwd"))
    except (OSError, UnicodeDecodeError):
        return None
    if not any(Path(arg).name.startswith("papermill") for arg in argv[:3]):
        return None
    notebooks = [arg for arg in argv if arg.endswith(".ipynb")]
    return (cwd / notebooks[0]) if notebooks else None


def experiment_name(path: Path | None) -> str:
    """The notebook's name (without extension), else 'notebooks'."""
    return path.stem if path is not None else "notebooks"


def parameter_names(path: Path | None) -> list[str]:
    """Names bound by the cells tagged `parameters` / `injected-parameters` (cached by mtime)."""
    if path is None or path.suffix != ".ipynb":
        return []
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    names = _read_parameter_names(path)
    _cache[path] = (mtime, names)
    return names


def _read_parameter_names(path: Path) -> list[str]:
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []
    names: list[str] = []
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and any(t in tags for t in _PARAM_TAGS):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            names += [n for n in assigned_names(source) if n not in names]
    return [n for n in names if not n.startswith("PAPERMILL_")]


def assigned_names(source: str) -> list[str]:
    """Top-level names a piece of code binds (not inside functions, classes or comprehensions)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    _collect(tree, names)
    return names


def _collect(node: ast.AST, names: list[str]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                              ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            if child.id not in names:
                names.append(child.id)
        _collect(child, names)
