"""The pipeline function: one task per step, wired by the values they pass, options applied.

kfp.dsl.pipeline reads the signature to type the pipeline parameters; the function's
signature is built from the notebook's parameters cell.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.kfp import names
from jupyter_mlops.kfp.components import producers
from jupyter_mlops.kfp.gate import GATE_TASK, add_gate_task
from jupyter_mlops.kfp.kfpimport import dsl
from jupyter_mlops.kfp.options import CompileOptions
from jupyter_mlops.kfp.platform import apply_pod_options
from jupyter_mlops.notebook import Step, StepGraph
from jupyter_mlops.steps.gates import OPERATORS

CONDITION_OUTPUT = "Output"  # KFP's name for a component's return value
PIPELINE_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": bool,
                                  "list": list, "dict": dict, "NoneType": str}
NONE_DEFAULT = "null"  # JSON text of a None default; components decode it (see components.py)


def pipeline_signature(graph: StepGraph) -> inspect.Signature:
    """Notebook parameters, typed and defaulted from the parameters cell, then the tracking URI."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(p.name, kind, annotation=PIPELINE_TYPES[p.type],
                                    default=NONE_DEFAULT if p.default is None else p.default)
                  for p in graph.parameters.values()]
    parameters.append(inspect.Parameter(names.TRACKING_PARAMETER, kind, annotation=str,
                                        default=""))
    return inspect.Signature(parameters)


def build_pipeline(graph: StepGraph, name: str, components: Mapping[str, Any],
                   options: CompileOptions, notes: list[str] | None = None,
                   ) -> dsl.graph_component.GraphComponent:
    """The KFP pipeline (a GraphComponent) of `graph`; call it under kfp.local to run it.

    Options that could not be applied are appended to `notes`.
    """
    notes = [] if notes is None else notes
    signature = pipeline_signature(graph)
    scopes = condition_scopes(graph)
    gate_scope = _gate_scope(graph, scopes) if GATE_TASK in components else None

    def pipeline(*channels: Any) -> None:
        values = dict(zip(signature.parameters, channels, strict=True))
        tasks: dict[str, Any] = {}

        def emit(scope: tuple[str, ...]) -> None:
            """The tasks of `scope`, then each `when:` step's own dsl.If inside it."""
            for step in graph.order():
                if scopes[step.name] == scope:
                    tasks[step.name] = _task(graph, step, components[step.name], values, tasks)
                    _apply_options(graph, step, tasks[step.name], options)
                    notes.extend(apply_pod_options(step, tasks[step.name]))
            for step in graph.order():
                if step.options.when is not None and scopes[step.name] == (*scope, step.name):
                    with dsl.If(_condition(step, values, tasks), name=f"when {step.name}"):
                        emit((*scope, step.name))
            if scope == gate_scope:
                add_gate_task(graph, components[GATE_TASK], values, tasks)

        emit(())

    pipeline.__signature__ = signature  # type: ignore[attr-defined]
    pipeline.__name__ = names.function_name(name)
    description = graph.description or f"Compiled by jupyter-mlops from {Path(graph.path).name}"
    return dsl.pipeline(name=name, description=description)(pipeline)


def condition_scopes(graph: StepGraph) -> dict[str, tuple[str, ...]]:
    """Each step's `when:` steps, outermost first: its own and its upstream steps'. A step
    whose upstream steps sit under conditions that do not nest cannot be placed in dsl.If
    blocks (KFP refers to a task only inside its block): KfpCompileError names them."""
    scopes: dict[str, tuple[str, ...]] = {}
    for step in graph.order():
        outer = max((scopes[u] for u in step.upstream), key=len, default=())
        for upstream in step.upstream:
            if scopes[upstream] != outer[:len(scopes[upstream])]:
                raise KfpCompileError(graph.path, f"step {step.tagged_name!r} follows steps "
                                      f"under when: conditions that do not nest ("
                                      f"{', '.join(scopes[upstream] + outer)}); KFP runs it "
                                      "inside one dsl.If block", step.tagged_name)
        scopes[step.name] = (*outer, step.name) if step.options.when is not None else outer
    return scopes


def _gate_scope(graph: StepGraph, scopes: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The gate task follows every step: it goes in the innermost block, when they nest."""
    inner = max(scopes.values(), key=len, default=())
    if any(scope != inner[:len(scope)] for scope in scopes.values()):
        raise KfpCompileError(graph.path, "the gate task follows every step, but the steps' "
                              "when: conditions do not nest in one another")
    return inner


def _condition(step: Step, values: dict[str, Any], tasks: dict[str, Any]) -> Any:
    """`when:` as KFP's condition: the parameter's channel, or the value its producer's
    component returns (components.when_outputs), compared with the number."""
    when = step.options.when
    assert when is not None
    if when.metric in step.parameters:
        channel = values[when.metric]
    else:
        channel = tasks[step.inputs[when.metric]].outputs[CONDITION_OUTPUT]
    return OPERATORS[when.op](channel, when.value)


def _task(graph: StepGraph, step: Step, component: Callable[..., Any],
          values: dict[str, Any], tasks: dict[str, Any]) -> Any:
    arguments = {p: values[p] for p in step.parameters}
    arguments[names.TRACKING_PARAMETER] = values[names.TRACKING_PARAMETER]
    arguments[names.RUN_ID_INPUT] = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    for producer in producers(step):
        arguments[names.input_name(producer)] = tasks[producer].outputs[names.VALUES_OUTPUT]
    task = component(**arguments)
    # Ordering-only edges (needs:/prev: with no values passed) still order the tasks.
    for upstream in sorted(set(step.upstream) - set(producers(step))):
        task.after(tasks[upstream])
    return task


def _apply_options(graph: StepGraph, step: Step, task: Any, options: CompileOptions) -> None:
    """Per-step tags onto the task; kfp's own checks (quantities) are reported per step."""
    try:
        if step.tagged_name != step.name:
            task.set_display_name(step.tagged_name)
        task.set_caching_options(step.options.cache)
        if step.options.retries:
            task.set_retry(num_retries=step.options.retries)
        _apply_resources(step, task, options.accelerator)
        for key in sorted(options.env):
            task.set_env_variable(key, options.env[key])
    except ValueError as error:
        raise KfpCompileError(graph.path, str(error), step.tagged_name) from None


def _apply_resources(step: Step, task: Any, accelerator: str) -> None:
    resources, limits = step.options.resources, step.options.limits
    if resources.cpu:
        task.set_cpu_request(resources.cpu)
    if resources.memory:
        task.set_memory_request(resources.memory)
    if resources.gpu:
        task.set_accelerator_type(accelerator)
        task.set_accelerator_limit(resources.gpu)
    for key, value in sorted(limits.items()):  # Kale's limit:KEY:VALUE
        if key == "cpu":
            task.set_cpu_limit(value)
        elif key == "memory":
            task.set_memory_limit(value)
        else:  # an extended resource such as nvidia.com/gpu
            task.set_accelerator_type(key)
            task.set_accelerator_limit(value)
