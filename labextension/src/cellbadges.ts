/**
 * Tagging you can see: each cell of a tagged notebook shows the step it belongs to (a bar and
 * a badge in that step's DAG colour), its role (parameters, setup, skip, metrics) and the
 * graph's warnings about it, from the graph of the notebook as edited (livegraph.ts).
 */
import { Cell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { IGraph } from './api';
import { cellLabel, h } from './dom';
import { IGraphState, LiveGraph } from './livegraph';
import { stepColor } from './stepcolor';

const STEP_CELL = 'jp-mlops-step-cell';
const BADGES = 'jp-mlops-cell-badges';
const WARNINGS = 'jp-mlops-cell-warnings';
const COLOR_VAR = '--jp-mlops-step-color';

/** What one cell shows. */
interface ICellView {
  step: string | null;
  first: boolean;
  color: string | null;
  roles: string[];
  warnings: string[];
}

/** Roles shown under another name: a Kale metrics cell is a metrics cell to the user. */
const ROLE_LABELS: Record<string, string> = { 'kale-metrics': 'metrics' };

/**
 * Follow every notebook the tracker opens: its live graph and its cells' badges. Returns the
 * live graph of a panel (the tagging commands read its step names).
 */
export function followNotebooks(
  tracker: INotebookTracker
): (panel: NotebookPanel) => LiveGraph | undefined {
  const graphs = new WeakMap<NotebookPanel, LiveGraph>();
  const follow = (panel: NotebookPanel) => {
    const live = new LiveGraph(panel, state => render(panel, state));
    graphs.set(panel, live);
    panel.disposed.connect(() => live.dispose());
  };
  tracker.forEach(follow);
  tracker.widgetAdded.connect((_, panel) => follow(panel));
  return panel => graphs.get(panel);
}

/** Draw the answer on every cell (cells it does not cover show nothing). */
function render(panel: NotebookPanel, state: IGraphState): void {
  const views = cellViews(state);
  panel.content.widgets.forEach(cell => show(cell, views.get(cell.model.id)));
  panel.node.dataset.mlopsGraph = state.error ? 'error' : 'ok'; // tests wait on an answer
}

/** Each cell's view, by cell model id. A notebook without step tags is one step: no step
 * badges. */
function cellViews(state: IGraphState): Map<string, ICellView> {
  const { graph, cellIds, error } = state;
  const views = new Map<string, ICellView>();
  const view = (id: string | null | undefined): ICellView => {
    const key = id ?? '';
    const found = views.get(key) ?? {
      step: null,
      first: false,
      color: null,
      roles: [],
      warnings: []
    };
    views.set(key, found);
    return found;
  };
  if (graph && Object.keys(graph.cells ?? {}).length > 0) {
    addSteps(graph, index => view(cellIds[index]));
  }
  for (const warning of graph?.warnings ?? []) {
    if (warning.cell_index !== null) {
      view(cellIds[warning.cell_index]).warnings.push(onCell(warning.message, warning.cell_index));
    }
  }
  if (error?.cellId) {
    view(error.cellId).warnings.push(onCell(error.message, cellIds.indexOf(error.cellId)));
  }
  return views;
}

function addSteps(graph: IGraph, view: (index: number) => ICellView): void {
  // No step tag: the notebook is one implicit step ("main", as the DAG shows it). A badge on
  // every cell would name a step nobody wrote; the roles (parameters, setup) still show.
  const tagged = Object.values(graph.cells ?? {}).some(roles => roles.includes('step'));
  for (const step of tagged ? graph.steps : []) {
    const color = stepColor(graph, step.name);
    step.cells.forEach((index, i) =>
      Object.assign(view(index), { step: step.name, first: i === 0, color })
    );
  }
  for (const [index, roles] of Object.entries(graph.cells ?? {})) {
    view(Number(index)).roles = roles.filter(r => r !== 'step').map(r => ROLE_LABELS[r] ?? r);
  }
}

/** A message without its "cell N ('first line'): " prefix, which the cell itself says. */
function onCell(message: string, index: number): string {
  const start = message.indexOf(`${cellLabel(index)} (`);
  const end = start < 0 ? -1 : message.indexOf('): ', start);
  return end < 0 ? message : message.slice(end + 3);
}

/** The view each cell is to show: a cell of a windowed notebook not rendered yet shows the
 * latest one when it first renders (`ready`). */
const latest = new WeakMap<Cell, ICellView | undefined>();

function show(cell: Cell, view: ICellView | undefined): void {
  latest.set(cell, view);
  void cell.ready.then(() => draw(cell, latest.get(cell)));
}

/** Put a cell's bar, badges and warnings in place (or take them away). */
function draw(cell: Cell, view: ICellView | undefined): void {
  cell.node.querySelector(`.${BADGES}`)?.remove();
  cell.node.querySelector(`.${WARNINGS}`)?.remove();
  cell.toggleClass(STEP_CELL, !!view?.color);
  if (view?.color) {
    cell.node.style.setProperty(COLOR_VAR, view.color);
  } else {
    cell.node.style.removeProperty(COLOR_VAR);
  }
  const input = cell.node.querySelector('.jp-Cell-inputWrapper');
  if (!view || !input) {
    return;
  }
  if (view.step || view.roles.length) {
    input.appendChild(badges(view));
  }
  if (view.warnings.length) {
    input.after(
      h(
        'div',
        { className: WARNINGS },
        ...view.warnings.map(w => h('div', { className: 'jp-mlops-cell-warning' }, `⚠ ${w}`))
      )
    );
  }
}

function badges(view: ICellView): HTMLElement {
  const step =
    view.step &&
    h(
      'span',
      {
        className: 'jp-mlops-cell-badge jp-mlops-cell-step' + (view.first ? ' jp-mod-first' : ''),
        title: view.first ? `starts step ${view.step}` : `in step ${view.step}`,
        'data-step': view.step
      },
      view.step
    );
  const roles = view.roles.map(role =>
    h('span', { className: 'jp-mlops-cell-badge jp-mlops-cell-role', 'data-role': role }, role)
  );
  return h('div', { className: BADGES }, step, ...roles);
}
