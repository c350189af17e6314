/**
 * A model version's lineage as the Models view unfolds it under the version: its run,
 * notebook and git commit, the params it was trained with and the datasets its run used.
 */
import { IDataset, ILineage } from './api';
import { h } from './dom';

/** The lineage of one version, as a block for a table cell. */
export function renderLineage(lineage: ILineage): HTMLElement {
  const params = Object.entries(lineage.params).sort();
  const rows: [string, string][] = [
    ['run', lineage.run_id ? `${lineage.run_name || lineage.run_id} (${lineage.run_id})` : '-'],
    ['notebook', lineage.notebook ?? '-'],
    ['git commit', lineage.git_commit ?? '-'],
    ...(lineage.step ? [['step', lineage.step] as [string, string]] : [])
  ];
  return h(
    'div',
    { className: 'jp-mlops-version-lineage' },
    h('table', { className: 'jp-mlops-kv' }, ...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))),
    h('h4', {}, 'Params'),
    params.length
      ? h('p', { className: 'jp-mlops-params' }, params.map(([k, v]) => `${k}=${v}`).join(', '))
      : h('p', {}, 'none'),
    h('h4', {}, 'Datasets'),
    lineage.datasets.length
      ? h('ul', { className: 'jp-mlops-datasets' }, ...lineage.datasets.map(dataset))
      : h('p', {}, 'none recorded')
  );
}

/** "input · X_train · 225 rows · digest 1a2b3c4d" */
function dataset(d: IDataset): HTMLElement {
  const parts = [d.context || 'input', d.name, d.rows !== null ? `${d.rows} rows` : null, `digest ${d.digest.slice(0, 12)}`];
  return h('li', { title: d.sha256 ? `sha256 ${d.sha256}` : d.digest }, parts.filter(Boolean).join(' · '));
}
