"""One KFP component per step, built with kfp's own `dsl.component` from generated source.

Each component embeds its step notebook (the one the local runner executes), runs it with
papermill, and exposes the executed notebook, its HTML, the step's values directory and its
metrics as artifacts. The function is generated because every step has its own signature:
the parameters it reads, one input per upstream step that sends values, its outputs.
"""

from __future__ import annotations

import linecache
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import nbformat

from jupyter_mlops.kfp import names, runtime
from jupyter_mlops.kfp.kfpimport import dsl
from jupyter_mlops.kfp.stepnotebooks import notebook_text, packed_support, step_parameters
from jupyter_mlops.notebook import Parameter, Step, StepGraph

RUNTIME_MODULE = "mlops_kfp_runtime"  # runtime.py's name inside a component

# A parameter's type name (notebook model) -> the annotation KFP types the input with. A
# None default travels as JSON text ("null"): kfp.local cannot read a None pipeline default.
ANNOTATIONS = {"int": "int", "float": "float", "str": "str", "bool": "bool",
               "list": "list", "dict": "dict", "NoneType": "str"}


@dataclass(frozen=True)
class ComponentConfig:
    """What a component needs besides the step: where it runs and what it installs."""

    image: str
    packages: tuple[str, ...]
    install: bool
    pip_index_urls: tuple[str, ...] = ()
    mlflow: str = ""  # pinned requirement installed at run time when tracking needs it


@dataclass(frozen=True)
class StepContext:
    """The step's fixed facts the component hands to runtime.run_step_notebook."""

    pipeline: str
    experiment: str
    notebook: str
    timeout: float | None
    mlflow: str


def producers(step: Step) -> list[str]:
    """Upstream steps whose values this step reads, in a stable order."""
    return sorted(set(step.inputs.values()))


def build_component(graph: StepGraph, step: Step, notebook: nbformat.NotebookNode,
                    config: ComponentConfig, pipeline: str) -> dsl.base_component.BaseComponent:
    """The KFP component of `step`, named exactly as the step so KFP keeps the name."""
    context = StepContext(pipeline, graph.experiment or graph.name, Path(graph.path).name,
                          step.options.timeout, config.mlflow if config.install else "")
    source = component_source(graph, step, notebook_text(notebook), context, packed_support())
    func = _define(source, names.function_name(step.name), step.name)
    component = dsl.component(
        func,
        base_image=config.image,
        packages_to_install=list(config.packages) if config.install else None,
        pip_index_urls=list(config.pip_index_urls) or None,
        install_kfp_package=config.install,
    )
    # KFP derives the component and task name from the function name; keep the step's.
    component.component_spec.name = step.name
    component.name = step.name
    return component


@lru_cache(maxsize=1)
def runtime_source() -> str:
    """runtime.py's text, which every component writes next to itself and imports."""
    return Path(runtime.__file__).read_text(encoding="utf-8")


def component_source(graph: StepGraph, step: Step, notebook_json: str, context: StepContext,
                     support: str = "") -> str:
    """The Python source of the step's component function.

    kfp's executor imports the function, which writes runtime.py beside itself and calls it.
    The runtime travels as one string literal, not as kfp `additional_funcs`: kfp tokenises
    the source of every function a component carries (inspect.getsource), line by line, for
    each step; that was half of a compile's time.
    """
    parameters = step_parameters(graph, step)
    arguments = [_argument(graph.parameters[name]) for name in parameters]
    arguments.append(f"{names.TRACKING_PARAMETER}: str")
    arguments.append(f"{names.RUN_ID_INPUT}: str")
    arguments += [f"{names.input_name(p)}: Input[Dataset]" for p in producers(step)]
    arguments += [f"{names.VALUES_OUTPUT}: Output[Dataset]",
                  f"{names.NOTEBOOK_OUTPUT}: Output[Artifact]",
                  f"{names.HTML_OUTPUT}: Output[HTML]"]
    if step.metrics:
        arguments.append(f"{names.METRICS_OUTPUT}: Output[Metrics]")
    inputs = ", ".join(f"{value!r}: {names.input_name(producer)}.path"
                       for value, producer in sorted(step.inputs.items()))
    values = ", ".join(f"{name!r}: {_value(graph.parameters[name])}" for name in parameters)
    facts = "".join(f"{key!r}: {value!r}, " for key, value in sorted(asdict(context).items()))
    log_metrics = (f"        for name, value in sorted(metrics.items()):\n"
                   f"            {names.METRICS_OUTPUT}.log_metric(name, value)\n"
                   if step.metrics else "")
    return (
        f"def {names.function_name(step.name)}(\n"
        + "".join(f"    {argument},\n" for argument in arguments)
        + "):\n"
        f'    """Step {step.tagged_name!r} of {graph.name!r}, run by papermill."""\n'
        f"    import os\n"
        f"    import sys\n"
        f"    import tempfile\n\n"
        f"    runtime = {runtime_source()!r}\n"
        f"    notebook = {notebook_json!r}\n"
        f"    with tempfile.TemporaryDirectory(prefix='mlops-runtime-') as folder:\n"
        f"        with open(os.path.join(folder, '{RUNTIME_MODULE}.py'), 'w',"
        f" encoding='utf-8') as handle:\n"
        f"            handle.write(runtime)\n"
        f"        sys.path.insert(0, folder)\n"
        f"        from {RUNTIME_MODULE} import decode_json_parameter, run_step_notebook\n\n"
        f"        step = {{{facts}'step': {step.name!r}, 'support': {support!r},\n"
        f"                'run_id': {names.RUN_ID_INPUT}, "
        f"'tracking_uri': {names.TRACKING_PARAMETER}}}\n"
        f"        metrics = run_step_notebook(notebook, {{{values}}}, {{{inputs}}},\n"
        f"                                    {names.VALUES_OUTPUT}.path, "
        f"{names.NOTEBOOK_OUTPUT}.path,\n"
        f"                                    {names.HTML_OUTPUT}.path, step)\n"
        + log_metrics
    )


def _argument(parameter: Parameter) -> str:
    return f"{parameter.name}: {ANNOTATIONS[parameter.type]}"


def _value(parameter: Parameter) -> str:
    """The expression handing a parameter to papermill; JSON text is read back for None defaults."""
    if parameter.type == "NoneType":
        return f"decode_json_parameter({parameter.name})"
    return parameter.name


def _define(source: str, function: str, step_name: str):
    """Define the generated function so `inspect.getsource`, which kfp calls, can read it back."""
    filename = f"<jupyter-mlops step {step_name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(""
                 "from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output\n",
                 filename + " imports", "exec", dont_inherit=True), namespace)
    # dont_inherit: this module's `from __future__ import annotations` would turn the
    # annotations into strings, which kfp cannot type.
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)
    return namespace[function]
