"""Which notebook the kernel runs, the names its `parameters` cell assigns, and the names a
tracked cell's `--metrics auto` logs.

The notebook is read as the pipeline reads it (`jupyter_mlops.notebook`: the reader, the tag
grammar, the parameter grammar), so a cell is a parameters cell here exactly when it is there.

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
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_mlops import settings
from jupyter_mlops.errors import MlopsError
from jupyter_mlops.notebook import Cell
from jupyter_mlops.notebook.analysis import analyse, parse_cell
from jupyter_mlops.notebook.parameters import read_parameters
from jupyter_mlops.notebook.reader import read_code_cells
from jupyter_mlops.notebook.tags import TagValueError, parse_tags
from jupyter_mlops.steps.mlflow_vocabulary import LAUNCHED_FROM_TAG, NOTEBOOK_TAG

PAPERMILL_INJECTED = "injected-parameters"  # papermill's tag on the cell of values it injected
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
    """Names bound by the parameters cells and papermill's injected one (cached by mtime)."""
    if path is None:
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
        cells = read_code_cells(path)
    except MlopsError:  # not a notebook the reader takes: no parameters to log, not a failure
        return []
    names: list[str] = []
    for cell in filter(_is_parameters, cells):
        names += [n for n in _bound(str(path), cell) if n not in names]
    return [n for n in names if not n.startswith("PAPERMILL_")]


def _is_parameters(cell: Cell) -> bool:
    """A parameters cell by the tag grammar (Kale's `pipeline-parameters` too), or papermill's
    injected one; a malformed tag beside the role does not hide it from tracking."""
    for tag in cell.tags:
        try:
            if tag == PAPERMILL_INJECTED or "parameters" in parse_tags([tag]).roles:
                return True
        except TagValueError:
            continue
    return False


def _bound(path: str, cell: Cell) -> list[str]:
    """The parameters the cell declares; a cell the parameter grammar refuses (papermill runs
    any code there, e.g. `data = Path("x")`) still logs the names it binds."""
    try:
        return [p.name for p in read_parameters(path, cell, parse_cell(cell.source))]
    except SyntaxError:
        return []
    except MlopsError:
        return assigned_names(cell.source)


def assigned_names(source: str) -> list[str]:
    """The names code binds at top level, as the pipeline's analysis finds them (IPython
    syntax included); none when it does not parse."""
    try:
        return list(analyse(parse_cell(source)).binds)
    except SyntaxError:
        return []


def metric_names(source: str) -> list[str]:
    """`--metrics auto`: the names the cell assigns (`=`, `+=`, `x: float = ...`, `:=`), in the
    order of their last binding, without its throwaway names: a loop's variables (`for epoch
    in ...`), a counter stepped inside a loop (`n_batches += 1`), names starting with `_`, and
    one-letter names (`i`, `n`, `x`). Names bound otherwise (`import`, `with ... as`, `def`)
    are not metrics either. The caller keeps those whose value is a number."""
    try:
        tree = parse_cell(source)
    except SyntaxError:
        return []
    assigned: set[str] = set()
    throwaway: set[str] = set()
    for node, in_loop in _module_scope(tree):
        if isinstance(node, (ast.For, ast.AsyncFor)):
            throwaway.update(_target_names(node.target))
        elif isinstance(node, ast.Assign):
            assigned.update(n for t in node.targets for n in _target_names(t))
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)):
            assigned.update(_target_names(node.target))
        elif isinstance(node, ast.AugAssign):
            names = _target_names(node.target)
            assigned.update(names)
            if in_loop and isinstance(node.value, ast.Constant):
                throwaway.update(names)  # a counter: `step += 1`
    return [name for name in analyse(tree).binds
            if name in assigned and name not in throwaway and not name.startswith("_")
            and len(name) > 1]


def _module_scope(tree: ast.Module) -> Iterator[tuple[ast.AST, bool]]:
    """Every node of the cell's own scope (not inside a def, class or lambda), with whether it
    sits in a loop; a stack, not recursion, as deep code is valid code."""
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    loops = (ast.For, ast.AsyncFor, ast.While)
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, in_loop = stack.pop()
        yield node, in_loop
        inner = in_loop or isinstance(node, loops)
        stack.extend((child, inner) for child in ast.iter_child_nodes(node)
                     if not isinstance(child, scopes))


def _target_names(target: ast.AST) -> list[str]:
    """The plain names an assignment target binds (`a`, `a, (b, *c)`; not `x.y` or `x[0]`)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for element in target.elts for n in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []
