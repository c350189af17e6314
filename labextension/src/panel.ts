/**
 * The "MLOps" sidebar: the active notebook's runs, wherever they were logged (found by the
 * notebook's path tag in every experiment, with a picker to show one experiment), updated
 * while cells run, sortable and filterable, with comparison, details and local pipeline runs'
 * progress; beside the runs, the "Models" view of the same store's registry (models.ts).
 * However many runs a notebook has, the list draws only the rows in view (plus a margin) and
 * loads further pages as it is scrolled to its end.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import {
  api,
  IExperimentRuns,
  IJob,
  IRunDetails,
  IRunsPage,
  IRunSummary,
  IServerConfig
} from './api';
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
/** Runs fetched at first (two sidebars' worth: each run the store sends costs it about a
 * millisecond at team scale, benchmarks/README.md "index"), and how many more each time the
 * list is scrolled to its end. */
const FIRST_PAGE = 50;
const MORE = 500;
/** The server's largest page (handlers.MAX_PAGE). */
const MAX_PAGE = 1000;
/** Rows drawn above and below the visible ones; a row's height until one is measured. */
const MARGIN_ROWS = 15;
const ROW_PX = 24;

type View = 'list' | 'compare' | 'details';
type Tab = 'runs' | 'models';

/** What the panel needs from the application. */
export interface IPanelHost {
  insertCode: (source: string) => void;
  kernelBusy: () => boolean;
  /** Show a text (an artifact) in a main-area tab titled `title`. */
  openText: (title: string, text: string) => void;
  /** The labels' translations (ITranslator's bundle for jupyter_mlops). */
  trans: TranslationBundle;
}

/**
 * The MLOps runs panel.
 */
export class RunsPanel extends Widget {
  constructor(private host: IPanelHost) {
    super();
    this.id = 'jp-mlops-panel';
    this.addClass('jp-mlops-panel');
    this.trans = host.trans;
    this.title.caption = this.trans.__('MLOps');
    this.node.addEventListener('scroll', () => this.scrolled());
    this._kfp = new KfpRunsView(this.trans, () => this.isVisible);
    this._models = new ModelsView(this.trans);
  }

  private readonly trans: TranslationBundle;

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
    this._want = FIRST_PAGE;
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

  /** Fetch the runs now, as many as are loaded (the poll goes on from here). */
  async refresh(): Promise<void> {
    const trans = this.trans;
    if (!this._notebook) {
      this._message = trans.__('Open a notebook to see its runs.');
      this.render();
      return;
    }
    const asked = ++this._asked;
    try {
      const page = await this.fetchRuns(this._notebook, this._want);
      if (asked !== this._asked) {
        return; // a later fetch (another notebook, order or more rows) answers instead
      }
      this._experiments = page.experiments;
      this._runs = page.runs;
      this._total = page.total;
      this._loading = page.loading === true;
      this._loadError = page.error ?? '';
      // Runs that could not be read are not "no runs": the red line says why instead.
      this._message =
        page.experiments.length || this._loadError
          ? ''
          : trans.__(
              'No runs yet: run a tracked cell (%%mlops track), Run locally or a sweep from this notebook.'
            );
    } catch (error) {
      console.warn(`jupyter-mlops: cannot list the runs of ${this._notebook}`, error);
      this._message = trans.__('Cannot list runs: %1', (error as Error).message);
    }
    this.render();
    this.schedule();
  }

