"""One step of a StepGraph as a self-contained notebook that papermill executes.

The local runner and a KFP component run the very same notebook; everything that differs between
them arrives as papermill parameters: the step's notebook parameters and three reserved ones,
`_mlops_inputs` (name -> directory holding that value), `_mlops_outputs_dir` and
`_mlops_metrics_path`. Cells carry `metadata.mlops` = {"role", "cell_index", "tags"} so an error
in the executed notebook can be traced back to the source notebook's cell. The source cells' tags
stay in `metadata.mlops.tags`, not in `metadata.tags`: nbformat's schema forbids commas in tags
(`needs:a,b`), and only the generated parameters cell may carry papermill's `parameters` tag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nbformat

from jupyter_mlops.steps.mlflow_vocabulary import REFERENCE_PROFILE_ARTIFACT
from jupyter_mlops.steps.model_logging import model_entry

if TYPE_CHECKING:  # the notebook layer's objects, read by attribute: this package stays alone
    from jupyter_mlops.notebook import Cell, Step, StepGraph

# Bump when the generated code changes: it is part of every cache key.
FORMAT_VERSION = 2
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def build_step_notebook(graph: StepGraph, step: Step) -> nbformat.NotebookNode:
    """The notebook that runs `step`: parameters, inputs loaded, setup, own cells, outputs saved."""
    cells = [_parameters_cell(graph, step), _inputs_cell(step)]
    cells += [_source_cell(cell, "setup", n) for n, cell in enumerate(step.setup_cells)]
    cells += [_source_cell(cell, "step", n) for n, cell in enumerate(step.own_cells)]
    cells.append(_outputs_cell(step))
    # Built as plain dicts: nbformat's new_code_cell validates each cell against the schema,
    # a quarter of a KFP compile. The tests validate the result instead.
    notebook = nbformat.from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                   "cells": cells})
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata["mlops"] = {"pipeline": graph.name, "step": step.name, "source": graph.path,
                                  "format": FORMAT_VERSION}
    if step.options.model:  # what the runner, or the KFP component, logs once the step is done
        notebook.metadata["mlops"].update(model_entry(step.options.model, step.options.register))
    return notebook


def _code_cell(source: str, role: str, n: int = 0, cell_index: int | None = None,
               source_tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    # Stable ids: the same step always yields the same notebook.
    return nbformat.from_dict({
        "id": f"mlops-{role}-{n}", "cell_type": "code", "execution_count": None,
        "source": source, "outputs": [],
        "metadata": {"mlops": {"role": role, "cell_index": cell_index, "tags": list(source_tags)}},
    })


def _parameters_cell(graph: StepGraph, step: Step) -> nbformat.NotebookNode:
    lines = [f"# Parameters of step {step.name!r}; papermill injects the values after this cell."]
    for name in step.parameters:
        lines.append(f"{name} = {graph.parameters[name].default!r}")
    lines += [
        "_mlops_inputs = {}  # value name -> directory holding it",
        "_mlops_outputs_dir = 'outputs'  # where this step's outputs are written",
        "_mlops_metrics_path = 'metrics.json'  # where this step's metrics are written",
    ]
    cell = _code_cell("\n".join(lines), "parameters")
    cell.metadata["tags"] = ["parameters"]  # where papermill injects the values
    return cell


def _inputs_cell(step: Step) -> nbformat.NotebookNode:
    lines = ["# Inputs from upstream steps.",
             "from pathlib import Path as _mlops_Path",
             "from jupyter_mlops.steps import serializers as _mlops_serializers"]
    for name in sorted(step.inputs):
        lines.append(f"{name} = _mlops_serializers.load(_mlops_Path(_mlops_inputs[{name!r}]), "
                     f"{name!r})  # from {step.inputs[name]}")
    return _code_cell("\n".join(lines), "inputs")


def _source_cell(cell: Cell, role: str, n: int) -> nbformat.NotebookNode:
    return _code_cell(cell.source, role, n, cell.index, cell.tags)


def _outputs_cell(step: Step) -> nbformat.NotebookNode:
    lines = ["# Outputs for downstream steps, and this step's metrics."]
    saved = list(step.outputs)
    if step.options.model and step.options.model not in saved:
        saved.append(step.options.model)  # model:VAR, logged from there once the step is done
    for name in saved:
        lines.append(f"_mlops_serializers.dump({name}, _mlops_Path(_mlops_outputs_dir), {name!r}, "
                     f"step={step.name!r})")
    metrics = ", ".join(f"{name!r}: globals().get({name!r})" for name in step.metrics)
    lines.append(f"_mlops_serializers.write_metrics(_mlops_metrics_path, {{{metrics}}})")
    if step.options.model:
        lines += _profile_lines(step.options.model)
    return _code_cell("\n".join(lines), "outputs")


def _profile_lines(model: str) -> list[str]:
    """The model's reference profile (its training data: X_train, else X), written beside it
    by jupyter-mlops' monitoring layer where the kernel has it (a KFP image may not)."""
    return [
        "try:  # the model's reference profile, for drift reports",
        "    from jupyter_mlops.monitoring.reference import capture as _mlops_capture",
        "except ImportError:",
        "    _mlops_capture = None",
        "if _mlops_capture is not None:",
        "    try:",
        f"        _mlops_profile = _mlops_capture({model}, globals())",
        "        if _mlops_profile is not None:",
        f"            (_mlops_Path(_mlops_outputs_dir) / {REFERENCE_PROFILE_ARTIFACT!r})"
        ".write_text(_mlops_profile)",
        "    except Exception as _mlops_error:  # the step succeeded; its model has no profile",
        "        import sys as _mlops_sys",
        "        print(f'jupyter-mlops: no reference profile stored with the model: "
        "{_mlops_error}', file=_mlops_sys.stderr)",
    ]
