"""Run arguments (`-p NAME VALUE`) checked and typed against the compiled pipeline's inputs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from jupyter_mlops.kfp.errors import KfpSubmitError

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def pipeline_inputs(spec_text: str, source: str = "the pipeline") -> dict[str, str]:
    """Parameter name -> KFP parameter type (NUMBER_INTEGER, STRING, ...) of a compiled spec."""
    try:
        spec = yaml.safe_load(spec_text)
    except yaml.YAMLError as error:
        raise KfpSubmitError(f"{source} is not YAML: {error}") from None
    if not isinstance(spec, dict) or not ({"root", "pipelineSpec"} & set(spec)):
        raise KfpSubmitError(f"{source} is not a KFP pipeline spec (no 'root'); compile a "
                             "notebook with `jupyter-mlops compile` or kfp's compiler")
    spec = spec.get("pipelineSpec", spec)  # a PipelineJob wraps the spec
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: str(info.get("parameterType", "STRING")) for name, info in parameters.items()}


def typed_arguments(pairs: Iterable[tuple[str, str]], inputs: dict[str, str]) -> dict[str, Any]:
    """Each `-p NAME VALUE` converted to the parameter's type; unknown names are refused."""
    arguments: dict[str, Any] = {}
    for name, text in pairs:
        if name not in inputs:
            known = ", ".join(sorted(inputs)) or "none"
            raise KfpSubmitError(f"the pipeline has no parameter {name!r} (it has: {known})")
        arguments[name] = _convert(name, text, inputs[name])
    return arguments


def _convert(name: str, text: str, kind: str) -> Any:
    try:
        if kind == "NUMBER_INTEGER":
            return int(text)
        if kind == "NUMBER_DOUBLE":
            return float(text)
        if kind == "BOOLEAN":
            return _boolean(text)
        if kind in ("LIST", "STRUCT"):
            return _json(text, list if kind == "LIST" else dict)
    except ValueError as error:
        raise KfpSubmitError(f"parameter {name!r}: {text!r} is not a {_readable(kind)} "
                             f"({error})") from None
    return text


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError("use true or false")


def _json(text: str, kind: type) -> Any:
    value = json.loads(text)
    if not isinstance(value, kind):
        raise ValueError(f"JSON {kind.__name__} expected")
    return value


def _readable(kind: str) -> str:
    return {"NUMBER_INTEGER": "integer", "NUMBER_DOUBLE": "number", "BOOLEAN": "boolean",
            "LIST": "JSON list", "STRUCT": "JSON object"}.get(kind, kind.lower())
