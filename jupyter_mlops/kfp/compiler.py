"""`compile_notebook`: a tagged notebook -> a KFP v2 pipeline spec YAML, by kfp's own compiler."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.kfp.components import ComponentConfig, build_component
from jupyter_mlops.kfp.gate import GATE_TASK, gate_component
from jupyter_mlops.kfp.options import DEFAULT_IMAGE, CompileOptions
from jupyter_mlops.kfp.packages import local_modules, mlflow_requirement, step_requirements
from jupyter_mlops.kfp.pipeline import build_pipeline
from jupyter_mlops.kfp.validate import validate
from jupyter_mlops.notebook import StepGraph, read_graph
from jupyter_mlops.steps.step_notebook import build_step_notebook


@dataclass
class CompiledPipeline:
    """The result of a compilation: the YAML text and the pipeline kfp.local can execute."""

    graph: StepGraph
    name: str
    yaml: str
    pipeline: Any  # kfp GraphComponent; call it under kfp.local.init(...) to run it
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)


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
    pipeline = _build(graph, name, components, options, notes)
    text = _compile(graph, pipeline)
    path = _write(text, output)
    notes += _local_module_notes(graph)
    return CompiledPipeline(graph, name, text, pipeline, path, notes)


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
           notes: list[str]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # kfp's notice about its default image
        return build_pipeline(graph, name, components, options, notes)


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
    return comments + yaml.dump_all(documents, sort_keys=True, Dumper=yaml.CDumper)


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
