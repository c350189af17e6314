"""Run arguments for `submit`, read by the notebook's parameter grammar and shaped for KFP.

The compiled spec gives every pipeline input's KFP type; when the notebook is at hand its
parameters cell gives the declared types and defaults, so `submit` reads `-p` values exactly as
`jupyter-mlops run` does (jupyter_mlops.notebook.parameters), with the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from jupyter_mlops.errors import KfpSubmitError, reason_of
from jupyter_mlops.notebook import Parameter, StepGraph, parameter_values

# A compiled input's KFP type -> the notebook type it was compiled from (None defaults are
# compiled as STRING; see components.ANNOTATIONS).
NOTEBOOK_TYPES = {"NUMBER_INTEGER": "int", "NUMBER_DOUBLE": "float", "BOOLEAN": "bool",
                  "STRING": "str", "LIST": "list", "STRUCT": "dict"}


def pipeline_inputs(spec_text: str, source: str = "the pipeline") -> dict[str, Parameter]:
    """The inputs of a compiled spec as parameters: the notebook type of each KFP type, and the
    spec's default."""
    try:
        spec = yaml.safe_load(spec_text)
    except yaml.YAMLError as error:
        raise KfpSubmitError(f"{source} is not YAML: {reason_of(error)}") from None
    except (ValueError, RecursionError) as error:  # a 5,000-digit number, nesting 5,000 deep
        raise KfpSubmitError(f"{source} cannot be read: {reason_of(error).split(';')[0]}") \
            from None
    if not isinstance(spec, dict) or not ({"root", "pipelineSpec"} & set(spec)):
        raise KfpSubmitError(f"{source} is not a KFP pipeline spec (no 'root'); compile a "
                             "notebook with `jupyter-mlops compile` or kfp's compiler")
    spec = spec.get("pipelineSpec", spec)  # a PipelineJob wraps the spec
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    found = {}
    for name, info in parameters.items():
        kind = NOTEBOOK_TYPES.get(str(info.get("parameterType")), "str")
        default = info.get("defaultValue")
        if kind == "int" and isinstance(default, float) and default.is_integer():
            default = int(default)  # protobuf keeps every number as a double
        found[name] = Parameter(name, default, kind, -1)
    return found


def typed_arguments(given: Mapping[str, Any] | Iterable[tuple[str, Any]], spec_text: str,
                    source: str, graph: StepGraph | None = None) -> dict[str, Any]:
    """The run's arguments: each value read by its parameter's type (the notebook's own when
    `graph` is given), unknown names refused; errors name the notebook, else `source`."""
    inputs = pipeline_inputs(spec_text, source)
    declared = graph.parameters if graph else inputs
    pairs = list(given.items() if isinstance(given, Mapping) else given)
    # Inputs the compiler adds (the tracking URI) are no parameters of the notebook: read by
    # their pipeline type, and left out of the list of the notebook's parameters in messages.
    added = {name: inputs[name] for name, _ in pairs if name in inputs and name not in declared}
    values = parameter_values(added, [(n, v) for n, v in pairs if n in added], source)
    values |= parameter_values(declared, [(n, v) for n, v in pairs if n not in added],
                               graph.path if graph else source)
    kinds = {**added, **declared}
    return {name: _argument(kinds[name], value) for name, value in values.items()}


def _argument(parameter: Parameter, value: Any) -> Any:
    """A None-default parameter travels as JSON text; its component decodes it."""
    return json.dumps(value) if parameter.type == "NoneType" else value
