"""`compile_notebook`: a tagged notebook -> a KFP v2 pipeline spec YAML, by kfp's own compiler.

The pipeline function has one task per step, wired by the values they pass, with the step's
options applied; kfp.dsl.pipeline reads its signature, built from the notebook's parameters
cell, to type the pipeline parameters. Secrets, volumes, pod labels and annotations go into the
PlatformSpec through kfp-kubernetes (platform.py). A step's `timeout:` needs no extension: the
component itself bounds the step's execution (steps/runtime.py), as the local runner does, so pip
installs before it do not count against it.
"""

from __future__ import annotations

import inspect
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.kfp import names
from jupyter_mlops.kfp.components import ComponentConfig, build_component, producers
from jupyter_mlops.kfp.gate import GATE_TASK, add_gate_task, gate_component
from jupyter_mlops.kfp.kfpimport import dsl
from jupyter_mlops.kfp.options import DEFAULT_IMAGE, CompileOptions
from jupyter_mlops.kfp.packages import local_modules, mlflow_requirement, step_requirements
from jupyter_mlops.kfp.platform import apply_platform, check_env
from jupyter_mlops.kfp.sweep import FAN_OUT, FanOut, plan_fan_out
from jupyter_mlops.kfp.validate import validate
from jupyter_mlops.notebook import Step, StepGraph, read_graph
from jupyter_mlops.steps.gates import OPERATORS
from jupyter_mlops.steps.step_notebook import build_step_notebook

CONDITION_OUTPUT = "Output"  # KFP's name for a component's return value
PIPELINE_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": bool,
                                  "list": list, "dict": dict, "NoneType": str}
NONE_DEFAULT = "null"  # JSON text of a None default; components decode it (see components.py)


@dataclass
class CompiledPipeline:
    """The result of a compilation: the YAML text and the pipeline kfp.local can execute."""

    graph: StepGraph
    name: str
    yaml: str
    pipeline: Any  # kfp GraphComponent; call it under kfp.local.init(...) to run it
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    sweep: FanOut | None = None  # the grid's loop, when compiled with a sweep


def compile_notebook(notebook: str | Path | StepGraph, output: str | Path | None = None,
                     options: CompileOptions | None = None, **overrides: Any) -> CompiledPipeline:
    """Compile `notebook` (a path or a StepGraph) and write the YAML to `output` when given.

    `overrides` are CompileOptions fields, e.g. `compile_notebook(nb, install_packages=False)`.
    """
    options = _options(options, overrides)
    graph = notebook if isinstance(notebook, StepGraph) else read_graph(notebook)
    name = options.name or graph.name
    validate(graph, name)
    notes = [str(warning) for warning in graph.warnings]
    components = {step.name: build_component(graph, step, _notebook(graph, step),
                                             _config(graph, step, options), name)
                  for step in graph.steps}
    gate = gate_component(graph, _gate_config(graph, options))
    if gate is not None:  # gates or a registered model: the gate task ends the pipeline
        components[GATE_TASK] = gate
    fan_out = plan_fan_out(graph, options.sweep, options.parallelism) if options.sweep else None
    pipeline = _build(graph, name, components, options, fan_out)
    text = _compile(graph, pipeline)
    path = _write(text, output)
    notes += _local_module_notes(graph)
    return CompiledPipeline(graph, name, text, pipeline, path, notes, fan_out)


def _notebook(graph: StepGraph, step) -> Any:
    """The runner's step notebook; its source path shortened to the file name, so the YAML
    does not depend on where the notebook was compiled from."""
    notebook = build_step_notebook(graph, step)
    mlops = notebook.metadata.get("mlops")
    if isinstance(mlops, dict) and "source" in mlops:
        mlops["source"] = Path(graph.path).name
    return notebook


def _options(options: CompileOptions | None, overrides: dict[str, Any]) -> CompileOptions:
    options = options or CompileOptions()
    if overrides:
        from dataclasses import replace

        options = replace(options, **overrides)
    return options


