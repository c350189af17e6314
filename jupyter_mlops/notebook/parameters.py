"""Parameters from the `parameters` cell: names checked, types taken from literal defaults,
and the one grammar by which every entry point reads a value for them.

`-p NAME VALUE`, `-f params.yaml`, the REST API, sweeps and `submit` all call
`parameter_values`: a value given as text is parsed by the parameter's declared type (a float
takes `1e-3`, a dict takes JSON or a Python literal); a value given as data (YAML, JSON) is
checked against it. So the same input is accepted, or refused with the same message, everywhere.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
from collections.abc import Iterable, Mapping
from typing import Any

from jupyter_mlops.errors import CellError, ParameterError, did_you_mean
from jupyter_mlops.notebook.model import PARAMETER_TYPES, Cell, Parameter

_REFUSED = object()  # a value the declared type does not take
_PYTHON: dict[str, type] = {name: python for python, name in PARAMETER_TYPES.items()}
# Lists and dicts in a value: papermill writes the value as code, and Python's parser reads
# at most 200 nested brackets.
MAX_DEPTH = 100
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})

# What each declared type accepts, said once for every entry point's messages.
EXPECTED = {
    "int": "an int (a whole number such as 3)",
    "float": "a float (a finite number such as 0.5 or 1e-3)",
    "bool": "a bool (true/false, yes/no, on/off or 1/0)",
    "str": "a str",
    "list": "a list (JSON or a Python literal such as [1, 2])",
    "dict": "a dict (JSON or a Python literal such as {'a': 1})",
}


def check_parameter_name(name: str, notebook: str | None = None) -> None:
    """Papermill pastes names into code unescaped: only plain identifiers may pass."""
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise ParameterError(str(name), "a parameter name must be a Python identifier", notebook)
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ParameterError(name, "a parameter name must not be a Python keyword", notebook)


def type_name(value: object) -> str | None:
    """The parameter type of a value, or None when parameters cannot take it."""
    return PARAMETER_TYPES.get(type(value))


def read_parameters(path: str, cell: Cell, tree: ast.Module) -> list[Parameter]:
    """Every assignment of the parameters cell, with its literal default."""
    found: list[Parameter] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or a bare literal
        assignment = _assignment(stmt)
        if assignment is None:
            raise CellError(path, cell.index, cell.first_line,
                            f"line {stmt.lineno}: a parameters cell holds only assignments "
                            "of literal values such as `epochs = 10`")
        target, value = assignment
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


def _assignment(stmt: ast.stmt) -> tuple[str, ast.expr] | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            return target.id, stmt.value
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        if isinstance(stmt.target, ast.Name):
            return stmt.target.id, stmt.value
    return None


# --- values: the one grammar ----------------------------------------------------------------

def parameter_values(parameters: Mapping[str, Parameter],
                     given: Mapping[str, Any] | Iterable[tuple[str, Any]],
                     notebook: str | None = None) -> dict[str, Any]:
    """Each given value read by its parameter's declared type; unknown names are refused.
    `notebook` (or a pipeline file) is named in the messages."""
    pairs = given.items() if isinstance(given, Mapping) else given
    return {name: parameter_value(known_parameter(parameters, name, notebook), value, notebook)
            for name, value in pairs}


def known_parameter(parameters: Mapping[str, Parameter], name: str,
                    notebook: str | None = None) -> Parameter:
    """The parameter called `name`, or an error listing the known ones."""
    check_parameter_name(name, notebook)
    if name in parameters:
        return parameters[name]
    close = did_you_mean(name, parameters)
    hint = f"; {close}" if close else ""
    known = f"known: {', '.join(parameters)}{hint}" if parameters else \
        "there are none: tag a cell `parameters`"
    raise ParameterError(name, f"unknown parameter ({known})", notebook)


def parameter_value(parameter: Parameter, value: Any, notebook: str | None = None) -> Any:
    """`value` for `parameter`: text is parsed by the declared type, data is checked against it
    (an int is taken for a float). Only plain data passes: papermill writes it as a literal."""
    kind = parameter.type
    parsed = _from_text(kind, value) if isinstance(value, str) else _from_data(kind, value)
    if parsed is _REFUSED:
        got = _shown(value) if isinstance(value, str) else f"{_type_of(value)} {_shown(value)}"
        raise ParameterError(parameter.name, f"expected {EXPECTED[kind]}, got {got} "
                             f"(the default is {parameter.default!r})", notebook)
    _check_plain(parameter.name, parsed, notebook)
    return parsed


def _from_text(kind: str, text: str) -> Any:
    try:
        if kind == "str":
            return text
        if kind == "int":
            return int(text)
        if kind == "float":
            return _finite(float(text))
        if kind == "bool":
            return _boolean(text)
        if kind == "NoneType":  # no declared type: plain data if it reads as such, else the text
            literal = _literal(text)
            return literal if type(literal) in PARAMETER_TYPES else text
        literal = _literal(text)
        return literal if type(literal) is _PYTHON[kind] else _REFUSED
    except ValueError:
        return _REFUSED


def _from_data(kind: str, value: Any) -> Any:
    if kind == "NoneType":
        return value
    if kind == "float" and type(value) in (int, float):
        try:
            return _finite(float(value))
        except OverflowError:  # an int of 400 digits and more is beyond every float
            return _REFUSED
    return value if type(value) is _PYTHON[kind] else _REFUSED


def _finite(number: float) -> Any:
    """inf and nan are refused: JSON (REST replies, KFP's runtime config) cannot carry them."""
    return number if math.isfinite(number) else _REFUSED


def _boolean(text: str) -> Any:
    word = text.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else _REFUSED


def _literal(text: str) -> Any:
    """JSON first (`{"a": 1}`, `true`, `null`), then a Python literal (`{'a': 1}`, `True`)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _REFUSED


def _shown(value: Any, limit: int = 120) -> str:
    """The value as the message quotes it; a long one is cut, the message stays readable."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]}...{text[-2:]}"


def _type_of(value: Any) -> str:
    return PARAMETER_TYPES.get(type(value), type(value).__name__)


def _check_plain(name: str, value: Any, notebook: str | None) -> None:
    """Only plain data: anything else would reach the kernel as code papermill cannot escape.

    Walked with a stack, not recursion: a YAML anchor may make a list that holds itself, and
    a value nested deeper than MAX_DEPTH is refused, as Python's parser could not read it back.
    """
    stack, open_ids = [(value, 0, False)], set()
    while stack:
        item, depth, done = stack.pop()
        if done:  # every element of this container has been checked
            open_ids.discard(id(item))
            continue
        _check_scalar(name, item, notebook)
        if isinstance(item, (list, dict)):
            if id(item) in open_ids:
                raise ParameterError(name, "the value contains itself (a self-referencing "
                                     "YAML anchor?)", notebook)
            if depth >= MAX_DEPTH:
                raise ParameterError(name, f"the value is nested more than {MAX_DEPTH} levels "
                                     "deep", notebook)
            open_ids.add(id(item))
            stack.append((item, depth, True))
            stack.extend((element, depth + 1, False)
                         for element in _elements(name, item, notebook))


def _check_scalar(name: str, value: Any, notebook: str | None) -> None:
    if type(value) not in PARAMETER_TYPES:
        raise ParameterError(name, f"values of type {type(value).__name__} are not accepted",
                             notebook)
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(name, f"{value!r} is not accepted: only finite numbers", notebook)


def _elements(name: str, value: list | dict, notebook: str | None) -> list[Any]:
    if isinstance(value, list):
        return list(reversed(value))
    for key in value:
        if not isinstance(key, str):
            raise ParameterError(name, f"dictionary keys must be strings, got {_shown(key)}",
                                 notebook)
    return list(reversed(value.values()))
