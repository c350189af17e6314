"""The StepGraph as text, JSON, Mermaid or Graphviz dot, for `jupyter-mlops graph`."""

from __future__ import annotations

import json
from collections.abc import Callable

from jupyter_mlops.errors import cells_ref
from jupyter_mlops.notebook.model import StepGraph


def as_text(graph: StepGraph) -> str:
    lines = [f"pipeline {graph.name} ({graph.dialect} tags) from {graph.path}"]
    if graph.parameters:
        lines.append("parameters:")
        lines += [f"  {p.name}: {p.type} = {p.default!r}" for p in graph.parameters.values()]
    lines.append("steps:")
    for step in graph.steps:
        lines.append(f"  {step.name}  ({cells_ref([c.index for c in step.own_cells])})")
        if step.upstream:
            lines.append(f"    after: {', '.join(step.upstream)}")
        if step.parameters:
            lines.append(f"    parameters: {', '.join(step.parameters)}")
        if step.outputs:
            lines.append(f"    outputs: {', '.join(step.outputs)}")
        if step.metrics:
            lines.append(f"    metrics: {', '.join(step.metrics)}")
        gates = [str(tag.gate) for tag in graph.gates if tag.step == step.name]
        if gates:
            lines.append(f"    gates: {', '.join(gates)}")
        release = [f"{key}:{value}" for key in ("model", "register", "promote")
                   if (value := getattr(step.options, key))]
        if release:
            lines.append(f"    model: {' '.join(release)}")
    if graph.edges:
        lines.append("edges:")
        lines += [f"  {e.source} -> {e.target}" + (f": {', '.join(e.names)}" if e.names else "")
                  for e in graph.edges]
    if graph.warnings:
        lines.append("warnings:")
        lines += [f"  {w.message}" for w in graph.warnings]
    return "\n".join(lines)


def as_json(graph: StepGraph) -> str:
    return json.dumps(graph.to_dict(), indent=2, default=repr)


def as_mermaid(graph: StepGraph) -> str:
    lines = ["flowchart TD"]
    lines += [f"    {_node_id(s.name)}[\"{s.name}\"]" for s in graph.steps]
    for edge in graph.edges:
        label = f"|{', '.join(edge.names)}|" if edge.names else ""
        lines.append(f"    {_node_id(edge.source)} -->{label} {_node_id(edge.target)}")
    return "\n".join(lines)


def as_dot(graph: StepGraph) -> str:
    lines = [f'digraph "{graph.name}" {{', "  rankdir=TB;"]
    lines += [f'  "{s.name}";' for s in graph.steps]
    for edge in graph.edges:
        label = f' [label="{", ".join(edge.names)}"]' if edge.names else ""
        lines.append(f'  "{edge.source}" -> "{edge.target}"{label};')
    lines.append("}")
    return "\n".join(lines)


def _node_id(name: str) -> str:
    return "s_" + name.replace("-", "_")


FORMATS: dict[str, Callable[[StepGraph], str]] = {
    "text": as_text,
    "json": as_json,
    "mermaid": as_mermaid,
    "dot": as_dot,
}