def _config(graph: StepGraph, step, options: CompileOptions) -> ComponentConfig:
    image = step.options.image or options.image or graph.base_image or DEFAULT_IMAGE
    packages = step_requirements(graph, step, options.packages)
    return ComponentConfig(image, tuple(packages), options.install_packages,
                           options.pip_index_urls, mlflow_requirement())


def _gate_config(graph: StepGraph, options: CompileOptions) -> ComponentConfig:
    image = options.image or graph.base_image or DEFAULT_IMAGE
    return ComponentConfig(image, (), options.install_packages, options.pip_index_urls,
                           mlflow_requirement())


def _build(graph: StepGraph, name: str, components: dict, options: CompileOptions,
           fan_out: FanOut | None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # kfp's notice about its default image
        return build_pipeline(graph, name, components, options, fan_out)


def _compile(graph: StepGraph, pipeline: Any) -> str:
    """The YAML of kfp's Compiler().compile(pipeline, path), written with libyaml when present.

    kfp builds the spec and its header comments, with the same calls Compiler.compile makes;
    only the last stage differs: kfp's writer emits the documents with PyYAML's pure-Python
    emitter, most of a compile's time for the long component sources, and libyaml emits the
    same documents (tests/kfp/test_compile.py checks it; only the folding of long strings
    differs) several times faster.
    """
    import yaml

    if not getattr(yaml, "__with_libyaml__", False):
        return _compile_with_kfp(graph, pipeline)
    from google.protobuf import json_format
    from kfp.compiler import pipeline_spec_builder as builder

    try:
        spec = builder.modify_pipeline_spec_with_override(
            pipeline_spec=pipeline.pipeline_spec, pipeline_name=None, pipeline_parameters=None)
    except (ValueError, TypeError) as error:
        raise KfpCompileError(graph.path, f"kfp's compiler refused the pipeline: {error}") \
            from None
    documents = [json_format.MessageToDict(spec)]
    if len(pipeline.platform_spec.platforms) > 0:
        documents.append(json_format.MessageToDict(pipeline.platform_spec))
    comments = builder.extract_comments_from_pipeline_spec(documents[0], pipeline.description)
    return comments + yaml.dump_all(documents, sort_keys=True, Dumper=_json_dumper())


@cache
def _json_dumper() -> type:
    """libyaml's dumper, representing the dicts, lists and strings of MessageToDict's documents
    with the nodes PyYAML's representer makes of them (so the same text), minus its per-node
    type lookup and alias bookkeeping: a quarter of writing the YAML."""
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    class JsonDumper(yaml.CDumper):
        def represent_data(self, data: Any) -> Any:
            if type(data) is str:
                return ScalarNode("tag:yaml.org,2002:str", data)
            if type(data) is dict:
                return MappingNode("tag:yaml.org,2002:map", [
                    (self.represent_data(key), self.represent_data(value))
                    for key, value in sorted(data.items())], flow_style=False)
            if type(data) is list:
                return SequenceNode("tag:yaml.org,2002:seq",
                                    [self.represent_data(item) for item in data], flow_style=False)
            return super().represent_data(data)  # numbers, booleans, null

    return JsonDumper


def _compile_with_kfp(graph: StepGraph, pipeline: Any) -> str:
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="mlops-kfp-") as folder:
        target = Path(folder) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(pipeline, str(target))
        except (ValueError, TypeError) as error:
            raise KfpCompileError(graph.path, f"kfp's compiler refused the pipeline: {error}") \
                from None
        return target.read_text(encoding="utf-8")


def _write(text: str, output: str | Path | None) -> Path | None:
    if output is None:
        return None
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:  # a folder given as the output, no permission, a full disk
        raise KfpCompileError(str(path), f"cannot write the pipeline YAML: {error.strerror}") \
            from None
    return path


