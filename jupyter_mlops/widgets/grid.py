"""A sweep's grid: every combination of the listed values, each read by the notebook's
parameter grammar (jupyter_mlops.notebook.parameters), as `-p` and the REST API read them."""

from __future__ import annotations

import itertools
from typing import Any

from jupyter_mlops.errors import ParameterError
from jupyter_mlops.notebook.model import StepGraph
from jupyter_mlops.notebook.parameters import known_parameter, parameter_value
from jupyter_mlops.widgets.errors import SweepError


def expand_grid(grid: dict[str, Any] | None, graph: StepGraph) -> list[dict[str, Any]]:
    """Each combination as a dict; a value that is not a list/tuple/range is one value.

    An empty grid is one run with the notebook's defaults.
    """
    try:
        axes = {name: _axis(graph, name, values) for name, values in dict(grid or {}).items()}
    except ParameterError as error:
        raise SweepError(str(error)) from None
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def _axis(graph: StepGraph, name: str, values: Any) -> list[Any]:
    parameter = known_parameter(graph.parameters, name, graph.path)
    listed = list(values) if isinstance(values, (list, tuple, range)) else [values]
    if not listed:
        raise ParameterError(name, "the grid lists no values", graph.path)
    return [parameter_value(parameter, value, graph.path) for value in listed]
