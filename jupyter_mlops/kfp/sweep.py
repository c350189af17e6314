"""Sweeps on KFP: the grid fanned out with dsl.ParallelFor, one iteration per combination.

Steps that read a swept parameter, and every step downstream of one, run inside the loop, once
per combination; the others run once, upstream of it, and the loop's steps take their values.
The grid is read by the local sweep's grammar (runner/grid.py) and compiled into the spec as
the loop's items, so the swept parameters are no pipeline inputs. `submit_sweep` compiles and
submits through the same path as `jupyter-mlops submit` (kfp/submit.py).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.kfp.connection import Connection
from jupyter_mlops.kfp.kfpimport import dsl
from jupyter_mlops.kfp.options import CompileOptions
from jupyter_mlops.kfp.submit import Submission, experiment_name, submit_package
from jupyter_mlops.notebook import StepGraph
from jupyter_mlops.runner.grid import Grid, as_grid

FAN_OUT = "mlops:sweep"  # the loop's block among condition scopes; no step name has a colon
LOOP_NAME = "sweep"
# The type a loop variable carries into kfp's type check, by the parameter's notebook type:
# kfp types every key of a dict item by the first key's value (kfp.dsl.for_loop), which would
# refuse an int next to a float. A None default travels as JSON text (components.py).
CHANNEL_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "list",
                 "dict": "dict", "NoneType": "str"}


@dataclass(frozen=True)
class FanOut:
    """The loop of a compiled sweep: the swept parameters, the steps inside, one item per
    combination (values as the components take them)."""

    parameters: tuple[str, ...]
    steps: frozenset[str]
    items: list[dict[str, Any]]
    parallelism: int | None = None

    def opens_in(self, scopes: Mapping[str, tuple[str, ...]], scope: tuple[str, ...]) -> bool:
        """Whether the loop is a block directly inside `scope`."""
        block = (*scope, FAN_OUT)
        return any(s[:len(block)] == block for s in scopes.values())

    @contextlib.contextmanager
    def loop(self, graph: StepGraph, values: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """dsl.ParallelFor over the items; yields `values` with the swept parameters taken
        from the iteration's item."""
        with dsl.ParallelFor(self.items, name=LOOP_NAME, parallelism=self.parallelism) as item:
            looped = dict(values)
            for name in self.parameters:
                variable = getattr(item, name)
                variable.channel_type = CHANNEL_TYPES[graph.parameters[name].type]
                looped[name] = variable
            yield looped


def plan_fan_out(graph: StepGraph, grid: Grid, parallelism: int | None = None) -> FanOut:
    """The loop of `grid` over `graph`; KfpCompileError when no step reads the grid's
    parameters (the loop would be empty)."""
    combinations = grid.combinations(graph)
    parameters = tuple(grid.axes)
    steps = looped_steps(graph, parameters)
    if not steps:
        raise KfpCompileError(graph.path, f"no step reads the swept parameters "
                              f"{', '.join(parameters) or '(none)'} of {grid.source or 'the grid'}")
    _check_conditions(graph, parameters)
    if parallelism is not None and parallelism < 1:
        raise KfpCompileError(graph.path, f"parallelism must be at least 1, got {parallelism}")
    items = [{name: _item_value(graph, name, value) for name, value in combo.items()}
             for combo in combinations]
    return FanOut(parameters, frozenset(steps), items, parallelism)


def looped_steps(graph: StepGraph, parameters: tuple[str, ...]) -> set[str]:
    """The steps reading any of `parameters`, and every step downstream of one."""
    inside: set[str] = set()
    for step in graph.order():
        if set(step.parameters) & set(parameters) or set(step.upstream) & inside:
            inside.add(step.name)
    return inside


def _check_conditions(graph: StepGraph, parameters: tuple[str, ...]) -> None:
    """kfp 2.17's compiler fails on a dsl.If testing a ParallelFor item (an assertion deep in
    its spec builder): a `when:` on a swept parameter is refused, saying what works instead."""
    for step in graph.order():
        when = step.options.when
        if when is not None and when.metric in parameters:
            raise KfpCompileError(graph.path, f"its when: tests the swept parameter "
                                  f"{when.metric!r}, which kfp cannot compile inside the "
                                  "sweep's loop; let an upstream step compute the value "
                                  f"(e.g. `use = {when.metric} > 0.5`) and test that instead",
                                  step.tagged_name)


def _item_value(graph: StepGraph, name: str, value: Any) -> Any:
    return json.dumps(value) if graph.parameters[name].type == "NoneType" else value


@dataclass(frozen=True)
class SubmittedSweep:
    """A sweep's KFP run and the loop it fans out."""

    submission: Submission
    fan_out: FanOut
    experiment: str


def submit_sweep(notebook: str | Path, grid: Grid | Mapping[str, Any] | str | Path,
                 connection: Connection, *, experiment: str | None = None,
                 arguments: Mapping[str, Any] | None = None,
                 options: CompileOptions | None = None,
                 parallelism: int | None = None) -> SubmittedSweep:
    """Compile `notebook` with `grid` fanned out and create one KFP run of it, named after the
    notebook as `jupyter-mlops submit` names its runs. `arguments` are typed values of the
    pipeline's other inputs (the tracking URI)."""
    from dataclasses import replace

    from jupyter_mlops.kfp.compiler import compile_notebook

    options = replace(options or CompileOptions(), sweep=as_grid(grid), parallelism=parallelism)
    with tempfile.TemporaryDirectory(prefix="mlops-sweep-") as folder:
        package = Path(folder) / f"{Path(notebook).stem}.yaml"
        compiled = compile_notebook(notebook, package, options)
        assert compiled.sweep is not None, "compiled with options.sweep"
        experiment = experiment_name(compiled.graph, experiment)
        submission = submit_package(package, connection, arguments=dict(arguments or {}),
                                    experiment=experiment)
    return SubmittedSweep(submission, compiled.sweep, experiment)
