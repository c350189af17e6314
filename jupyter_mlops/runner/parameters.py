"""Pipeline parameters: values from `-p NAME VALUE` and `-f params.yaml`, checked before any run.

Names must be identifiers (papermill pastes them into code) and known to the parameters cell;
values must match the type of the cell's literal default and hold only plain data, so they reach
the kernel as literals papermill escapes, never as code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from jupyter_mlops.errors import ParameterError
from jupyter_mlops.notebook import StepGraph, check_parameter_name
from jupyter_mlops.notebook.model import PARAMETER_TYPES, Parameter

# A parameter whose default is None takes any of these.
_PLAIN = (bool, int, float, str, list, dict, type(None))


def parse_value(text: str, expected: str | None = None) -> Any:
    """A `-p` value: text for str parameters, else a YAML literal (`7`, `[1, 2]`, `true`)."""
    if expected == "str":
        return text
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text  # not a literal: a string, which the type check judges


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a params.yaml file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError(str(path), f"cannot read the parameters file: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(str(path), "a parameters file holds a mapping of name: value")
    return data


def resolve(graph: StepGraph, given: Mapping[str, Any] | None = None,
            cli_pairs: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """Every parameter's value: defaults, then `given` (typed), then `cli_pairs` (text)."""
    values = {name: p.default for name, p in graph.parameters.items()}
    for name, value in (given or {}).items():
        values[name] = check(graph, name, value)
    for name, text in cli_pairs:
        parameter = _known(graph, name)
        values[name] = check(graph, name, parse_value(text, parameter.type))
    return values


def check(graph: StepGraph, name: str, value: Any) -> Any:
    """`value` for parameter `name`, converted where lossless (int -> float), else an error."""
    parameter = _known(graph, name)
    _check_plain(name, value)
    expected = parameter.type
    if expected == "NoneType":
        return value
    if expected == "float" and type(value) is int:
        return float(value)
    if PARAMETER_TYPES.get(type(value)) != expected:
        got = PARAMETER_TYPES.get(type(value), type(value).__name__)
        raise ParameterError(name, f"expected {expected} (the default is "
                             f"{parameter.default!r}), got {got} {value!r}")
    return value


def _known(graph: StepGraph, name: str) -> Parameter:
    check_parameter_name(name)
    try:
        return graph.parameters[name]
    except KeyError:
        known = ", ".join(graph.parameters) or "none"
        raise ParameterError(name, f"not a parameter of this notebook (parameters: {known})") \
            from None


def _check_plain(name: str, value: Any) -> None:
    """Only plain data: anything else would reach the kernel as code papermill cannot escape."""
    if type(value) not in _PLAIN:
        raise ParameterError(name, f"values of type {type(value).__name__} are not accepted")
    if isinstance(value, list):
        for item in value:
            _check_plain(name, item)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParameterError(name, f"dictionary keys must be strings, got {key!r}")
            _check_plain(name, item)
