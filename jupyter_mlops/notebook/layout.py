"""From tagged cells to the layout of a notebook: parameters, setup, steps and their cells."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from jupyter_mlops.errors import CellError, GraphError, NotebookError, cell_ref
from jupyter_mlops.notebook.model import Cell, GraphWarning
from jupyter_mlops.notebook.tags import KALE, CellTags, TagValueError, parse_tags, suggest_tag

SINGLE_STEP_NAME = "main"
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass
class DraftStep:
    """A step while its cells are being gathered."""

    name: str
    tagged_name: str
    cells: list[Cell] = field(default_factory=list)
    tags: list[CellTags] = field(default_factory=list)
    needs: list[tuple[str, Cell]] = field(default_factory=list)  # (tagged name, cell of the tag)
    metrics_cells: list[Cell] = field(default_factory=list)


@dataclass
class Layout:
    dialect: str
    parameter_cells: list[Cell] = field(default_factory=list)
    setup_cells: list[Cell] = field(default_factory=list)
    kale_metric_cells: list[Cell] = field(default_factory=list)
    steps: dict[str, DraftStep] = field(default_factory=dict)  # notebook order
    tagged_names: dict[str, str] = field(default_factory=dict)  # tagged name -> step name
    warnings: list[GraphWarning] = field(default_factory=list)


def code_cells(notebook: Any) -> list[Cell]:
    """The notebook's code cells; `index` keeps each cell's position among all cells."""
    cells = []
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            cells.append(Cell(index, cell.get("source", ""), tuple(str(t) for t in tags)))
    return cells


def lay_out(path: str, cells: list[Cell], kale_metadata: bool) -> Layout:
    """Sort cells into parameters, setup, metrics and steps, following the tag grammar."""
    parsed = [(cell, _parse(path, cell)) for cell in cells]
    kale = kale_metadata or any(KALE in tags.dialects for _, tags in parsed)
    layout = Layout(dialect="kale" if kale else "mlops")
    has_steps = any(tags.steps for _, tags in parsed)
    current: DraftStep | None = None
    if not has_steps:
        current = layout.steps[SINGLE_STEP_NAME] = DraftStep(SINGLE_STEP_NAME, SINGLE_STEP_NAME)
    block: str | None = None  # Kale: the special block that untagged cells continue
    functions: list[Cell] = []  # Kale: `functions` cells, which follow every `imports` cell
    for cell, tags in parsed:
        _warn_unknown(path, layout, cell, tags)
        if "skip" in tags.roles:
            continue
        role = _place_special(path, layout, cell, tags)
        if role is not None:
            block = "functions" if "functions" in cell.tags else role
        elif kale and has_steps and _untagged(tags) and (block or current is None):
            _continue_kale_block(layout, cell, block)
        else:
            block = None
            current = _step_of(path, layout, cell, tags, current)
            _add_to_step(current, cell, tags)
        if block == "functions":
            functions.append(cell)
    if kale:  # Kale prepends imports, then functions, to every step (parse_notebook)
        layout.setup_cells.sort(key=lambda c: c in functions)
    if not has_steps and not layout.steps[SINGLE_STEP_NAME].cells:
        raise NotebookError(path, "nothing to run: no code cell outside the parameters, setup "
                            "and skip cells")
    return layout


def _add_to_step(step: DraftStep, cell: Cell, tags: CellTags) -> None:
    if not cell.source.strip() and not tags.steps:
        return
    step.cells.append(cell)
    step.tags.append(tags)
    step.needs.extend((name, cell) for name in tags.needs)
    if "metrics" in tags.roles:
        step.metrics_cells.append(cell)


def _parse(path: str, cell: Cell) -> CellTags:
    try:
        return parse_tags(cell.tags)
    except TagValueError as error:
        raise CellError(path, cell.index, cell.first_line, str(error)) from None


def _warn_unknown(path: str, layout: Layout, cell: Cell, tags: CellTags) -> None:
    """A tag close to one of ours is a typo that would silently change the pipeline: refused
    in our dialect; other tags (other tools', Kale's) are only warned about."""
    for tag in tags.unknown:
        close = suggest_tag(tag) if layout.dialect == "mlops" else None
        if close:
            raise CellError(path, cell.index, cell.first_line,
                            f"unknown tag {tag!r}; did you mean {close!r}?")
        layout.warnings.append(GraphWarning(
            "unknown-tag", f"{cell_ref(cell.index, cell.first_line)}: unknown tag {tag!r} ignored",
            cell.index))


_SPECIAL_ROLES = {"parameters": "parameter_cells", "setup": "setup_cells",
                  "kale-metrics": "kale_metric_cells", "functions": "setup_cells"}


def _place_special(path: str, layout: Layout, cell: Cell, tags: CellTags) -> str | None:
    """Parameters, setup and Kale metrics cells belong to no step; the cell's role, if so."""
    roles = [role for role in _SPECIAL_ROLES if role in tags.roles]
    if not roles:
        return None
    if len(roles) > 1 or tags.steps:
        clash = ", ".join(roles + [f"step:{s}" for s in tags.steps])
        raise CellError(path, cell.index, cell.first_line, f"conflicting tags: {clash}")
    getattr(layout, _SPECIAL_ROLES[roles[0]]).append(cell)
    return roles[0]


