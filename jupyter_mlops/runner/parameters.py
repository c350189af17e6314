"""Pipeline parameters of a local run: defaults, then `-f params.yaml`, then `-p NAME VALUE`.

Every value is read by the one grammar of jupyter_mlops.notebook.parameters (by the type of
the parameters cell's literal default), before any step runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from jupyter_mlops.errors import ParameterError, reason_of
from jupyter_mlops.notebook import StepGraph, parameter_values


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a params.yaml file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ParameterError(str(path), f"the parameters file is not UTF-8 text: {error}") \
            from None
    except (OSError, yaml.YAMLError, ValueError, RecursionError) as error:
        # ValueError: an integer of more digits than Python reads; RecursionError: deep nesting
        raise ParameterError(str(path), "cannot read the parameters file: "
                             f"{reason_of(error).split(';')[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(str(path), "a parameters file holds a mapping of name: value")
    return data


def resolve(graph: StepGraph, given: Mapping[str, Any] | None = None,
            cli_pairs: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """Every parameter's value: defaults, then `given` (data), then `cli_pairs` (text)."""
    values = {name: p.default for name, p in graph.parameters.items()}
    values.update(parameter_values(graph.parameters, given or {}, graph.path))
    values.update(parameter_values(graph.parameters, cli_pairs, graph.path))
    return values
