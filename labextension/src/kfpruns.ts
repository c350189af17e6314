/**
 * The Runs panel's "Kubeflow Pipelines" section: the newest KFP runs of the active notebook's
 * pipeline (state, start, duration, a link to the KFP UI), read through the server's kfp-runs
 * route from the KFP host the server is configured with (the browser never names one). Shown
 * only when the server has a KFP host; polled slowly, faster while a run is under way, and
 * standing by while the panel is hidden.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';

import { requestAPI } from './api';
import { duration, h, when } from './dom';

/** How often to ask: while a run is pending or running, and otherwise. */
const LIVE_MS = 15000;
const IDLE_MS = 60000;
const SHOWN = 5;

/** One KFP run, as the kfp-runs route answers (jupyter_mlops/kfp/runs.py). */
export interface IKfpRun {
  id: string;
  name: string;
  /** KFP's state: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, ... */
  state: string;
  created_at: string | null;
  finished_at: string | null;
  url: string;
}

interface IKfpRuns {
  pipeline: string;
  runs: IKfpRun[];
}

/** KFP's states drawn with the panel's own status colours. */
const STATUS: Record<string, string> = {
  PENDING: 'running',
  RUNNING: 'running',
  CANCELING: 'running',
  SUCCEEDED: 'finished',
  FAILED: 'failed',
  CANCELED: 'killed'
};

/**
 * The section's model and view: set `notebook` and `enabled`; put `node` in the panel.
 */
export class KfpRunsView {
  constructor(
    private trans: TranslationBundle,
    private isVisible: () => boolean
  ) {
    this.node.className = 'jp-mlops-kfp';
  }

  readonly node = document.createElement('section');

  set notebook(path: string | null) {
    if (path !== this._notebook) {
      this._notebook = path;
      this._answer = null;
      this._error = '';
      void this._poll.refresh();
    }
  }

  /** Whether the server has a KFP host (its config's kfp_enabled). */
  set enabled(on: boolean) {
    if (on !== this._enabled) {
      this._enabled = on;
      void this._poll.refresh();
    }
  }

  /** Ask now (the panel was shown: the poll stood by while it was hidden). */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  dispose(): void {
    this._poll.dispose();
  }

  private async fetch(): Promise<void> {
    const notebook = this._notebook;
    if (!this._enabled || !notebook) {
      this.draw();
      return;
    }
    try {
      const answer = await requestAPI<IKfpRuns>('kfp-runs', {}, { notebook, limit: SHOWN });
      if (notebook === this._notebook) {
        this._answer = answer;
        this._error = '';
      }
    } catch (error) {
      this._error = this.trans.__('Cannot list Kubeflow runs: %1', (error as Error).message);
    }
    const live = this._answer?.runs.some(r => STATUS[r.state] === 'running') ?? false;
    this._poll.frequency = { interval: live ? LIVE_MS : IDLE_MS, backoff: false, max: IDLE_MS };
    this.draw();
  }

  private draw(): void {
    const node = this.node;
    node.textContent = '';
    if (!this._enabled || !this._notebook || (!this._answer && !this._error)) {
      return;
    }
    const trans = this.trans;
    const pipeline = this._answer?.pipeline ?? '';
    node.appendChild(
      h('div', { className: 'jp-mlops-kfp-title' }, trans.__('Kubeflow Pipelines: %1', pipeline))
    );
    if (this._error) {
      node.appendChild(h('div', { className: 'jp-mlops-kfp-message' }, this._error));
    } else if (!this._answer?.runs.length) {
      node.appendChild(
        h('div', { className: 'jp-mlops-kfp-message' }, trans.__('No Kubeflow runs yet.'))
      );
    } else {
      node.appendChild(
        h('table', { className: 'jp-mlops-kfp-runs' }, ...this._answer.runs.map(r => row(r)))
      );
    }
  }

  private _notebook: string | null = null;
  private _enabled = false;
  private _answer: IKfpRuns | null = null;
  private _error = '';
  private _poll = new Poll({
    factory: () => this.fetch(),
    frequency: { interval: IDLE_MS, backoff: false, max: IDLE_MS },
    standby: () => !this.isVisible() || 'when-hidden',
    name: 'jupyter-mlops:kfp-runs'
  });
}

/** A run's row: its state, its name linking to the KFP UI, its start and duration. */
function row(run: IKfpRun): HTMLElement {
  const start = run.created_at ? Date.parse(run.created_at) : null;
  const end = run.finished_at ? Date.parse(run.finished_at) : null;
  const status = STATUS[run.state] ?? 'unknown';
  const took = start ? (end ?? (status === 'running' ? Date.now() : null)) : null;
  return h(
    'tr',
    { className: `jp-mlops-kfp-run jp-mlops-status-${status}`, 'data-kfp-run': run.id },
    h('td', { className: 'jp-mlops-status', title: run.state }, run.state.toLowerCase()),
    h(
      'td',
      {},
      h('a', { href: run.url, target: '_blank', rel: 'noopener', title: run.name }, run.name)
    ),
    h('td', {}, when(start)),
    h('td', {}, duration(took !== null && start !== null ? took - start : null))
  );
}