def _local_module_notes(graph: StepGraph) -> list[str]:
    found = local_modules(m for step in graph.steps for m in step.imports)
    if not found:
        return []
    return [f"modules {', '.join(found)} come from no installed distribution; they are not "
            "pip-installed, so the image must provide them"]


# --- the pipeline function ------------------------------------------------------------

def pipeline_signature(graph: StepGraph, swept: tuple[str, ...] = ()) -> inspect.Signature:
    """Notebook parameters, typed and defaulted from the parameters cell, then the tracking URI.
    Swept parameters are none: the sweep's loop gives their values."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(p.name, kind, annotation=PIPELINE_TYPES[p.type],
                                    default=NONE_DEFAULT if p.default is None else p.default)
                  for p in graph.parameters.values() if p.name not in swept]
    parameters.append(inspect.Parameter(names.TRACKING_PARAMETER, kind, annotation=str,
                                        default=""))
    return inspect.Signature(parameters)


def build_pipeline(graph: StepGraph, name: str, components: Mapping[str, Any],
                   options: CompileOptions, fan_out: FanOut | None = None,
                   ) -> dsl.graph_component.GraphComponent:
    """The KFP pipeline (a GraphComponent) of `graph`; call it under kfp.local to run it."""
    signature = pipeline_signature(graph, fan_out.parameters if fan_out else ())
    scopes = condition_scopes(graph, fan_out.steps if fan_out else frozenset())
    gate_scope = _gate_scope(graph, scopes) if GATE_TASK in components else None

    def pipeline(*channels: Any) -> None:
        tasks: dict[str, Any] = {}

        def emit(scope: tuple[str, ...], values: dict[str, Any]) -> None:
            """The tasks of `scope`, then each `when:` step's own dsl.If inside it, and the
            sweep's dsl.ParallelFor."""
            for step in graph.order():
                if scopes[step.name] == scope:
                    tasks[step.name] = _task(graph, step, components[step.name], values, tasks)
                    _apply_options(graph, step, tasks[step.name], options)
            for step in graph.order():
                if step.options.when is not None and scopes[step.name] == (*scope, step.name):
                    with dsl.If(_condition(step, values, tasks), name=f"when {step.name}"):
                        emit((*scope, step.name), values)
            if fan_out is not None and fan_out.opens_in(scopes, scope):
                with fan_out.loop(graph, values) as looped:
                    emit((*scope, FAN_OUT), looped)
            if scope == gate_scope:
                add_gate_task(graph, components[GATE_TASK], values, tasks)

        emit((), dict(zip(signature.parameters, channels, strict=True)))

    pipeline.__signature__ = signature  # type: ignore[attr-defined]
    pipeline.__name__ = names.function_name(name)
    description = graph.description or f"Compiled by jupyter-mlops from {Path(graph.path).name}"
    return dsl.pipeline(name=name, description=description)(pipeline)


def condition_scopes(graph: StepGraph, looped: frozenset[str] = frozenset(),
                     ) -> dict[str, tuple[str, ...]]:
    """Each step's blocks, outermost first: its own and its upstream steps' `when:` steps,
    and the sweep's loop (FAN_OUT) for the `looped` steps. A step whose upstream steps sit
    under conditions that do not nest cannot be placed in dsl.If blocks (KFP refers to a task
    only inside its block): KfpCompileError names them."""
    scopes: dict[str, tuple[str, ...]] = {}
    for step in graph.order():
        outer = max((scopes[u] for u in step.upstream), key=len, default=())
        if step.name in looped and FAN_OUT not in outer:
            outer = (*outer, FAN_OUT)
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
    check_env(graph, step, options.env)
    try:
        if step.tagged_name != step.name:
            task.set_display_name(step.tagged_name)
        task.set_caching_options(step.options.cache)
        if step.options.retries:
            task.set_retry(num_retries=step.options.retries)
        _apply_resources(step, task, options.accelerator)
        for key in sorted(options.env):
            task.set_env_variable(key, options.env[key])
        apply_platform(step, task)
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

