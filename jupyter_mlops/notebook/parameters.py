"""Parameters from the `parameters` cell: names checked, types taken from literal defaults."""

from __future__ import annotations

import ast
import keyword

from jupyter_mlops.errors import CellError, ParameterError
from jupyter_mlops.notebook.model import PARAMETER_TYPES, Cell, Parameter


def check_parameter_name(name: str) -> None:
    """Papermill pastes names into code unescaped: only plain identifiers may pass."""
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise ParameterError(str(name), "a parameter name must be a Python identifier")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ParameterError(name, "a parameter name must not be a Python keyword")


def type_name(value: object) -> str | None:
    """The parameter type of a value, or None when parameters cannot take it."""
    return PARAMETER_TYPES.get(type(value))


def read_parameters(path: str, cell: Cell, tree: ast.Module) -> list[Parameter]:
    """Every assignment of the parameters cell, with its literal default."""
    found: list[Parameter] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or a bare literal
        target, value = _assignment(stmt)
        if target is None:
            raise CellError(path, cell.index, cell.first_line,
                            f"line {stmt.lineno}: a parameters cell holds only assignments "
                            "of literal values such as `epochs = 10`")
        try:
            default = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise CellError(path, cell.index, cell.first_line,
                            f"parameter {target!r}: its default is not a literal value") from None
        kind = type_name(default)
        if kind is None:
            raise CellError(path, cell.index, cell.first_line,
                            f"parameter {target!r}: type {type(default).__name__} is not one of "
                            "int, float, str, bool, list, dict or None")
        try:
            check_parameter_name(target)
        except ParameterError as error:
            raise CellError(path, cell.index, cell.first_line, str(error)) from None
        found.append(Parameter(target, default, kind, cell.index))
    return found


def _assignment(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            return target.id, stmt.value
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        if isinstance(stmt.target, ast.Name):
            return stmt.target.id, stmt.value
    return None, None
