/**
 * The step graph of a notebook as it is being edited: the server builds it from the editor's
 * content (never the saved file) half a second after the last change, so badges and warnings
 * follow the user's typing without a save.
 */
import type { ICell } from '@jupyterlab/nbformat';
import { NotebookPanel } from '@jupyterlab/notebook';
import type { IDisposable } from '@lumino/disposable';

import { api, ApiError, IGraph } from './api';

/** Quiet time after the last edit before the graph is asked for again. */
export const DEBOUNCE_MS = 500;

/** A fault that stops the graph from being built; `cellId` is the cell's when one is named. */
export interface IGraphError {
  message: string;
  cellId: string | null;
}

/**
 * The last graph built, with the cells it was built from (their model ids, by index: the
 * graph's cell indices), and the fault of the last answer if it was one. A fault keeps the
 * previous graph: half-typed code does not wipe every badge.
 */
export interface IGraphState {
  graph: IGraph | null;
  cellIds: string[];
  error: IGraphError | null;
}

/**
 * Follows one notebook panel: after each pause in editing, posts its cells (outputs left out)
 * and hands each answer to `changed` (the view).
 */
export class LiveGraph implements IDisposable {
  constructor(
    private readonly _panel: NotebookPanel,
    private readonly _changed: (state: IGraphState) => void
  ) {
    void _panel.context.ready.then(() => {
      if (!this.isDisposed) {
        _panel.model?.contentChanged.connect(this._schedule, this);
        this._schedule();
      }
    });
  }

  get state(): IGraphState {
    return this._state;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    window.clearTimeout(this._timer);
    this._panel.model?.contentChanged.disconnect(this._schedule, this);
  }

  /** Ask again now (after a debounce the user does not wait for). */
  refresh(): Promise<void> {
    window.clearTimeout(this._timer);
    return this._fetch();
  }

  private _schedule(): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this._fetch(), DEBOUNCE_MS);
  }

  private async _fetch(): Promise<void> {
    const model = this._panel.model;
    if (this._disposed || !model) {
      return;
    }
    const cells = Array.from(model.cells);
    const notebook = {
      ...(model.toJSON() as object),
      cells: cells.map(c => withoutOutputs(c.toJSON()))
    };
    const body = JSON.stringify(notebook);
    if (body === this._sent) {
      return; // outputs or execution counts changed: the graph cannot have
    }
    this._sent = body;
    const cellIds = cells.map(cell => cell.id);
    const asked = ++this._asked;
    const state = await this._answer(notebook, cellIds);
    if (asked === this._asked && !this._disposed) {
      this._state = state; // a slower answer to an older question is dropped
      this._changed(state);
    }
  }

  private async _answer(notebook: unknown, cellIds: string[]): Promise<IGraphState> {
    try {
      const graph = await api.editedGraph(this._panel.context.path, notebook);
      return { graph, cellIds, error: null };
    } catch (error) {
      if (!(error instanceof ApiError) || error.status >= 500) {
        console.error('jupyter-mlops: the step graph of', this._panel.context.path, error);
        this._sent = ''; // not an answer about this content: ask again on the next change
      }
      const cell = error instanceof ApiError ? error.cell : null;
      const cellId = cell !== null ? (cellIds[cell] ?? null) : null;
      return { ...this._state, error: { message: (error as Error).message, cellId } };
    }
  }

  private _state: IGraphState = { graph: null, error: null, cellIds: [] };
  private _timer = 0;
  private _asked = 0;
  private _sent = '';
  private _disposed = false;
}

/** A cell as JSON with what the graph never reads (outputs, counts) cleared: a small body. */
function withoutOutputs(cell: ICell): ICell {
  return cell.cell_type === 'code' ? { ...cell, outputs: [], execution_count: null } : cell;
}
