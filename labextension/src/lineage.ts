/**
 * A model version's lineage as the Models view unfolds it under the version: its run,
 * notebook and git commit, the params it was trained with and the datasets its run used.
 */
import { ILineage } from './api';
import { datasets } from './details';
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
    h(
      'table',
      { className: 'jp-mlops-kv' },
      ...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))
    ),
    h('h4', {}, 'Params'),
    params.length
      ? h('p', { className: 'jp-mlops-params' }, params.map(([k, v]) => `${k}=${v}`).join(', '))
      : h('p', {}, 'none'),
    h('h4', {}, 'Datasets'),
    datasets(lineage.datasets)
  );
}
