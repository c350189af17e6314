/**
 * Comparing runs: a table of their metrics and params, and a bar chart of one metric.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IRunSummary } from './api';
import { h, num, svg } from './dom';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

/** The union of metric keys of `runs`, most common first. */
export function metricKeys(runs: IRunSummary[]): string[] {
  const count = new Map<string, number>();
  for (const run of runs) {
    for (const key of Object.keys(run.metrics)) {
      count.set(key, (count.get(key) ?? 0) + 1);
    }
  }
  return [...count.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([key]) => key);
}

/** The comparison view of two or more runs. */
export function renderComparison(
  runs: IRunSummary[],
  chosen: string | null,
  onChoose: (metric: string) => void,
  trans: TranslationBundle
): HTMLElement {
  const keys = metricKeys(runs);
  const metric = chosen && keys.includes(chosen) ? chosen : keys[0];
  const params = [...new Set(runs.flatMap(r => Object.keys(r.params)))].sort();
  const header = h('tr', {}, h('th', {}, ''), ...runs.map(r => h('th', {}, label(r))));
  const row = (name: string, values: string[], differs: boolean) =>
    h(
      'tr',
      { className: differs ? 'jp-mlops-differs' : '' },
      h('th', {}, name),
      ...values.map(v => h('td', {}, v))
    );
  const metricRows = keys.map(key => {
    const values = runs.map(r => num(r.metrics[key]));
    return row(key, values, new Set(values).size > 1);
  });
  const paramRows = params.map(key => {
    const values = runs.map(r => r.params[key] ?? '');
    return row(trans.__('param %1', key), values, new Set(values).size > 1);
  });
  const picker = h(
    'select',
    {
      className: 'jp-mlops-metric-picker',
      'aria-label': trans.__('metric to chart'),
      onChange: (e: Event) => onChoose((e.target as HTMLSelectElement).value)
    },
    ...keys.map(k => h('option', { value: k, selected: k === metric }, k))
  );
  return h(
    'div',
    { className: 'jp-mlops-compare' },
    h('h3', {}, trans.__('Comparing %1 runs', runs.length)),
    h('table', { className: 'jp-mlops-compare-table' }, header, ...metricRows, ...paramRows),
    keys.length
      ? h('div', { className: 'jp-mlops-chart-head' }, trans.__('Chart: '), picker)
      : null,
    metric ? barChart(runs, metric) : h('p', {}, trans.__('These runs have no metrics.'))
  );
}

function label(run: IRunSummary): string {
  return run.run_name || run.run_id.slice(0, 8);
}

/** One bar per run for `metric`; bars start at zero (or at the minimum when negative). */
export function barChart(runs: IRunSummary[], metric: string): SVGElement {
  const values = runs.map(r => r.metrics[metric]);
  const finite = values.filter(v => v !== undefined && Number.isFinite(v));
  const top = Math.max(0, ...finite);
  const bottom = Math.min(0, ...finite);
  const span = top - bottom || 1;
  const barW = 36;
  const gap = 16;
  const chartH = 140;
  const width = runs.length * (barW + gap) + gap;
  const height = chartH + 50;
  const y = (v: number) => 10 + ((top - v) / span) * chartH;
  const root = svg('svg', {
    class: 'jp-mlops-chart',
    width,
    height,
    role: 'img',
    'aria-label': `${metric} by run`
  });
  root.appendChild(svg('line', { x1: 0, x2: width, y1: y(0), y2: y(0), class: 'jp-mlops-axis' }));
  runs.forEach((run, i) => {
    const value = values[i];
    const x = gap + i * (barW + gap);
    if (value !== undefined && Number.isFinite(value)) {
      const y0 = Math.min(y(value), y(0));
      const bar = svg('rect', {
        x,
        y: y0,
        width: barW,
        height: Math.max(1, Math.abs(y(value) - y(0))),
        fill: PALETTE[i % PALETTE.length]
      });
      bar.appendChild(svg('title', {}, `${label(run)}: ${value}`));
      root.appendChild(bar);
      root.appendChild(
        svg('text', { x: x + barW / 2, y: y0 - 2, 'text-anchor': 'middle' }, num(value))
      );
    }
    root.appendChild(
      svg(
        'text',
        { x: x + barW / 2, y: chartH + 30, 'text-anchor': 'middle' },
        label(run).slice(0, 8)
      )
    );
  });
  return root;
}
