/**
 * The "MLOps" sidebar: the active notebook's runs, wherever they were logged (found by the
 * notebook's path tag in every experiment, with a picker to show one experiment), updated
 * while cells run, sortable and filterable, with comparison, details and local pipeline runs'
 * progress; beside the runs, the "Models" view of the same store's registry (models.ts).
 */
import { nullTranslator } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { api, IExperimentRuns, IJob, IRunDetails, IRunSummary, IServerConfig } from './api';
import { metricKeys, renderComparison } from './compare';
import { renderDetails } from './details';
import { duration, h, num, when } from './dom';
import { KfpRunsView } from './kfpruns';
import { ModelsView } from './models';

/** How often to poll: while something runs (or just ran), and otherwise. */
const FAST_MS = 1000;
const SLOW_MS = 10000;
/** How long after a cell starts or ends the panel keeps polling fast: the sender process
 * stores the run's start and end a moment after the kernel logs them (longer when it starts
 * afresh and imports mlflow), so the kernel going idle does not mean the store is settled. */
const SETTLE_MS = 15000;
const KEY_METRICS = 3;

type View = 'list' | 'compare' | 'details';
type Tab = 'runs' | 'models';

/** What the panel needs from the application. */
export interface IPanelHost {
  insertCode: (source: string) => void;
  kernelBusy: () => boolean;
  /** Show a text (an artifact) in a main-area tab titled `title`. */
  openText: (title: string, text: string) => void;
}

/**
 * The MLOps runs panel.
 */
export class RunsPanel extends Widget {
  constructor(private host: IPanelHost) {
    super();
    this.id = 'jp-mlops-panel';
    this.addClass('jp-mlops-panel');
    this.title.caption = 'MLOps';
    this._kfp = new KfpRunsView(nullTranslator.load('jupyter_mlops'), () => this.isVisible);
  }

  /** The notebook whose runs are shown (API path), or null. */
  get notebook(): string | null {
    return this._notebook;
  }

  set notebook(path: string | null) {
    if (path === this._notebook) {
      return;
    }
    this._notebook = path;
    this._models.notebook = path;
    this._kfp.notebook = path;
    this._runs = [];
    this._experiments = [];
    this._picked = null;
    this._selected.clear();
    this._view = 'list';
    void this.refresh();
  }

  /** Server settings, once known. */
  set config(config: IServerConfig | null) {
    this._config = config;
    this._kfp.enabled = config?.kfp_enabled === true;
    this.render(); // the MLflow UI link comes with it
  }

  /** Follow a local pipeline run's progress in the panel. */
  track(job: IJob): void {
    this._jobs.set(job.id, job);
    this.render();
    void this.pollJob(job.id);
  }

  /** A cell was scheduled or finished: fetch now and poll fast until its run settles. */
  cellActivity(): void {
    this._settleUntil = Date.now() + SETTLE_MS;
    this.schedule();
    void this._poll.refresh();
  }

  /** Fetch the runs now (the poll goes on from here). */
  async refresh(): Promise<void> {
    if (!this._notebook) {
      this._message = 'Open a notebook to see its runs.';
      this.render();
      return;
    }
    try {
      const page = await api.runs({
        notebook: this._notebook,
        experiment_id: this._picked ?? undefined,
        order_by: this._order ? [this._order] : undefined,
        max_results: 100
      });
      this._experiments = page.experiments;
      this._runs = page.runs;
      this._total = page.total;
      this._loading = page.loading === true;
      this._message = page.experiments.length
        ? ''
        : 'No runs yet: run a tracked cell (%%mlops track), Run locally or a sweep from this notebook.';
    } catch (error) {
      this._message = `Cannot list runs: ${(error as Error).message}`;
    }
    this.render();
    this.schedule();
  }

  /** Poll faster while the kernel is busy, a run is running or a pipeline runs. */
  private schedule(): void {
    if (this.isDisposed) {
      return;
    }
    const live =
      this.host.kernelBusy() ||
      Date.now() < this._settleUntil ||
      this._runs.some(r => r.status === 'RUNNING') ||
      [...this._jobs.values()].some(j => j.status === 'running');
    const interval = live ? FAST_MS : SLOW_MS;
    this._poll.frequency = { interval, backoff: false, max: SLOW_MS };
  }

  dispose(): void {
    this._poll.dispose();
    this._kfp.dispose();
    super.dispose();
  }

