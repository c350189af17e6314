/**
 * One run in full: its status with why it failed, its parent session by name, params, metrics
 * with their history drawn as a curve over the steps, the models it logged, the datasets it used
 * (lineage: digest and rows), tags (bookkeeping ones behind a toggle), artifacts to open, and
 * what it ran: the tracked cell's code with "Insert into notebook", or a step's or sweep run's
 * executed notebook.
 */
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { IDataset, ILoggedModel, IMetricPoint, IRunDetails } from './api';
import { duration, h, num, svg, when } from './dom';

/** Actions the details view offers. */
export interface IDetailsActions {
  back: () => void;
  insert: (source: string) => void;
  mlflowUrl: (run: IRunDetails) => string | null;
  /** Open another run's details (the parent). */
  openRun: (runId: string) => void;
  /** Open a text artifact in JupyterLab. */
  openArtifact: (path: string) => void;
  /** Where the server streams an artifact (to download one that is not text). */
  artifactUrl: (path: string) => string;
  /** The labels' translations. */
  trans: TranslationBundle;
}

/** Artifacts opened as text in JupyterLab; the rest are downloaded. */
const TEXT_ARTIFACT = /(\.(py|txt|log|json|ipynb|ya?ml|md|csv|toml|cfg|ini)|MLmodel)$/;

/** Kinds of run (the server's `kind`, steps/mlflow_vocabulary.py's KIND_* values). */
const KIND_CELL = 'cell';
const KIND_PIPELINE = 'pipeline';

/** Whether bookkeeping tags show: one choice for every run opened in this session. */
let showInternal = false;

/** Render the details of `run`. */
export function renderDetails(run: IRunDetails, actions: IDetailsActions): HTMLElement {
  const trans = actions.trans;
  const none = () => h('p', {}, trans.__('none'));
  const link = actions.mlflowUrl(run);
  const metrics = Object.keys(run.metrics)
    .sort()
    .map(key =>
      h(
        'tr',
        { 'data-metric': key },
        h('th', {}, key),
        h('td', {}, num(run.metrics[key]), ' ', curve(key, run.metric_history[key] ?? []))
      )
    );
  const params = Object.entries(run.params).sort() as [string, string][];
  const parent = run.parent
    ? h(
        'a',
        {
          className: 'jp-mlops-parent',
          href: '#',
          title: run.parent.run_id,
          onClick: (e: Event) => {
            e.preventDefault();
            actions.openRun(run.parent!.run_id);
          }
        },
        run.parent.run_name || run.parent.run_id.slice(0, 8)
      )
    : null;
  const tags = h('div', { className: 'jp-mlops-tags' }, tagTable(run, trans));
  const toggle = h(
    'label',
    { className: 'jp-mlops-internal' },
    h('input', {
      type: 'checkbox',
      className: 'jp-mlops-internal-toggle',
      checked: showInternal,
      onChange: (e: Event) => {
        showInternal = (e.target as HTMLInputElement).checked;
        tags.replaceChildren(tagTable(run, trans));
      }
    }),
    ' ',
    trans.__('show internal tags (%1)', run.internal_tags.length)
  );
  return h(
    'div',
    { className: 'jp-mlops-details' },
    h(
      'div',
      { className: 'jp-mlops-toolbar' },
      h('button', { className: 'jp-mlops-button', onClick: actions.back }, trans.__('← Runs')),
      link
        ? h(
            'a',
            { href: link, target: '_blank', rel: 'noopener', className: 'jp-mlops-link' },
            trans.__('Open in MLflow')
          )
        : null
    ),
    h('h3', {}, run.run_name || run.run_id),
    kv([
      [trans.__('status'), status(run)],
      ...(parent ? ([[trans.__('session'), parent]] as [string, Node][]) : []),
      [trans.__('started'), when(run.start_time)],
      [
        trans.__('duration'),
        duration(run.end_time && run.start_time ? run.end_time - run.start_time : null)
      ],
      [trans.__('run id'), run.run_id]
    ]),
    h('h4', {}, trans.__('Metrics')),
    metrics.length ? h('table', { className: 'jp-mlops-kv jp-mlops-metrics' }, ...metrics) : none(),
    h('h4', {}, trans.__('Params')),
    params.length ? kv(params) : none(),
    h('h4', {}, trans.__('Models')),
    models(run.models ?? [], trans),
    h('h4', {}, trans.__('Datasets')),
    datasets(run.datasets ?? [], trans),
    h('h4', {}, trans.__('Tags')),
    run.internal_tags.length ? toggle : null,
    tags,
    h('h4', {}, trans.__('Artifacts')),
    artifacts(run, actions),
    ...code(run, actions)
  );
}

/** The status, and beside it why the run failed (the error the runner or the cell recorded). */
function status(run: IRunDetails): HTMLElement {
  return h(
    'span',
    { className: 'jp-mlops-run-status' },
    run.status,
    run.error ? h('div', { className: 'jp-mlops-error jp-mlops-run-error' }, run.error) : null
  );
}

/**
 * What the run ran: a tracked cell's code with "Insert into notebook"; for a pipeline step or
 * a sweep's run, its executed notebook; for a pipeline, where its work is; nothing for the rest.
 */
