"""A sweep's grid: each parameter and the values to sweep it over, in a dict or a grid file.

The one grammar of grids, for the local sweep (runner/sweep.py) and the KFP fan-out
(kfp/sweep.py). A grid file is YAML (or JSON), a mapping of parameter names to lists:

    alpha: [0.1, 1.0, 10.0]
    max_depth: [3, 5]
    label: baseline        # not a list: one value

Every value is read by the notebook's parameter grammar (as `-p` and params.yaml values are);
a list parameter's values are lists, so `weights: [[1, 2], [3]]` sweeps two values. The
combinations are the product of the lists, in the order written. Errors name the grid file
(or the notebook, for a dict) and the parameter at fault.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import ParameterError, SweepError
from jupyter_mlops.notebook.model import StepGraph
from jupyter_mlops.notebook.parameters import known_parameter, parameter_value
from jupyter_mlops.runner.options import read_params_file

GRID_EXAMPLE = "alpha: [0.1, 1.0]"


@dataclass(frozen=True)
class Grid:
    """The grid's axes as given, and the file they came from (named in errors)."""

    axes: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    def combinations(self, graph: StepGraph) -> list[dict[str, Any]]:
        """Each combination as a dict, every value read by the notebook's parameter grammar;
        an empty grid is one run with the notebook's defaults."""
        source = self.source or graph.path
        try:
            axes = {name: _axis(graph, name, values, source)
                    for name, values in self.axes.items()}
        except ParameterError as error:
            raise SweepError(str(error)) from None
        return [dict(zip(axes, combo, strict=True))
                for combo in itertools.product(*axes.values())]


def as_grid(grid: Grid | Mapping[str, Any] | str | Path | None) -> Grid:
    """A Grid from what callers pass: a Grid, a dict, a grid file's path, or nothing."""
    if isinstance(grid, Grid):
        return grid
    if isinstance(grid, (str, Path)):
        return read_grid(grid)
    return Grid(dict(grid or {}))


def read_grid(path: str | Path) -> Grid:
    """The grid in a YAML file; SweepError names the file and what is wrong with it."""
    if not Path(path).exists():
        raise SweepError(f"{path}: no such grid file")
    if _empty(Path(path)):
        raise SweepError(f"{path}: the grid file is empty; write one parameter per line, "
                         f"e.g. `{GRID_EXAMPLE}`")
    try:
        axes = read_params_file(path)
    except ParameterError as error:
        reason = error.reason.replace("parameters file", "grid file")
        raise SweepError(f"{path}: {reason}; a grid file reads like `{GRID_EXAMPLE}`") from None
    if not axes:
        raise SweepError(f"{path}: the grid file names no parameter; write one per line, "
                         f"e.g. `{GRID_EXAMPLE}`")
    return Grid(axes, str(path))


def _empty(path: Path) -> bool:
    """A regular file of no bytes, or /dev/null (a device, which the reader refuses)."""
    if path.is_file():
        return path.stat().st_size == 0
    return os.path.exists(os.devnull) and path.samefile(os.devnull)


def _axis(graph: StepGraph, name: Any, values: Any, source: str) -> list[Any]:
    parameter = known_parameter(graph.parameters, name, source)
    listed = list(values) if isinstance(values, (list, tuple, range)) else [values]
    if not listed:
        raise ParameterError(name, "the grid lists no values", source)
    return [parameter_value(parameter, value, source) for value in listed]