  /** Hidden, the poll stands by; shown again, the list is fetched at once. */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._poll.refresh();
    void this._kfp.refresh();
  }

  private async pollJob(id: string): Promise<void> {
    let job = this._jobs.get(id);
    while (job && job.status === 'running' && !this.isDisposed) {
      await new Promise(resolve => window.setTimeout(resolve, 1000));
      try {
        const next = await api.localRun(id, job.offset);
        job = { ...next, log: (job.log + next.log).slice(-4000) };
        this._jobs.set(id, job);
      } catch (error) {
        console.warn(`jupyter-mlops: stopped following local run ${id}`, error);
        break;
      }
      this.render();
    }
    void this.refresh();
  }

  private render(): void {
    const focused = document.activeElement?.classList.contains('jp-mlops-filter');
    this.draw();
    if (focused) {
      const input = this.node.querySelector<HTMLInputElement>('.jp-mlops-filter');
      input?.focus();
      input?.setSelectionRange(input.value.length, input.value.length);
    }
  }

  private draw(): void {
    const node = this.node;
    node.textContent = '';
    node.appendChild(this.renderHeader());
    if (this._tab === 'models') {
      node.appendChild(this._models.node);
      return;
    }
    node.appendChild(this.renderJobs());
    if (this._view === 'details' && this._details) {
      node.appendChild(
        renderDetails(this._details, {
          back: () => this.showView('list'),
          insert: source => this.host.insertCode(source),
          mlflowUrl: run => this.mlflowUrl(run),
          openRun: runId => void this.openRun(runId),
          openArtifact: path => void this.openArtifact(path),
          artifactUrl: path =>
            api.artifactUrl(this._details!.run_id, path, this._notebook ?? undefined)
        })
      );
      return;
    }
    if (this._view === 'compare') {
      const runs = this._runs.filter(r => this._selected.has(r.run_id));
      node.appendChild(
        h(
          'div',
          {},
          h(
            'button',
            { className: 'jp-mlops-button', onClick: () => this.showView('list') },
            '← Runs'
          ),
          renderComparison(runs, this._chartMetric, metric => {
            this._chartMetric = metric;
            this.render();
          })
        )
      );
      return;
    }
    node.appendChild(this._kfp.node); // the notebook's KFP runs (kfpruns.ts), above its list
    node.appendChild(this.renderList());
  }

  private renderHeader(): HTMLElement {
    return h(
      'div',
      { className: 'jp-mlops-header' },
      h('h2', {}, 'MLOps'),
      this.renderTabs(),
      h(
        'div',
        { className: 'jp-mlops-subtitle' },
        this._notebook ? `${this._notebook}` : '',
        this._experiments.length ? ' · ' : '',
        this.renderPicker()
      )
    );
  }

  /** "Runs" and "Models": the notebook's runs, or the registry of the same store. */
  private renderTabs(): HTMLElement {
    const tab = (name: Tab, label: string) =>
      h(
        'button',
        {
          className: `jp-mlops-tab${this._tab === name ? ' jp-mlops-tab-active' : ''}`,
          'data-tab': name,
          'aria-pressed': String(this._tab === name),
          onClick: () => this.showTab(name)
        },
        label
      );
    return h(
      'div',
      { className: 'jp-mlops-tabs', role: 'tablist' },
      tab('runs', 'Runs'),
      tab('models', 'Models')
    );
  }

  private showTab(tab: Tab): void {
    this._tab = tab;
    this.render();
    if (tab === 'models') {
      void this._models.refresh();
    }
  }

  /** The experiment picker: all the notebook's experiments, or one of them. */
  private renderPicker(): HTMLElement | null {
    const experiments = this._experiments;
    if (!experiments.length) {
      return null;
    }
    const all = experiments.reduce((sum, e) => sum + e.runs, 0);
    const option = (value: string, label: string) =>
      h('option', { value, selected: value === (this._picked ?? '') }, label);
    const picked = this._picked;
    const options = experiments.map(e => option(e.experiment_id, `${e.name} (${e.runs})`));
    if (picked && !experiments.some(e => e.experiment_id === picked)) {
      options.push(option(picked, 'experiment without runs of this notebook'));
    }
    return h(
      'select',
      {
        className: 'jp-mlops-experiment-picker',
        title: "Experiments holding this notebook's runs",
        'aria-label': 'experiment',
        onChange: (e: Event) => this.pick((e.target as HTMLSelectElement).value || null)
      },
      option('', `all experiments (${all})`),
      ...options
    );
  }

  private pick(experimentId: string | null): void {
    this._picked = experimentId;
    this._selected.clear();
    void this.refresh();
  }

  /** This notebook's local pipeline runs; an ended one can be dismissed. */
  private renderJobs(): HTMLElement {
    const jobs = [...this._jobs.values()].filter(j => j.path === this._notebook).reverse();
    return h(
      'div',
      { className: 'jp-mlops-jobs' },
      ...jobs.map(job =>
        h(
          'div',
          { className: `jp-mlops-job jp-mlops-job-${job.status}`, 'data-job': job.id },
          h('strong', {}, `Local pipeline run: ${job.path}`),
          ' ',
          h('span', { className: 'jp-mlops-job-status' }, job.status),
          job.status === 'running'
            ? h(
                'button',
                {
                  className: 'jp-mlops-button',
                  onClick: () =>
                    void api.cancelLocalRun(job.id).then(j => this.track({ ...j, log: job.log }))
                },
                'Cancel'
              )
            : h(
                'button',
                {
                  className: 'jp-mlops-button jp-mlops-dismiss',
                  title: 'Dismiss',
                  'aria-label': 'dismiss',
                  onClick: () => {
                    this._jobs.delete(job.id);
                    this.render();
                  }
                },
                '×'
              ),
          h('pre', { className: 'jp-mlops-log' }, job.log.split('\n').slice(-8).join('\n'))
        )
      )
    );
  }

  private renderList(): HTMLElement {
    const keys = metricKeys(this._runs).slice(0, KEY_METRICS);
    const runs = this.filtered();
    const sortable = (label: string, orderKey: string, column = '') =>
      h(
        'th',
        {
          className: `jp-mlops-sortable ${column}`,
          title: `sort by ${label}`,
          onClick: () => this.sortBy(orderKey)
        },
        label,
        this._order?.startsWith(orderKey) ? (this._order.endsWith('ASC') ? ' ▲' : ' ▼') : ''
      );
    const compare = h(
      'button',
      {
        className: 'jp-mlops-button jp-mlops-compare-button',
        disabled: this._selected.size < 2,
        onClick: () => this.showView('compare')
      },
      `Compare (${this._selected.size})`
    );
    const filter = h('input', {
      className: 'jp-mlops-filter',
      placeholder: 'Filter runs (name, status, param value)',
      value: this._filter,
      onInput: (e: Event) => {
        this._filter = (e.target as HTMLInputElement).value;
        this.render();
      }
    });
    return h(
      'div',
      { className: 'jp-mlops-list' },
      h(
        'div',
        { className: 'jp-mlops-toolbar' },
        filter,
        compare,
        h(
          'button',
          {
            className: 'jp-mlops-button',
            onClick: () => void this.refresh(),
            title: 'Refresh now'
          },
          '⟳'
        ),
        this.mlflowBase()
          ? h(
              'a',
              {
                className: 'jp-mlops-link',
                href: this.mlflowBase()!,
                target: '_blank',
                rel: 'noopener'
              },
              'MLflow UI'
            )
          : null
      ),
      this._message ? h('p', { className: 'jp-mlops-message' }, this._message) : null,
      this._loading && this._order
        ? h(
            'p',
            { className: 'jp-mlops-message jp-mlops-loading' },
            'Still loading runs: sorted by a column, the list holds those read so far.'
          )
        : null,
      h(
        'table',
        { className: 'jp-mlops-runs' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, ''),
            sortable('status', 'attributes.status', 'jp-mlops-col-status'),
            h('th', {}, 'run'),
            sortable('start', 'attributes.start_time', 'jp-mlops-col-start'),
            h('th', { className: 'jp-mlops-col-duration' }, 'duration'),
            ...keys.map(k => sortable(k, `metrics.\`${k}\``, 'jp-mlops-col-metric'))
          )
        ),
        h(
          'tbody',
          {},
          // Sorted by a column, the order is the column's; otherwise cell runs under their session.
          ...(this._order ? runs.map(r => [r, 0] as [IRunSummary, number]) : nest(runs)).map(
            ([run, depth]) => this.renderRow(run, keys, depth)
          )
        )
      ),
      h('p', { className: 'jp-mlops-count' }, `${runs.length} of ${this._total} runs`)
    );
  }

  private renderRow(run: IRunSummary, keys: string[], depth: number): HTMLElement {
    const end = run.end_time ?? (run.status === 'RUNNING' ? Date.now() : null);
    const child = depth > 0 ? ' jp-mlops-child' : '';
    return h(
      'tr',
      {
        className: `jp-mlops-run jp-mlops-status-${run.status.toLowerCase()}${child}`,
        'data-run': run.run_id,
        'data-parent': depth > 0 ? run.parent_id : undefined
      },
      h(
        'td',
        {},
        h('input', {
          type: 'checkbox',
          'aria-label': `select ${run.run_name ?? run.run_id}`,
          checked: this._selected.has(run.run_id),
          onChange: (e: Event) => {
            const on = (e.target as HTMLInputElement).checked;
            if (on) {
              this._selected.add(run.run_id);
            } else {
              this._selected.delete(run.run_id);
            }
            this.render();
          }
        })
      ),
      h(
        'td',
        { className: 'jp-mlops-status jp-mlops-col-status', title: run.status },
        run.status.toLowerCase()
      ),
      h(
        'td',
        { className: 'jp-mlops-col-run' },
        h(
          'a',
          {
            className: 'jp-mlops-run-link',
            href: '#',
            onClick: (e: Event) => {
              e.preventDefault();
              void this.openRun(run.run_id);
            }
          },
          run.run_name || run.run_id.slice(0, 8)
        )
      ),
      h('td', { className: 'jp-mlops-col-start' }, when(run.start_time)),
      h(
        'td',
        { className: 'jp-mlops-col-duration' },
        duration(end && run.start_time ? end - run.start_time : null)
      ),
      ...keys.map(k =>
        h('td', { className: 'jp-mlops-num jp-mlops-col-metric' }, num(run.metrics[k]))
      )
    );
  }

  private filtered(): IRunSummary[] {
    const text = this._filter.trim().toLowerCase();
    if (!text) {
      return this._runs;
    }
    return this._runs.filter(run =>
      [run.run_name ?? '', run.status, ...Object.values(run.params)].some(v =>
        v.toLowerCase().includes(text)
      )
    );
  }

  private sortBy(key: string): void {
    const current = this._order?.startsWith(key) ? this._order : null;
    this._order = current?.endsWith('DESC') ? `${key} ASC` : `${key} DESC`;
    void this.refresh();
  }

  private showView(view: View): void {
    this._view = view;
    this.render();
  }

  private async openRun(runId: string): Promise<void> {
    try {
      this._details = await api.run(runId, this._notebook ?? undefined);
      this.showView('details');
    } catch (error) {
      this._message = `Cannot open the run: ${(error as Error).message}`;
      this.render();
    }
  }

  /** A text artifact of the run in the details, in a JupyterLab tab. */
  private async openArtifact(path: string): Promise<void> {
    const run = this._details;
    if (!run) {
      return;
    }
    try {
      const text = await api.artifactText(run.run_id, path, this._notebook ?? undefined);
      this.host.openText(`${run.run_name || run.run_id.slice(0, 8)}: ${path}`, text);
    } catch (error) {
      console.error(`jupyter-mlops: cannot open artifact ${path} of run ${run.run_id}`, error);
      this._message = `Cannot open ${path}: ${(error as Error).message}`;
      this.render();
    }
  }

  private mlflowBase(): string | null {
    return this._config?.mlflow_ui_url ?? null; // the server's MlopsExtension.mlflow_ui_url
  }

  private mlflowUrl(run: IRunDetails): string | null {
    const base = this.mlflowBase();
    return base
      ? `${base.replace(/\/$/, '')}/#/experiments/${run.experiment_id}/runs/${run.run_id}`
      : null;
  }

  private _notebook: string | null = null;
  private _experiments: IExperimentRuns[] = [];
  private _picked: string | null = null; // an experiment id; null: every experiment
  private _runs: IRunSummary[] = [];
  private _total = 0;
  /** The server is still reading the runs (a sort covers only those read). */
  private _loading = false;
  private _order: string | null = null;
  private _filter = '';
  private _selected = new Set<string>();
  private _view: View = 'list';
  private _tab: Tab = 'runs';
  private _models = new ModelsView();
  private readonly _kfp: KfpRunsView;
  private _details: IRunDetails | null = null;
  private _chartMetric: string | null = null;
  private _message = '';
  /** The runs' poll: FAST_MS or SLOW_MS (see schedule); stands by while the panel or the
   * browser tab is hidden. */
  private _poll = new Poll({
    factory: () => this.refresh(),
    frequency: { interval: SLOW_MS, backoff: false, max: SLOW_MS },
    standby: () => !this.isVisible || 'when-hidden',
    name: 'jupyter-mlops:runs'
  });
  private _settleUntil = 0;
  private _config: IServerConfig | null = null;
  private _jobs = new Map<string, IJob>();
}

/**
 * Runs in display order with their depth: each cell run right under its session run (when
 * that is listed), in the order given; the rest at the top level.
 */
export function nest(runs: IRunSummary[]): [IRunSummary, number][] {
  const listed = new Set(runs.map(r => r.run_id));
  const children = new Map<string, IRunSummary[]>();
  for (const run of runs) {
    if (run.parent_id && listed.has(run.parent_id) && run.parent_id !== run.run_id) {
      children.set(run.parent_id, [...(children.get(run.parent_id) ?? []), run]);
    }
  }
  const out: [IRunSummary, number][] = [];
  const place = (run: IRunSummary, depth: number) => {
    out.push([run, depth]);
    for (const child of children.get(run.run_id) ?? []) {
      place(child, depth + 1);
    }
  };
  for (const run of runs) {
    const nested = run.parent_id && listed.has(run.parent_id) && run.parent_id !== run.run_id;
    if (!nested) {
      place(run, 0);
    }
  }
  return out;
}