function code(run: IRunDetails, actions: IDetailsActions): HTMLElement[] {
  const trans = actions.trans;
  const notebook = run.artifacts.find(a => a.path.endsWith('.ipynb'));
  if (run.source !== null) {
    const insert = () => actions.insert(run.cell ?? run.source ?? '');
    return [
      h('h4', {}, trans.__('Cell code')),
      h(
        'div',
        {},
        h('pre', { className: 'jp-mlops-source' }, run.source),
        h(
          'button',
          { className: 'jp-mlops-button', onClick: insert },
          trans.__('Insert into notebook')
        )
      )
    ];
  }
  if (run.kind === KIND_CELL) {
    return [h('h4', {}, trans.__('Cell code')), h('p', {}, trans.__('not recorded'))];
  }
  if (notebook) {
    return [h('h4', {}, trans.__('Code')), artifactLink(notebook.path, actions)];
  }
  if (run.kind === KIND_PIPELINE) {
    return [h('h4', {}, trans.__('Code')), h('p', {}, trans.__('pipeline run: see its steps'))];
  }
  return [];
}

function kv(rows: [string, Node | string][]): HTMLElement {
  return h(
    'table',
    { className: 'jp-mlops-kv' },
    ...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))
  );
}

/** The run's tags, without the bookkeeping ones unless asked. */
function tagTable(run: IRunDetails, trans: TranslationBundle): HTMLElement {
  const hidden = new Set(showInternal ? [] : run.internal_tags);
  const rows = Object.entries(run.tags)
    .filter(([k]) => !hidden.has(k))
    .sort() as [string, string][];
  return rows.length ? kv(rows) : h('p', {}, trans.__('none'));
}

/** The models the run logged: name, flavour, and the registered versions made from each. */
function models(items: ILoggedModel[], trans: TranslationBundle): HTMLElement {
  if (!items.length) {
    return h('p', {}, trans.__('none'));
  }
  return h(
    'ul',
    { className: 'jp-mlops-models-logged' },
    ...items.map(m =>
      h(
        'li',
        { 'data-model': m.name },
        h('strong', {}, m.name),
        m.model_type ? ` (${m.model_type})` : '',
        ` → ${m.state}`, // the run card's words for the same state, from the server
        h('div', { className: 'jp-mlops-model-uri' }, h('code', {}, m.uri))
      )
    )
  );
}

/** Each artifact: text opens in JupyterLab, anything else downloads. */
function artifacts(run: IRunDetails, actions: IDetailsActions): HTMLElement {
  const trans = actions.trans;
  if (!run.artifacts.length) {
    return h('p', {}, trans.__('none'));
  }
  return h(
    'ul',
    { className: 'jp-mlops-artifacts' },
    ...run.artifacts.map(a => h('li', {}, artifactLink(a.path, actions)))
  );
}

/** A link to an artifact: text opens in JupyterLab, anything else downloads. */
function artifactLink(path: string, actions: IDetailsActions): HTMLElement {
  if (!TEXT_ARTIFACT.test(path)) {
    return h(
      'a',
      { href: actions.artifactUrl(path), className: 'jp-mlops-artifact', download: '' },
      path
    );
  }
  const open = (e: Event) => {
    e.preventDefault();
    actions.openArtifact(path);
  };
  const title = actions.trans.__('Open in JupyterLab');
  return h('a', { href: '#', className: 'jp-mlops-artifact', title, onClick: open }, path);
}

/** The run's dataset inputs: name, how it was used, short digest (full one on hover), rows. */
export function datasets(
  items: IDataset[],
  trans: TranslationBundle = nullTranslator.load('jupyter_mlops')
): HTMLElement {
  if (!items.length) {
    return h('p', {}, trans.__('none'));
  }
  const labels = [trans.__('name'), trans.__('used as'), trans.__('digest'), trans.__('rows')];
  const head = h('tr', {}, ...labels.map(t => h('th', {}, t)));
  const rows = items.map(d =>
    h(
      'tr',
      {},
      h('td', {}, d.name),
      h('td', {}, d.context || '-'),
      h('td', {}, h('code', { title: d.sha256 ?? d.digest }, d.digest.slice(0, 8))),
      h('td', {}, d.rows === null ? '-' : d.rows.toLocaleString())
    )
  );
  return h('table', { className: 'jp-mlops-compare-table jp-mlops-datasets' }, head, ...rows);
}

/**
 * A metric's history as a small curve over its steps (the value last logged at a step wins);
 * nothing for fewer than two steps. Hovering shows the first and last points.
 */
function curve(key: string, history: IMetricPoint[]): SVGElement | string {
  const byStep = new Map<number, number>();
  for (const p of [...history].sort((a, b) => a.timestamp - b.timestamp)) {
    if (Number.isFinite(p.value)) {
      byStep.set(p.step, p.value);
    }
  }
  const points = [...byStep.entries()].sort((a, b) => a[0] - b[0]);
  if (points.length < 2) {
    return '';
  }
  const values = points.map(([, v]) => v);
  const steps = points.map(([s]) => s);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const [first, last] = [steps[0], steps[steps.length - 1]];
  const w = 120;
  const hgt = 28;
  const xy = points.map(([step, value]) => {
    const x = ((step - first) / (last - first || 1)) * w;
    const y = hgt - 2 - ((value - lo) / (hi - lo || 1)) * (hgt - 4);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  return svg(
    'svg',
    { class: 'jp-mlops-spark', width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` },
    svg(
      'title',
      {},
      `${key}: ${num(values[0])} at step ${first} → ${num(values[values.length - 1])} at step ${last}`
    ),
    svg('polyline', { points: xy.join(' ') })
  );
}
