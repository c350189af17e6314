"""One KFP component per step, built with kfp's own `dsl.component` from generated source.

Each component embeds its step notebook (the one the local runner executes), runs it with
papermill (jupyter_mlops.steps.runtime), and exposes the executed notebook, its HTML, the step's
values directory and its metrics as artifacts. The function is generated because every step has
its own signature: the parameters it reads, one input per upstream step that sends values, its
outputs. A cluster image rarely has jupyter-mlops installed, so each component also carries the
`jupyter_mlops.steps` package whole, compressed, and imports it from there when the image lacks
it. That package is most of a component's size, so it travels with its docstrings emptied (the
code and its line numbers unchanged) and compressed as one stream: 20 KB a component, not 34.
The step notebook stays plain JSON, readable in the YAML.
"""

from __future__ import annotations

import ast
import base64
import json
import linecache
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import nbformat

from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.kfp import names
from jupyter_mlops.kfp.kfpimport import dsl
from jupyter_mlops.notebook import Parameter, Step, StepGraph

STEPS_PACKAGE = "jupyter_mlops.steps"  # shipped whole in every component
# kfp.dsl's names the generated functions' annotations use (kfp adds its own imports of them)
SOURCE_NAMES = ("HTML", "Artifact", "Dataset", "Input", "Metrics", "Output")

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


def when_outputs(graph: StepGraph, step: Step) -> list[str]:
    """The value of `step` that later steps' `when:` conditions read, returned by its
    component as a float (KFP's `Output` parameter: the one kfp.local's dsl.If resolves)."""
    found = sorted({s.options.when.metric for s in graph.steps if s.options.when is not None
                    and s.inputs.get(s.options.when.metric) == step.name})
    if len(found) > 1:
        raise KfpCompileError(graph.path, f"when: conditions read {', '.join(found)} from "
                              f"step {step.tagged_name!r}; on KFP a step hands one value to "
                              "conditions (compute one, e.g. a flag)", step.tagged_name)
    return found


def build_component(graph: StepGraph, step: Step, notebook: nbformat.NotebookNode,
                    config: ComponentConfig, pipeline: str) -> dsl.base_component.BaseComponent:
    """The KFP component of `step`, named exactly as the step so KFP keeps the name."""
    context = StepContext(pipeline, graph.experiment or graph.name, Path(graph.path).name,
                          step.options.timeout, config.mlflow if config.install else "")
    source = component_source(graph, step, notebook_text(notebook), context, packed_steps())
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


