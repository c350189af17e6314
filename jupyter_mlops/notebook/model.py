"""Plain data objects of the notebook model: cells, parameters, steps and the StepGraph."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from jupyter_mlops.steps.gates import Gate


@dataclass(frozen=True)
class Cell:
    """A code cell as the notebook model sees it. `index` counts every cell of the notebook."""

    index: int
    source: str
    tags: tuple[str, ...] = ()

    @property
    def first_line(self) -> str:
        for line in self.source.splitlines():
            if line.strip():
                return line.strip()[:80]
        return ""


@dataclass(frozen=True)
class Resources:
    """Requested compute for a step (KFP requests/limits). Strings as Kubernetes writes them."""

    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None


@dataclass(frozen=True)
class SecretEnv:
    """A Kubernetes secret's key exposed to the step as an environment variable. Only the
    names travel in the pipeline spec; the cluster reads the value when the pod starts."""

    secret: str  # the Secret's name
    key: str  # the key inside the Secret
    env: str  # the environment variable the step reads it from


@dataclass(frozen=True)
class VolumeMount:
    """An existing PersistentVolumeClaim mounted into the step's pod."""

    pvc: str  # the claim's name
    path: str  # absolute mount path inside the container


@dataclass
class StepOptions:
    """Per-step options from tags on the step's cells (and Kale's notebook metadata).

    The platform fields (secrets, volumes, labels, annotations, limits, env) become the
    pipeline's Kubernetes PlatformSpec and container limits on KFP; the local runner ignores
    them.
    """

    cache: bool = True
    retries: int = 0
    timeout: float | None = None
    image: str | None = None
    resources: Resources = field(default_factory=Resources)
    model: str | None = None  # the variable logged as the step's MLflow model (model:VAR)
    register: str | None = None  # the registered model it becomes a version of (register:NAME)
    promote: str | None = None  # the alias it takes when the gates against the champion pass
    when: Gate | None = None  # when:EXPR: the step runs only if this holds (else it is skipped)
    limits: dict[str, str] = field(default_factory=dict)  # limit:KEY:VAL (cpu, memory, other)
    annotations: dict[str, str] = field(default_factory=dict)  # pod annotations
    labels: dict[str, str] = field(default_factory=dict)  # pod labels
    secrets: tuple[SecretEnv, ...] = ()  # secret:NAME:KEY:ENV, in tag order
    volumes: tuple[VolumeMount, ...] = ()  # volume:PVC:/path, in tag order
    env: dict[str, str] = field(default_factory=dict)  # plain variables (e.g. Kale's volume env)


@dataclass(frozen=True)
class Parameter:
    """A notebook parameter: its name, literal default and the type taken from that literal."""

    name: str
    default: Any
    type: str  # one of PARAMETER_TYPES
    cell_index: int


# Parameter type names, keyed by the Python type of the literal default.
PARAMETER_TYPES: dict[type, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "list",
    dict: "dict",
    type(None): "NoneType",
}


@dataclass
class Step:
    """One pipeline step: a run of cells executed together in one kernel."""

    name: str  # DNS-safe, as KFP and the runner use it
    tagged_name: str  # as written in the tag (Kale allows underscores)
    cells: list[Cell]  # setup cells first, then the step's own cells
    setup_count: int = 0  # how many of `cells` are setup cells
    options: StepOptions = field(default_factory=StepOptions)
    needs: list[str] = field(default_factory=list)  # explicit upstream steps (needs:/prev:)
    upstream: list[str] = field(default_factory=list)  # every direct upstream step
    inputs: dict[str, str] = field(default_factory=dict)  # name read -> step that binds it
    outputs: list[str] = field(default_factory=list)  # names bound here that downstream reads
    binds: list[str] = field(default_factory=list)  # every name the own cells bind
    reads: list[str] = field(default_factory=list)  # every free name the own cells read
    parameters: list[str] = field(default_factory=list)  # parameters the step reads
    imports: list[str] = field(default_factory=list)  # top-level modules the cells import
    metrics: list[str] = field(default_factory=list)  # metric names this step reports

    @property
    def setup_cells(self) -> list[Cell]:
        return self.cells[: self.setup_count]

    @property
    def own_cells(self) -> list[Cell]:
        return self.cells[self.setup_count :]

    @property
    def first_cell(self) -> Cell:
        return self.own_cells[0]


@dataclass(frozen=True)
class GateTag:
    """A `gate:` tag: the condition, the step that reports its metric, and the tagged cell."""

    gate: Gate
    step: str
    cell_index: int


@dataclass(frozen=True)
class Edge:
    """A dependency `source` -> `target`, with the names whose values travel along it."""

    source: str
    target: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphWarning:
    """Something worth a look that does not stop the notebook from running."""

    code: str
    message: str
    cell_index: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class StepGraph:
    """The steps of a notebook, in notebook order, with their dependencies and parameters."""

    path: str
    name: str  # pipeline name, DNS-safe
    dialect: str  # "mlops" or "kale"
    steps: list[Step]
    edges: list[Edge]
    parameters: dict[str, Parameter]
    setup_cells: list[Cell]
    metrics: dict[str, str]  # metric name -> step that reports it
    warnings: list[GraphWarning]
    experiment: str | None = None
    base_image: str | None = None
    description: str | None = None
    gates: list[GateTag] = field(default_factory=list)

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def order(self) -> list[Step]:
        """Steps in an order that respects every edge, notebook order among equals."""
        position = {step.name: i for i, step in enumerate(self.steps)}
        placed: list[Step] = []
        done: set[str] = set()
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending if set(s.upstream) <= done]
            first = min(ready, key=lambda s: position[s.name])
            placed.append(first)
            done.add(first.name)
            pending.remove(first)
        return placed

    def downstream(self, name: str) -> set[str]:
        """Every step that depends on `name`, directly or not."""
        children: dict[str, set[str]] = {}
        for edge in self.edges:
            children.setdefault(edge.source, set()).add(edge.target)
        found: set[str] = set()
        stack = [name]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def upstream_of(self, name: str) -> set[str]:
        """Every step `name` depends on, directly or not."""
        found: set[str] = set()
        stack = [name]
        while stack:
            for parent in self.step(stack.pop()).upstream:
                if parent not in found:
                    found.add(parent)
                    stack.append(parent)
        return found

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as `jupyter-mlops graph --format json` prints it."""
        return {
            "path": self.path,
            "name": self.name,
            "dialect": self.dialect,
            "experiment": self.experiment,
            "base_image": self.base_image,
            "parameters": {
                p.name: {"type": p.type, "default": p.default, "cell": p.cell_index}
                for p in self.parameters.values()
            },
            "steps": [_step_dict(step) for step in self.steps],
            "edges": [asdict(edge) | {"names": list(edge.names)} for edge in self.edges],
            "metrics": dict(self.metrics),
            "gates": [{"gate": str(g.gate), "step": g.step, "cell": g.cell_index}
                      for g in self.gates],
            "warnings": [asdict(w) for w in self.warnings],
        }


def _step_dict(step: Step) -> dict[str, Any]:
    return {
        "name": step.name,
        "cells": [cell.index for cell in step.own_cells],
        "setup_cells": [cell.index for cell in step.setup_cells],
        "upstream": step.upstream,
        "inputs": step.inputs,
        "outputs": step.outputs,
        "parameters": step.parameters,
        "imports": step.imports,
        "metrics": step.metrics,
        "options": asdict(step.options),
    }
