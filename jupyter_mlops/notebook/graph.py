"""Building the StepGraph: names each step reads and binds, the edges they imply, validation."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import CellError, GraphError, cell_ref, reason_of
from jupyter_mlops.notebook.analysis import CodeNames, analyse, parse_cell
from jupyter_mlops.notebook.kale_meta import kale_metadata
from jupyter_mlops.notebook.layout import DraftStep, Layout, code_cells, lay_out, pipeline_name
from jupyter_mlops.notebook.model import (
    Cell,
    Edge,
    GateTag,
    GraphWarning,
    Parameter,
    Resources,
    SecretEnv,
    Step,
    StepGraph,
    StepOptions,
    VolumeMount,
)
from jupyter_mlops.notebook.parameters import read_parameters
from jupyter_mlops.notebook.reader import read_notebook
from jupyter_mlops.notebook.tags import CellTags


def read_graph(path: str | Path) -> StepGraph:
    """Read the notebook at `path` and build its StepGraph."""
    return build_graph(read_notebook(path), str(path))


def build_graph(notebook: Any, path: str) -> StepGraph:
    """The StepGraph of an nbformat v4 notebook; `path` names the notebook in errors."""
    kale = kale_metadata(notebook, path)
    layout = lay_out(path, code_cells(notebook), kale.present)
    parameters = _parameters(path, layout.parameter_cells)
    setup = _Names.of(path, layout.setup_cells)
    first_reads: dict[str, dict[str, Cell]] = {}
    steps = [_step(path, draft, layout, setup, parameters, first_reads, kale.step_defaults)
             for draft in layout.steps.values()]
    graph = StepGraph(
        path=path,
        name=pipeline_name(kale.pipeline_name or Path(path).stem),
        dialect=layout.dialect,
        steps=steps,
        edges=[],
        parameters=parameters,
        setup_cells=layout.setup_cells,
        metrics={},
        warnings=layout.warnings,
        experiment=kale.experiment,
        base_image=kale.image,
        description=kale.description,
    )
    _resolve_needs(graph, layout)
    _check_acyclic(graph)  # before Kale's ancestors are walked
    _connect(graph, first_reads)
    _check_acyclic(graph)
    _check_conditions(graph)
    _collect_metrics(graph, layout)
    _collect_gates(graph, layout)
    return graph


@dataclass
class _Names:
    """Names read and bound by a run of cells, kept per step while building."""

    names: CodeNames
    first_read_cell: dict[str, Cell]

    @classmethod
    def of(cls, path: str, cells: Iterable[Cell]) -> _Names:
        names = CodeNames()
        first_read: dict[str, Cell] = {}
        for cell in cells:
            before = set(names.reads)
            analyse(_parse(path, cell), names)
            first_read.update((n, cell) for n in names.reads if n not in before)
        return cls(names, first_read)


def _parse(path: str, cell: Cell) -> ast.Module:
    try:
        return parse_cell(cell.source)
    except SyntaxError as error:
        raise CellError(path, cell.index, cell.first_line,
                        f"line {error.lineno}: syntax error: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError) as error:
        hint = "; Python's parser gives up so on code nested this deeply" \
            if isinstance(error, MemoryError) else ""
        raise CellError(path, cell.index, cell.first_line,
                        f"cannot be analysed: {reason_of(error)}{hint}") from None


def _parameters(path: str, cells: list[Cell]) -> dict[str, Parameter]:
    found: dict[str, Parameter] = {}
    for cell in cells:
        for parameter in read_parameters(path, cell, _parse(path, cell)):
            found[parameter.name] = parameter
    return found


def _step(path: str, draft: DraftStep, layout: Layout, setup: _Names,
          parameters: dict[str, Parameter], first_reads: dict[str, dict[str, Cell]],
          defaults: CellTags) -> Step:
    own = _Names.of(path, draft.cells)
    known = set(setup.names.binds) | set(parameters)
    step = Step(
        name=draft.name,
        tagged_name=draft.tagged_name,
        cells=[*layout.setup_cells, *draft.cells],
        setup_count=len(layout.setup_cells),
        options=_options(path, draft, defaults),
        binds=sorted(own.names.binds),
        reads=[n for n in own.names.reads if n not in known],
        # setup cells run in every step, so the parameters they read are every step's too
        parameters=sorted(n for n in {*setup.names.reads, *own.names.reads} if n in parameters),
        imports=_ordered_union(setup.names.imports, own.names.imports),
    )
    first_reads[step.name] = own.first_read_cell
    _read_condition(step, parameters, draft.cells[0], own.first_read_cell)
    _check_model(path, draft, step)
    for name in sorted(set(own.names.binds) & set(parameters)):
        first = draft.cells[0]
        layout.warnings.append(GraphWarning(
            "parameter-rebound", f"{cell_ref(first.index, first.first_line)}: step "
            f"{step.name!r} rebinds parameter {name!r}; the pipeline passes the parameter's "
            "value, and this step overrides it", first.index))
    return step


def _read_condition(step: Step, parameters: dict[str, Parameter], cell: Cell,
                    first_read: dict[str, Cell]) -> None:
    """A `when:` condition's name is read by the step: a parameter, or a value an earlier step
    binds, which then travels to it like any other input."""
    when = step.options.when
    if when is None:
        return
    if when.metric in parameters:
        step.parameters = sorted({*step.parameters, when.metric})
    elif when.metric not in step.reads:
        step.reads.append(when.metric)
        first_read.setdefault(when.metric, cell)


def _options(path: str, draft: DraftStep, defaults: CellTags) -> StepOptions:
    """The step's options: the notebook's defaults (Kale's metadata), then its own tags."""
    options = StepOptions()
    for cell, tags in [(draft.cells[0], defaults), *zip(draft.cells, draft.tags, strict=True)]:
        for key, value in tags.options.items():
            if key == "resources":
                value = Resources(**{**options.resources.__dict__, **value})  # type: ignore[dict-item]
            elif isinstance(value, tuple):  # secret:/volume: tags add up over the step's cells
                value = _added(path, cell, getattr(options, key), value)
            setattr(options, key, value)
        for key, mapping in tags.mappings.items():
            getattr(options, key).update(mapping)
    return options


def _added(path: str, cell: Cell, present: tuple[SecretEnv | VolumeMount, ...],
           new: tuple[SecretEnv | VolumeMount, ...]) -> tuple[SecretEnv | VolumeMount, ...]:
    """Secrets and volumes of a step; two for one variable or one mount path would clash."""
    taken = {_slot(item): item for item in present}
    for item in new:
        slot = _slot(item)
        if slot in taken:
            raise CellError(path, cell.index, cell.first_line, f"{slot} is set twice in this "
                            f"step, from {_source(taken[slot])} and {_source(item)}")
        taken[slot] = item
    return (*present, *new)


def _slot(item: SecretEnv | VolumeMount) -> str:
    if isinstance(item, SecretEnv):
        return f"environment variable {item.env!r}"
    return f"mount path {item.path!r}"


def _source(item: SecretEnv | VolumeMount) -> str:
    if isinstance(item, SecretEnv):
        return f"secret {item.secret!r} key {item.key!r}"
    return f"claim {item.pvc!r}"


def _check_model(path: str, draft: DraftStep, step: Step) -> None:
    """`model:VAR` names a variable the step's own cells bind or use (`forest.fit(X, y)` on
    an upstream step's forest); `register:` needs a model."""
    options = step.options
    if options.model is None and options.register is None and options.promote is None:
        return
    cell = next(cell for cell, tags in zip(draft.cells, draft.tags, strict=True)
                if {"model", "register", "promote"} & tags.options.keys())
    if options.promote is not None and options.register is None:
        raise CellError(path, cell.index, cell.first_line, f"promote:{options.promote} needs "
                        f"a register:MODEL tag on step {step.name!r}")
    if options.model is None:
        raise CellError(path, cell.index, cell.first_line, f"register:{options.register} "
                        f"needs a model:VARIABLE tag on step {step.name!r}")
    if options.model not in step.binds and options.model not in step.reads:
        raise CellError(path, cell.index, cell.first_line, f"model:{options.model}: step "
                        f"{step.name!r} never assigns nor uses {options.model!r}")


def _resolve_needs(graph: StepGraph, layout: Layout) -> None:
    """Explicit needs:/prev: edges, by tagged name or DNS name."""
    for draft in layout.steps.values():
        step = graph.step(draft.name)
        for wanted, cell in draft.needs:
            name = layout.tagged_names.get(wanted, wanted if wanted in layout.steps else None)
            if name is None:
                known = ", ".join(d.tagged_name for d in layout.steps.values())
                raise CellError(graph.path, cell.index, cell.first_line,
                                f"unknown step {wanted!r} in needs/prev (steps: {known})")
            if name not in step.needs:
                step.needs.append(name)
        step.upstream = list(step.needs)


def _connect(graph: StepGraph, first_reads: dict[str, dict[str, Cell]]) -> None:
    """Find each read name's upstream step; add data edges and inputs/outputs."""
    position = {step.name: i for i, step in enumerate(graph.steps)}
    latest: dict[str, Step] = {}  # name -> nearest earlier step that binds it
    for step in graph.steps:
        binders = latest if graph.dialect == "mlops" else _kale_binders(graph, step, position)
        for name in step.reads:
            producer = binders.get(name)
            if producer is None:
                _warn_unbound(graph, step, name, first_reads[step.name][name])
                continue
            step.inputs[name] = producer.name
        if graph.dialect == "mlops":
            parents = set(step.needs) | set(step.inputs.values())
            step.upstream = sorted(parents, key=position.__getitem__)
        latest.update(dict.fromkeys(step.binds, step))
    if graph.dialect == "kale":
        _chain_kale_steps(graph)
    for step in graph.steps:
        for parent in step.upstream:
            names = tuple(sorted(n for n, src in step.inputs.items() if src == parent))
            graph.edges.append(Edge(parent, step.name, names))
        for name, source in step.inputs.items():
            producer = graph.step(source)
            if name not in producer.outputs:
                producer.outputs.append(name)
    for step in graph.steps:
        step.outputs.sort()


def _chain_kale_steps(graph: StepGraph) -> None:
    """Kale 2.x compiles a step with no prev: tag to run after the step above it in the
    notebook (kale/tests/assets/kfp_dsl/mount_pvc_env_var.py: `train_task.after(load_task)`),
    so a step may read what the one before it wrote to a shared volume. The edge only orders:
    Kale passes values along prev: edges alone, as the binders above were found."""
    for before, step in itertools.pairwise(graph.steps):
        if not step.needs:
            step.upstream.append(before.name)


def _kale_binders(graph: StepGraph, step: Step, position: dict[str, int]) -> dict[str, Step]:
    """Kale looks for a name only among the step's ancestors along prev: edges, nearest first."""
    ancestors = [s for s in graph.steps if s.name in graph.upstream_of(step.name)]
    ancestors.sort(key=lambda s: (position[s.name] > position[step.name], position[s.name]))
    binders: dict[str, Step] = {}
    for ancestor in ancestors:  # least preferred first: later entries win
        binders.update(dict.fromkeys(ancestor.binds, ancestor))
    return binders


def _check_conditions(graph: StepGraph) -> None:
    """A `when:` condition reads a parameter or a value an earlier step binds."""
    for step in graph.steps:
        when = step.options.when
        if when is not None and when.metric not in step.inputs \
                and when.metric not in step.parameters:
            cell = step.first_cell
            raise CellError(graph.path, cell.index, cell.first_line,
                            f"when:{when}: no parameter and no earlier step binds "
                            f"{when.metric!r}")


def _warn_unbound(graph: StepGraph, step: Step, name: str, cell: Cell) -> None:
    graph.warnings.append(GraphWarning(
        "unbound-name", f"{cell_ref(cell.index, cell.first_line)}: step {step.name!r} reads "
        f"{name!r} before any step binds it", cell.index))


def _check_acyclic(graph: StepGraph) -> None:
    """KFP's compiler does not detect cycles; find one and name its steps."""
    children: dict[str, list[str]] = {s.name: [] for s in graph.steps}
    for step in graph.steps:
        for parent in step.upstream:
            children[parent].append(step.name)
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for child in children[name]:
            if state.get(child) == 1:
                cycle = path[path.index(child):] + [child]
                _raise_cycle(graph, cycle)
            if child not in state:
                visit(child)
        path.pop()
        state[name] = 2

    for step in graph.steps:
        if step.name not in state:
            visit(step.name)


def _raise_cycle(graph: StepGraph, cycle: list[str]) -> None:
    where = ", ".join(f"{name!r} at {cell_ref(graph.step(name).first_cell.index)}"
                      for name in dict.fromkeys(cycle))
    raise GraphError(graph.path, f"dependency cycle {' -> '.join(cycle)} ({where})", tuple(cycle))


def _collect_metrics(graph: StepGraph, layout: Layout) -> None:
    """`metrics` cells report from their own step; Kale's from the step that binds each name."""
    for draft in layout.steps.values():
        step = graph.step(draft.name)
        for cell in draft.metrics_cells:
            for name in _metric_names(graph.path, cell, include_bound=True):
                step.metrics.append(name)
                graph.metrics[name] = step.name
    for cell in layout.kale_metric_cells:
        for name in _metric_names(graph.path, cell, include_bound=False):
            producer = next((s for s in reversed(graph.steps) if name in s.binds), None)
            if producer is None and name in graph.parameters:
                producer = _parameter_reporter(graph, name)
            if producer is None:
                graph.warnings.append(GraphWarning(
                    "unbound-metric", f"{cell_ref(cell.index, cell.first_line)}: metric "
                    f"{name!r} is bound by no step", cell.index))
                continue
            producer.metrics.append(name)
            graph.metrics[name] = producer.name


def _parameter_reporter(graph: StepGraph, name: str) -> Step:
    """The step that reports a metric a `pipeline-metrics` cell prints from a parameter: the
    last to run of those reading it, else the last step, which is then given the parameter.
    (Kale's assign_metrics looks only among names the steps assign, and drops such a metric.)"""
    order = graph.order()
    step = next((s for s in reversed(order) if name in s.parameters), order[-1])
    if name not in step.parameters:
        step.parameters = sorted({*step.parameters, name})
    return step


def _collect_gates(graph: StepGraph, layout: Layout) -> None:
    """Each `gate:` judges a metric some step reports; one against the champion needs the one
    model the pipeline registers, whose champion it is compared with."""
    registered = sorted({s.options.register for s in graph.steps if s.options.register})
    for draft in layout.steps.values():
        for cell, tags in zip(draft.cells, draft.tags, strict=True):
            for gate in tags.gates:
                if gate.metric not in graph.metrics:
                    known = ", ".join(sorted(graph.metrics)) or "none"
                    raise CellError(graph.path, cell.index, cell.first_line, f"gate:{gate}: no "
                                    f"metrics cell or step reports {gate.metric!r} (metrics: "
                                    f"{known})")
                if gate.relative and len(registered) != 1:
                    which = ("no step is tagged register:MODEL" if not registered else
                             f"the pipeline registers {', '.join(registered)}")
                    raise CellError(graph.path, cell.index, cell.first_line, f"gate:{gate} "
                                    "compares with the champion of the model the pipeline "
                                    f"registers, but {which}")
                graph.gates.append(GateTag(gate, graph.metrics[gate.metric], cell.index))


def _metric_names(path: str, cell: Cell, include_bound: bool) -> list[str]:
    tree = _parse(path, cell)
    names = [name for s in tree.body if (name := _reported_name(s))]
    if include_bound:
        names += list(analyse(tree).binds)
    return list(dict.fromkeys(names))


def _reported_name(stmt: ast.stmt) -> str | None:
    """`accuracy` or, as Kale requires in pipeline-metrics cells, `print(accuracy)`."""
    if not isinstance(stmt, ast.Expr):
        return None
    value = stmt.value
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "print" and len(value.args) == 1 and not value.keywords):
        value = value.args[0]
    return value.id if isinstance(value, ast.Name) else None


def _ordered_union(*groups: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(name for group in groups for name in group))
