/**
 * One run in full: params, metrics with a sparkline of their history, the datasets it used
 * (lineage: digest and rows), tags, artifacts, and the tracked cell's code with "Insert into
 * notebook".
 */
import { IDataset, IMetricPoint, IRunDetails } from './api';
import { duration, h, num, svg, when } from './dom';

/** The tag repeating the cell's code (MLflow's run description), shown once under "Cell code". */
const CODE_TAGS = ['mlflow.note.content'];

/** Actions the details view offers. */
export interface IDetailsActions {
  back: () => void;
  insert: (source: string) => void;
  mlflowUrl: (run: IRunDetails) => string | null;
}

/** Render the details of `run`. */
export function renderDetails(run: IRunDetails, actions: IDetailsActions): HTMLElement {
  const link = actions.mlflowUrl(run);
  const table = (rows: [string, Node | string][]) =>
    h(
      'table',
      { className: 'jp-mlops-kv' },
      ...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))
    );
  const metrics = Object.keys(run.metrics)
    .sort()
    .map(
      key =>
        [key, h('span', {}, num(run.metrics[key]), ' ', sparkline(run.metric_history[key] ?? []))] as [
          string,
          Node
        ]
    );
  const params = Object.entries(run.params).sort() as [string, string][];
  const tags = Object.entries(run.tags)
    // The cell's code shows below; these tags only repeat it.
    .filter(([k]) => !k.startsWith('mlflow.log-model') && !CODE_TAGS.includes(k))
    .sort() as [string, string][];
  return h(
    'div',
    { className: 'jp-mlops-details' },
    h(
      'div',
      { className: 'jp-mlops-toolbar' },
      h('button', { className: 'jp-mlops-button', onClick: actions.back }, '← Runs'),
      link
        ? h('a', { href: link, target: '_blank', rel: 'noopener', className: 'jp-mlops-link' }, 'Open in MLflow')
        : null
    ),
    h('h3', {}, run.run_name || run.run_id),
    table([
      ['status', run.status],
      ['started', when(run.start_time)],
      ['duration', duration(run.end_time && run.start_time ? run.end_time - run.start_time : null)],
      ['run id', run.run_id]
    ]),
    h('h4', {}, 'Metrics'),
    metrics.length ? table(metrics) : h('p', {}, 'none'),
    h('h4', {}, 'Params'),
    params.length ? table(params) : h('p', {}, 'none'),
    h('h4', {}, 'Datasets'),
    datasets(run.datasets ?? []),
    h('h4', {}, 'Tags'),
    table(tags),
    h('h4', {}, 'Artifacts'),
    run.artifacts.length
      ? h('ul', { className: 'jp-mlops-artifacts' }, ...run.artifacts.map(a => h('li', {}, a.path)))
      : h('p', {}, 'none'),
    h('h4', {}, 'Cell code'),
    run.source !== null
      ? h(
          'div',
          {},
          h('pre', { className: 'jp-mlops-source' }, run.source),
          h(
            'button',
            { className: 'jp-mlops-button', onClick: () => actions.insert(run.source ?? '') },
            'Insert into notebook'
          )
        )
      : h('p', {}, 'not recorded')
  );
}

/** The run's dataset inputs: name, how it was used, short digest (full one on hover), rows. */
export function datasets(items: IDataset[]): HTMLElement {
  if (!items.length) {
    return h('p', {}, 'none');
  }
  const head = h('tr', {}, ...['name', 'used as', 'digest', 'rows'].map(t => h('th', {}, t)));
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

/** A small line of a metric's history (nothing for fewer than two points). */
function sparkline(points: IMetricPoint[]): SVGElement | string {
  if (points.length < 2) {
    return '';
  }
  const values = points.map(p => p.value).filter(Number.isFinite);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const w = 80;
  const hgt = 16;
  const xy = points
    .filter(p => Number.isFinite(p.value))
    .map((p, i, all) => {
      const x = (i / Math.max(1, all.length - 1)) * w;
      const y = hgt - ((p.value - lo) / (hi - lo || 1)) * hgt;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
  return svg(
    'svg',
    { class: 'jp-mlops-spark', width: w, height: hgt },
    svg('polyline', { points: xy.join(' ') })
  );
}