def _untagged(tags: CellTags) -> bool:
    """No tag that places the cell (Kale reads `step:` with no name as no tag)."""
    return not (any(tags.steps) or tags.needs or tags.options or tags.mappings or tags.gates
                or tags.roles)


def _continue_kale_block(layout: Layout, cell: Cell, block: str | None) -> None:
    """An untagged cell in a Kale notebook, where no step precedes it: Kale's parser (kale
    processors/nbprocessor.py, parse_notebook) adds it to the imports, functions, parameters
    or metrics block above it, and leaves it out of the pipeline when there is none."""
    if not cell.source.strip():
        return
    if block is not None:
        getattr(layout, _SPECIAL_ROLES[block]).append(cell)
    else:
        layout.warnings.append(GraphWarning(
            "left-out-cell", f"{cell_ref(cell.index, cell.first_line)} comes before the first "
            "step and has no tag: left out of the pipeline, as Kale does (tag it skip to say "
            "so, or imports/functions to run it in every step)", cell.index))


def _step_of(path: str, layout: Layout, cell: Cell, tags: CellTags,
             current: DraftStep | None) -> DraftStep:
    """The step a cell joins: one it names, else the one it follows."""
    named = [name for name in tags.steps if name]
    if len(named) > 1:
        raise CellError(path, cell.index, cell.first_line,
                        f"a cell can start only one step, not {', '.join(named)}")
    if named:
        return _open_step(path, layout, cell, named[0])
    if current is None:
        raise CellError(path, cell.index, cell.first_line,
                        "this cell comes before the first step tag and belongs to no step: "
                        "tag it skip to leave it out of the pipeline, setup to run it at the "
                        "start of every step, or step:NAME to make it a step")
    return current


def _open_step(path: str, layout: Layout, cell: Cell, tagged: str) -> DraftStep:
    name = step_name(path, cell, tagged)
    if tagged in layout.tagged_names:
        if layout.dialect == "kale":  # Kale merges the cells of a block named again
            return layout.steps[name]
        first = layout.steps[name].cells[0]
        raise CellError(path, cell.index, cell.first_line,
                        f"duplicate step name {tagged!r}: {cell_ref(first.index)} already "
                        "starts it")
    if name in layout.steps:
        other = layout.steps[name]
        raise GraphError(path, f"step names {other.tagged_name!r} "
                               f"({cell_ref(other.cells[0].index)}) and {tagged!r} "
                               f"({cell_ref(cell.index)}) both become {name!r}; rename one of them",
                         (other.tagged_name, tagged))
    layout.tagged_names[tagged] = name
    step = layout.steps[name] = DraftStep(name, tagged)
    return step


def step_name(path: str, cell: Cell, tagged: str) -> str:
    """The DNS-safe name of a tagged step name; Kale's underscores become dashes, as in KFP."""
    name = re.sub("-+", "-", tagged.replace("_", "-"))
    if not _DNS_LABEL.match(name):
        raise CellError(path, cell.index, cell.first_line,
                        f"step name {tagged!r} is not DNS-safe: use lowercase letters, digits "
                        "and '-', 1 to 63 characters, starting and ending with a letter or digit")
    return name


def pipeline_name(text: str) -> str:
    """A DNS-safe pipeline name from a notebook stem or a Kale pipeline name."""
    return dns_words(text)[:63].rstrip("-") or "pipeline"


def dns_words(text: str) -> str:
    """`text` in a DNS label's characters, for every name made from a person's text (a
    pipeline, a KServe service): lowercase ASCII letters and digits, each other run one '-',
    none at the ends; each caller keeps its own length and first-letter rules."""
    # accents dropped, not their letters: "Modèle Été" is modele-ete, not mod-le-t
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub("[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
