"""The gate task a compiled pipeline ends with when its notebook has gates or registers a model.

After every step, it takes the Metrics artifacts of the steps whose metrics are gated and calls
models/release.py's `release_pipeline_run`, the decision the local runner makes after its
steps: a failing quality gate fails the task and so the KFP run; otherwise the `register:`
step's model, logged by that step on its MLflow run, is registered as `@challenger` and
promoted when the gates against the champion pass. It reads and writes the registry, so it
needs jupyter-mlops and mlflow in its image (installed when the compile installs packages).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jupyter_mlops._version import __version__
from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.kfp import names
from jupyter_mlops.kfp.components import ComponentConfig, _define
from jupyter_mlops.kfp.kfpimport import dsl
from jupyter_mlops.notebook import StepGraph

GATE_TASK = "mlops-gate"  # the task's name; no step can take it (the mlops- prefix is ours)
_FUNCTION = "mlops_gate"


def gated_steps(graph: StepGraph) -> list[str]:
    """The steps whose Metrics artifacts the gate task reads, in notebook order."""
    wanted = {tag.step for tag in graph.gates}
    return [step.name for step in graph.steps if step.name in wanted]


def gate_component(graph: StepGraph, config: ComponentConfig) -> Any | None:
    """The gate task's component, or None when the notebook neither gates nor registers."""
    from jupyter_mlops.models.release import ReleasePlan

    plan = ReleasePlan.of(graph)
    if plan is None:
        return None
    if any(step.name == GATE_TASK for step in graph.steps):
        raise KfpCompileError(graph.path, f"the step name {GATE_TASK!r} is the gate task's; "
                                          "rename the step", GATE_TASK)
    source = gate_source(graph, json.dumps(plan.to_dict(), sort_keys=True))
    component = dsl.component(
        _define(source, _FUNCTION, GATE_TASK),
        base_image=config.image,
        packages_to_install=[f"jupyter-mlops=={__version__}", config.mlflow]
        if config.install else None,
        pip_index_urls=list(config.pip_index_urls) or None,
        install_kfp_package=config.install,
    )
    component.component_spec.name = component.name = GATE_TASK
    return component


def gate_source(graph: StepGraph, plan_json: str) -> str:
    """The Python source of the gate task's function: one Metrics input per gated step."""
    inputs = [_metrics_input(step) for step in gated_steps(graph)]
    arguments = [f"{names.TRACKING_PARAMETER}: str", f"{names.RUN_ID_INPUT}: str",
                 *(f"{name}: Input[Metrics]" for name in inputs)]
    experiment = graph.experiment or graph.name
    return (
        f"def {_FUNCTION}(\n" + "".join(f"    {argument},\n" for argument in arguments) + "):\n"
        f'    """The gates of {graph.name!r}, its model registered and promoted."""\n'
        f"    import json\n\n"
        f"    from jupyter_mlops.models.release import ReleasePlan, release_pipeline_run\n\n"
        f"    metrics = {{}}\n"
        f"    for found in ({''.join(f'{name}, ' for name in inputs)}):\n"
        f"        metrics.update(found.metadata)\n"
        f"    plan = ReleasePlan.from_dict(json.loads({plan_json!r}))\n"
        f"    release_pipeline_run(plan, metrics, {names.TRACKING_PARAMETER}, {experiment!r},\n"
        f"                         {names.RUN_ID_INPUT})\n"
    )


def add_gate_task(graph: StepGraph, component: Any, values: Mapping[str, Any],
                  tasks: Mapping[str, Any]) -> Any:
    """The gate task, after every step; never cached: the registry changes between runs."""
    arguments = {names.TRACKING_PARAMETER: values[names.TRACKING_PARAMETER],
                 names.RUN_ID_INPUT: dsl.PIPELINE_JOB_ID_PLACEHOLDER}
    for step in gated_steps(graph):
        arguments[_metrics_input(step)] = tasks[step].outputs[names.METRICS_OUTPUT]
    task = component(**arguments)
    task.after(*tasks.values())
    task.set_caching_options(False)
    return task


def _metrics_input(step: str) -> str:
    return f"{names.RESERVED_PREFIX}metrics_{step.replace('-', '_')}"
