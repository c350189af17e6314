"""The notebook's StepGraph drawn as a DAG in SVG, each step coloured by its last run's status.

Statuses come from the local runner's run folders (`<out>/runs/<run-id>/run.json`): the
newest run of this notebook wins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from jupyter_mlops.errors import cells_ref
from jupyter_mlops.notebook.model import StepGraph
from jupyter_mlops.widgets.fallback import StaticFallback
from jupyter_mlops.widgets.html import UNKNOWN_COLOUR, esc, status_badge, status_colour

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 36, 60, 18, 10
# The runner's step states, in the run card's vocabulary (which picks the colour).
RUNNER_STATES = {"ok": "FINISHED", "cached": "CACHED", "failed": "FAILED",
                 "skipped": "SKIPPED", "killed": "KILLED", "running": "RUNNING"}
_ARROW = ('<defs><marker id="mlops-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
          'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
          '<path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>')


def layers(graph: StepGraph) -> dict[str, tuple[int, int]]:
    """Each step's (column, row): column = longest path from a first step, rows in order."""
    column: dict[str, int] = {}
    for step in graph.order():
        column[step.name] = 1 + max((column[u] for u in step.upstream), default=-1)
    rows: dict[int, int] = {}
    placed = {}
    for step in graph.steps:  # notebook order within a column
        col = column[step.name]
        placed[step.name] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return placed


def graph_svg(graph: StepGraph, statuses: dict[str, str] | None = None) -> str:
    """The DAG as an SVG; `statuses` maps step names to a status (colours the boxes)."""
    statuses = statuses or {}
    where = layers(graph)
    cols = 1 + max((c for c, _ in where.values()), default=0)
    rows = 1 + max((r for _, r in where.values()), default=0)
    width = PAD * 2 + cols * NODE_W + (cols - 1) * GAP_X
    height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y

    def box(name: str) -> tuple[float, float]:
        col, row = where[name]
        return PAD + col * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y)

    parts = [_ARROW]
    for edge in graph.edges:
        (x1, y1), (x2, y2) = box(edge.source), box(edge.target)
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H / 2, y2 + NODE_H / 2
        mid = (x1 + x2) / 2
        names = ", ".join(edge.names) or "order"
        parts.append(f'<path class="mlops-edge" data-source="{esc(edge.source)}" '
                     f'data-target="{esc(edge.target)}" d="M{x1},{y1} C{mid},{y1} {mid},{y2} '
                     f'{x2},{y2}" fill="none" stroke="#888" marker-end="url(#mlops-arrow)">'
                     f'<title>{esc(edge.source)} → {esc(edge.target)}: {esc(names)}</title>'
                     f'</path>')
    for step in graph.steps:
        x, y = box(step.name)
        status = statuses.get(step.name)
        fill = status_colour(status) if status else UNKNOWN_COLOUR
        tip = f"{step.name}: {status or 'not run'}; {cells_ref([c.index for c in step.own_cells])}"
        parts.append(
            f'<g class="mlops-step" data-step="{esc(step.name)}" '
            f'data-status="{esc(status or "")}"><title>{esc(tip)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" '
            f'fill-opacity="0.85" stroke="#555"/>'
            f'<text x="{x + NODE_W / 2}" y="{y + NODE_H / 2 + 4}" text-anchor="middle" '
            f'font-family="sans-serif" font-size="12" fill="white">{esc(step.name[:22])}</text>'
            f'</g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="step graph of {esc(graph.name)}">{"".join(parts)}</svg>')


def last_run(notebook: str | Path, out: str | Path) -> tuple[str | None, dict[str, str]]:
    """The newest runner run of `notebook` under `out` (the runner's output folder, or one
    run's folder such as a pipeline sweep run's `output`): its id and each step's status."""
    out = Path(out)
    runs = out / "runs"
    target = Path(notebook).resolve()
    folders = [out] if (out / "run.json").is_file() else (
        sorted(runs.iterdir(), reverse=True) if runs.is_dir() else [])
    for folder in folders:  # run ids sort by start time
        summary = _read_summary(folder / "run.json")
        if summary is None or not _same_notebook(summary.get("notebook"), target):
            continue
        steps = summary.get("steps", {})
        return summary.get("run_id", folder.name), {
            name: RUNNER_STATES.get(str(step.get("status")), str(step.get("status")).upper())
            for name, step in steps.items()}
    return None, {}


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _same_notebook(recorded: Any, target: Path) -> bool:
    if not recorded:
        return False
    path = Path(str(recorded))
    return path.resolve() == target if path.is_absolute() else path.name == target.name


class StepGraphView(StaticFallback, widgets.VBox):
    """The DAG and a legend; `refresh()` re-reads the notebook and the last run."""

    def __init__(self, notebook: str | Path, out: str | Path | None = None) -> None:
        self.notebook = Path(notebook)
        self.out = Path(out) if out is not None else _default_out(self.notebook)
        self.graph: StepGraph | None = None
        self.statuses: dict[str, str] = {}
        self.run_id: str | None = None
        self.picture = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.picture, self.refresh_button])
        self.add_class("mlops-step-graph")
        self.refresh()

    def refresh(self) -> StepGraphView:
        from jupyter_mlops.notebook import read_graph

        self.graph = read_graph(str(self.notebook))
        self.run_id, self.statuses = last_run(self.notebook, self.out)
        self.picture.value = self.static_html()
        self.refresh_output()
        return self

    def static_html(self) -> str:
        assert self.graph is not None
        seen = sorted(set(self.statuses.values()))
        legend = " ".join(status_badge(s) for s in seen) or "<i>not run yet</i>"
        run = f"last run <code>{esc(self.run_id)}</code>: " if self.run_id else ""
        return (f'<div class="mlops-step-graph"><div style="font-size:12px">'
                f'<b>{esc(self.graph.name)}</b> — {len(self.graph.steps)} steps; {run}{legend}'
                f'</div>{graph_svg(self.graph, self.statuses)}</div>')


def _default_out(notebook: Path) -> Path:
    """The runner's default folder: `.mlops` in the working directory, else beside the notebook."""
    here = Path(".mlops")
    return here if (here / "runs").is_dir() else notebook.resolve().parent / ".mlops"


def step_graph(notebook: str | Path, out: str | Path | None = None) -> StepGraphView:
    """The notebook's steps as a DAG, coloured by the status of its last local run."""
    return StepGraphView(notebook, out)