def notebook_text(notebook: Any) -> str:
    """The step notebook as compact, key-sorted JSON: one line in the component's source and
    reproducible YAML. No schema validation (most of nbformat.writes' time): the notebook is
    the runner's, which the runner's own tests validate."""
    return json.dumps(notebook, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def steps_files() -> dict[str, bytes]:
    """Every file of the steps package, `jupyter_mlops/steps/<path>` -> bytes, as
    importlib.resources lists them (bytecode caches aside)."""
    found: dict[str, bytes] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir() and item.name != "__pycache__":
                walk(item, f"{prefix}{item.name}/")
            elif item.is_file() and not item.name.endswith(".pyc"):
                found[prefix + item.name] = item.read_bytes()

    walk(resources.files(STEPS_PACKAGE), STEPS_PACKAGE.replace(".", "/") + "/")
    return dict(sorted(found.items()))


@lru_cache(maxsize=1)
def packed_steps() -> str:
    """steps_files() as JSON (path -> text), zlib-compressed as one stream, in base85: what
    each component writes out to a folder and imports. Python files lose their comments and
    docstrings (blank_prose); the same input always gives the same text (reproducible YAML)."""
    files = {name: data.decode("utf-8") for name, data in steps_files().items()}
    files = {name: blank_prose(text) if name.endswith(".py") else text
             for name, text in files.items()}
    payload = json.dumps(files, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return base64.b85encode(zlib.compress(payload, 9)).decode("ascii")


def blank_prose(source: str) -> str:
    """`source` with its docstrings emptied, every line where it was: the code is untouched,
    and a traceback from a component names the repository's lines. (Comments stay: telling
    them from a '#' inside a string needs tokenize, ten times the cost for a tenth of the size.)
    """
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    found = _docstrings(ast.parse(source).body)
    for node in sorted(found, key=lambda n: -n.lineno):  # from the end: offsets stay right
        end_row, end_col = node.end_lineno or node.lineno, node.end_col_offset or 0
        first = offsets[node.lineno - 1] + node.col_offset
        source = source[:first] + '"""' + "\n" * (end_row - node.lineno) + '"""' \
            + source[offsets[end_row - 1] + end_col:]
    return source


def _docstrings(body: list[ast.stmt]) -> list[ast.Expr]:
    """The docstrings of a module (or class, function) body and of every class and function
    in it, by statements alone: walking every expression node costs more than parsing."""
    found = [body[0]] if body and isinstance(body[0], ast.Expr) \
        and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str) \
        else []
    for statement in body:
        blocks = [getattr(statement, name, []) for name in ("body", "orelse", "finalbody")]
        blocks += [handler.body for handler in getattr(statement, "handlers", [])]
        for block in blocks:
            if isinstance(statement, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                found += _docstrings(block)
            else:  # an if, try, with, loop: a def inside it has its own docstring
                found += [doc for doc in _docstrings(block) if doc is not block[0]]
    return found


def component_source(graph: StepGraph, step: Step, notebook_json: str, context: StepContext,
                     steps: str = "") -> str:
    """The Python source of the step's component function.

    kfp's executor imports the function, which puts the shipped steps package on the path of
    its process and of the step's kernel when the image lacks jupyter-mlops, and calls the
    runtime. The package travels as one string literal, not as kfp `additional_funcs`: kfp
    tokenises the source of every function a component carries (inspect.getsource), line by
    line, for each step; that was half of a compile's time.
    """
    parameters = step.parameters
    arguments = [_argument(graph.parameters[name]) for name in parameters]
    arguments.append(f"{names.TRACKING_PARAMETER}: str")
    arguments.append(f"{names.RUN_ID_INPUT}: str")
    arguments += [f"{names.input_name(p)}: Input[Dataset]" for p in producers(step)]
    arguments += [f"{names.VALUES_OUTPUT}: Output[Dataset]",
                  f"{names.NOTEBOOK_OUTPUT}: Output[Artifact]",
                  f"{names.HTML_OUTPUT}: Output[HTML]"]
    if step.metrics:
        arguments.append(f"{names.METRICS_OUTPUT}: Output[Metrics]")
    conditions = when_outputs(graph, step)
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
        + (") -> float:\n" if conditions else "):\n")
        + f'    """Step {step.tagged_name!r} of {graph.name!r}, run by papermill."""\n'
        f"    import base64\n"
        f"    import importlib.util\n"
        f"    import json\n"
        f"    import os\n"
        f"    import sys\n"
        f"    import tempfile\n"
        f"    import zlib\n\n"
        f"    steps = {steps!r}  # the {STEPS_PACKAGE} package, packed\n"
        f"    notebook = {notebook_json!r}\n"
        f"    with tempfile.TemporaryDirectory(prefix='mlops-steps-') as folder:\n"
        f"        if importlib.util.find_spec('jupyter_mlops') is None:  # not in the image\n"
        f"            for name, text in json.loads(zlib.decompress(base64.b85decode(steps)))"
        f".items():\n"
        f"                os.makedirs(os.path.dirname(os.path.join(folder, name)), "
        f"exist_ok=True)\n"
        f"                with open(os.path.join(folder, name), 'w', encoding='utf-8') as out:\n"
        f"                    out.write(text)\n"
        f"            sys.path.insert(0, folder)\n"
        f"            path = os.environ.get('PYTHONPATH')  # the step's kernel imports it too\n"
        f"            os.environ['PYTHONPATH'] = folder + (os.pathsep + path if path else '')\n"
        f"        from {STEPS_PACKAGE}.runtime import decode_json_parameter, run_step_notebook\n\n"
        f"        step = {{{facts}'step': {step.name!r},\n"
        f"                'run_id': {names.RUN_ID_INPUT}, "
        f"'tracking_uri': {names.TRACKING_PARAMETER}}}\n"
        f"        metrics = run_step_notebook(notebook, {{{values}}}, {{{inputs}}},\n"
        f"                                    {names.VALUES_OUTPUT}.path, "
        f"{names.NOTEBOOK_OUTPUT}.path,\n"
        f"                                    {names.HTML_OUTPUT}.path, step)\n"
        + log_metrics
        + _write_conditions(conditions)
    )


def _write_conditions(values: list[str]) -> str:
    """Source returning the value a later `when:` reads, as a float."""
    if not values:
        return ""
    return (f"        import pathlib\n"
            f"        from {STEPS_PACKAGE}.serializers import load\n\n"
            f"        return float(load(pathlib.Path({names.VALUES_OUTPUT}.path), "
            f"{values[0]!r}))\n")


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
    namespace = {name: getattr(dsl, name) for name in SOURCE_NAMES}
    # dont_inherit: this module's `from __future__ import annotations` would turn the
    # annotations into strings, which kfp cannot type.
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)
    return namespace[function]