  /** The first `want` runs of the notebook, in pages of at most MAX_PAGE. */
  private async fetchRuns(notebook: string, want: number): Promise<IRunsPage> {
    const query = {
      notebook,
      experiment_id: this._picked ?? undefined,
      order_by: this._order ? [this._order] : undefined
    };
    let page = await api.runs({ ...query, max_results: Math.min(want, MAX_PAGE) });
    const runs = [...page.runs];
    while (runs.length < want && page.next_page_token) {
      page = await api.runs({
        ...query,
        max_results: Math.min(want - runs.length, MAX_PAGE),
        page_token: page.next_page_token
      });
      runs.push(...page.runs);
    }
    return { ...page, runs };
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

  /** Resized, more or fewer rows are in view. */
  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this.drawRows();
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
        console.warn(`jupyter-mlops: stopped following local run ${id} of ${job.path}`, error);
        break;
      }
      this.render();
    }
    void this.refresh();
  }

  private render(): void {
    const focused = document.activeElement?.classList.contains('jp-mlops-filter');
    const scroll = this.node.scrollTop; // kept: the list is drawn anew, where it was scrolled
    this.draw();
    this.drawRows(true, scroll);
    this.node.scrollTop = scroll;
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
            api.artifactUrl(this._details!.run_id, path, this._notebook ?? undefined),
          trans: this.trans
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
            this.trans.__('← Runs')
          ),
          renderComparison(
            runs,
            this._chartMetric,
            metric => {
              this._chartMetric = metric;
              this.render();
            },
            this.trans
          )
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
      h('h2', {}, this.trans.__('MLOps')),
      this.renderTabs(),
      h(
        'div',
        // the whole path on hover: a long one is cut to one line (models.css)
        { className: 'jp-mlops-subtitle', title: this._notebook || undefined },
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
      tab('runs', this.trans.__('Runs')),
      tab('models', this.trans.__('Models'))
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
    const trans = this.trans;
    const options = experiments.map(e => option(e.experiment_id, `${e.name} (${e.runs})`));
    if (picked && !experiments.some(e => e.experiment_id === picked)) {
      options.push(option(picked, trans.__('experiment without runs of this notebook')));
    }
    return h(
      'select',
      {
        className: 'jp-mlops-experiment-picker',
        title: trans.__("Experiments holding this notebook's runs"),
        'aria-label': trans.__('experiment'),
        onChange: (e: Event) => this.pick((e.target as HTMLSelectElement).value || null)
      },
      option('', trans.__('all experiments (%1)', all)),
      ...options
    );
  }

  private pick(experimentId: string | null): void {
    this._picked = experimentId;
    this._want = FIRST_PAGE;
    this._selected.clear();
    void this.refresh();
  }

  /** This notebook's local pipeline runs; an ended one can be dismissed. */
  private renderJobs(): HTMLElement {
    const trans = this.trans;
    const jobs = [...this._jobs.values()].filter(j => j.path === this._notebook).reverse();
    return h(
      'div',
      { className: 'jp-mlops-jobs' },
      ...jobs.map(job =>
        h(
          'div',
          { className: `jp-mlops-job jp-mlops-job-${job.status}`, 'data-job': job.id },
          h('strong', {}, trans.__('Local pipeline run: %1', job.path)),
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
                trans.__('Cancel')
              )
            : h(
                'button',
                {
                  className: 'jp-mlops-button jp-mlops-dismiss',
                  title: trans.__('Dismiss'),
                  'aria-label': trans.__('dismiss'),
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
    const trans = this.trans;
    const keys = metricKeys(this._runs).slice(0, KEY_METRICS);
    const runs = this.filtered();
    const sortable = (label: string, orderKey: string, column = '') =>
      h(
        'th',
        {
          className: `jp-mlops-sortable ${column}`,
          title: trans.__('sort by %1', label),
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
      trans.__('Compare (%1)', this._selected.size)
    );
    const filter = h('input', {
      className: 'jp-mlops-filter',
      placeholder: trans.__('Filter runs (name, status, param value)'),
      value: this._filter,
      onInput: (e: Event) => {
        this._filter = (e.target as HTMLInputElement).value;
        this.render();
      }
    });
    // Sorted by a column, the order is the column's; otherwise cell runs under their session.
    this._rows = this._order ? runs.map(r => [r, 0] as [IRunSummary, number]) : nest(runs);
    this._keys = keys;
    this._drawn = null;
    this._body = h('tbody', {});
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
            title: trans.__('Refresh now')
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
              trans.__('MLflow UI')
            )
          : null
      ),
      this._message ? h('p', { className: 'jp-mlops-message' }, this._message) : null,
      this._loading && this._order
        ? h(
            'p',
            { className: 'jp-mlops-message jp-mlops-loading' },
            trans.__('Still loading runs: sorted by a column, the list holds those read so far.')
          )
        : null,
      this._loadError
        ? h(
            'p',
            { className: 'jp-mlops-error jp-mlops-load-error' },
            trans.__('Not every run could be read: %1', this._loadError)
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
            sortable(trans.__('status'), 'attributes.status', 'jp-mlops-col-status'),
            h('th', {}, trans.__('run')),
            sortable(trans.__('start'), 'attributes.start_time', 'jp-mlops-col-start'),
            h('th', { className: 'jp-mlops-col-duration' }, trans.__('duration')),
            ...keys.map(k => sortable(k, `metrics.\`${k}\``, 'jp-mlops-col-metric'))
          )
        ),
        this._body
      ),
      this._loadError && !this._total
        ? null // "0 of 0 runs" would say there are none
        : h(
            'p',
            { className: 'jp-mlops-count' },
            trans.__('%1 of %2 runs', runs.length, this._total)
          )
    );
  }

  /**
   * Draw the rows in view and MARGIN_ROWS on either side; spacers above and below keep the
   * list's height (and its scrollbar) that of every row. Rows have one height (no wrapping).
   */
  private drawRows(force = false, scrollTop = this.node.scrollTop, measured = false): void {
    const body = this._body;
    if (!body || !body.isConnected) {
      return;
    }
    const rows = this._rows;
    const top =
      body.getBoundingClientRect().top -
      this.node.getBoundingClientRect().top +
      this.node.scrollTop;
    const inView = Math.ceil(this.node.clientHeight / this._rowPx);
    const first = Math.max(
      0,
      Math.min(
        Math.floor((scrollTop - top) / this._rowPx) - MARGIN_ROWS,
        rows.length - inView - 2 * MARGIN_ROWS
      )
    );
    const end = Math.min(rows.length, first + inView + 2 * MARGIN_ROWS);
    if (!force && this._drawn && this._drawn[0] === first && this._drawn[1] === end) {
      return;
    }
    this._drawn = [first, end];
    const columns = 5 + this._keys.length;
    const spacer = (count: number) =>
      count
        ? h(
            'tr',
            { className: 'jp-mlops-spacer', style: `height: ${count * this._rowPx}px` },
            h('td', { colspan: columns })
          )
        : null;
    const drawn = rows.slice(first, end).map(([run, depth]) => this.renderRow(run, depth));
    body.replaceChildren(...[spacer(first), ...drawn, spacer(rows.length - end)].filter(isNode));
    // The rows' real pitch, averaged over the drawn rows (a fractional height lays rows out
    // a pixel apart, then two): the spacers must stand for exactly that many rows, or a
    // thousand rows down the list is off by dozens.
    const [one, last] = [drawn[0], drawn[drawn.length - 1]].map(r => r?.getBoundingClientRect());
    const height = drawn.length > 1 ? (last.bottom - one.top) / drawn.length : one?.height;
    if (height && Math.abs(height - this._rowPx) > 0.001 && !measured) {
      this._rowPx = height; // measured: draw again with the rows' real height
      this.drawRows(true, scrollTop, true);
    }
  }

  /** Scrolled: draw the rows now in view; near the end, load the next runs. */
  private scrolled(): void {
    if (this._scrollFrame) {
      return;
    }
    this._scrollFrame = window.requestAnimationFrame(() => {
      this._scrollFrame = 0;
      this.drawRows();
      const nearEnd = (this._drawn?.[1] ?? 0) >= this._rows.length - MARGIN_ROWS;
      if (nearEnd && this._runs.length < this._total && this._want <= this._runs.length) {
        this._want = this._runs.length + MORE;
        void this.refresh();
      }
    });
  }

  private renderRow(run: IRunSummary, depth: number): HTMLElement {
    const keys = this._keys;
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
          'aria-label': this.trans.__('select %1', run.run_name ?? run.run_id),
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
            title: run.run_name || run.run_id,
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
    this._want = FIRST_PAGE;
    const current = this._order?.startsWith(key) ? this._order : null;
    this._order = current?.endsWith('DESC') ? `${key} ASC` : `${key} DESC`;
    void this.refresh();
  }

  private showView(view: View): void {
    this._view = view;
    this.node.scrollTop = 0;
    this.render();
  }

  private async openRun(runId: string): Promise<void> {
    try {
      this._details = await api.run(runId, this._notebook ?? undefined);
      this.showView('details');
    } catch (error) {
      console.warn(`jupyter-mlops: cannot open run ${runId}`, error);
      this._message = this.trans.__('Cannot open the run: %1', (error as Error).message);
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
      this._message = this.trans.__('Cannot open %1: %2', path, (error as Error).message);
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
  /** How many runs to fetch: the first page, more as the list is scrolled to its end. */
  private _want = FIRST_PAGE;
  private _asked = 0; // the latest fetch: an older one's answer is dropped
  /** The list's rows (run, depth) in display order, the rows drawn, and their height. */
  private _rows: [IRunSummary, number][] = [];
  private _keys: string[] = [];
  private _body: HTMLElement | null = null;
  private _drawn: [number, number] | null = null;
  private _rowPx = ROW_PX;
  private _scrollFrame = 0;
  private _total = 0;
  /** The server is still reading the runs (a sort covers only those read). */
  private _loading = false;
  /** Why the server could not read every run (it tries again on the next poll). */
  private _loadError = '';
  private _order: string | null = null;
  private _filter = '';
  private _selected = new Set<string>();
  private _view: View = 'list';
  private _tab: Tab = 'runs';
  private readonly _models: ModelsView;
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

function isNode(node: HTMLElement | null): node is HTMLElement {
  return node !== null;
}
