"""A sweep's grid: every combination of the listed values, checked against the parameters cell."""

from __future__ import annotations

import itertools
from typing import Any

from jupyter_mlops.notebook.model import StepGraph
from jupyter_mlops.widgets.errors import SweepError


def expand_grid(grid: dict[str, Any] | None, graph: StepGraph) -> list[dict[str, Any]]:
    """Each combination as a dict; a value that is not a list/tuple/range is used as is.

    An empty grid is one run with the notebook's defaults.
    """
    grid = dict(grid or {})
    unknown = sorted(set(grid) - set(graph.parameters))
    if unknown:
        known = ", ".join(graph.parameters) or "none: tag a cell `parameters`"
        raise SweepError(f"{graph.path}: unknown parameter(s) {', '.join(unknown)}; "
                         f"the parameters cell defines: {known}")
    axes = {name: _values(name, value) for name, value in grid.items()}
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def _values(name: str, value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, range)):
        values = list(value)
        if not values:
            raise SweepError(f"parameter {name!r}: the grid lists no values")
        return values
    return [value]
