"""KFP-specific checks, run before kfp sees the graph: kfp would mangle or merge these silently."""

from __future__ import annotations

from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.kfp.names import RESERVED_PREFIX, TRACKING_PARAMETER, k8s_name
from jupyter_mlops.notebook import StepGraph

MAX_NAME = 63  # a Kubernetes label value, which KFP uses for task and pipeline names


def validate(graph: StepGraph, pipeline_name: str) -> None:
    """Raise KfpCompileError for the first problem KFP would not report itself."""
    _check_pipeline_name(graph.path, pipeline_name)
    _check_step_names(graph)
    _check_parameters(graph)
    _check_acyclic(graph)


def _check_pipeline_name(path: str, name: str) -> None:
    if not name or k8s_name(name) != name or len(name) > MAX_NAME:
        raise KfpCompileError(path, f"pipeline name {name!r} is not DNS-safe; KFP would rename "
                                    f"it to {k8s_name(name)!r}; use lowercase letters, digits, '-'")


def _check_step_names(graph: StepGraph) -> None:
    """KFP renames `train_model` to `train-model` and a second one to `train-model-2`."""
    seen: dict[str, str] = {}
    for step in graph.steps:
        kfp_name = k8s_name(step.name)
        if kfp_name != step.name or len(step.name) > MAX_NAME:
            raise KfpCompileError(graph.path, f"KFP would rename this step to {kfp_name!r}; use "
                                              "lowercase letters, digits and '-'", step.tagged_name)
        if kfp_name in seen:
            raise KfpCompileError(graph.path, f"KFP would merge it with step {seen[kfp_name]!r} "
                                              f"(both become {kfp_name!r}); rename one",
                                  step.tagged_name)
        seen[kfp_name] = step.tagged_name


def _check_parameters(graph: StepGraph) -> None:
    for name, parameter in graph.parameters.items():
        if name.startswith(RESERVED_PREFIX) or name == TRACKING_PARAMETER:
            raise KfpCompileError(graph.path, f"parameter {name!r}: names starting with "
                                              f"{RESERVED_PREFIX!r} and {TRACKING_PARAMETER!r} "
                                              "are reserved for the pipeline's own inputs")
        _check_default(graph.path, name, parameter.default)


def _check_default(path: str, name: str, default: object) -> None:
    """The spec holds each default as a protobuf Value, which nests at most 100 messages
    deep (a list costs 2, a dict 3): kfp's compiler would fail with a DecodeError."""
    if not isinstance(default, (list, dict)):
        return
    from google.protobuf.message import Error as ProtobufError
    from kfp.compiler.pipeline_spec_builder import to_protobuf_value

    try:
        to_protobuf_value(default)
    except (ProtobufError, RecursionError, ValueError, TypeError):
        raise KfpCompileError(path, f"parameter {name!r}: its default is nested too deeply for "
                                    "a KFP pipeline spec (at most 50 levels of lists or 33 of "
                                    "dicts)") from None


def _check_acyclic(graph: StepGraph) -> None:
    """The notebook model rejects cycles already; KFP's compiler would not, so check again."""
    remaining = {step.name: set(step.upstream) for step in graph.steps}
    unknown = {u for ups in remaining.values() for u in ups} - set(remaining)
    if unknown:
        raise KfpCompileError(graph.path, f"unknown upstream steps {sorted(unknown)}")
    while remaining:
        ready = [name for name, ups in remaining.items() if not ups]
        if not ready:
            raise KfpCompileError(graph.path, f"the steps {sorted(remaining)} form a cycle")
        for name in ready:
            del remaining[name]
        for ups in remaining.values():
            ups.difference_update(ready)
