/**
 * The step graph as an SVG: steps in layers by longest path from a source, edges as curves.
 */
import { IGraph } from './api';
import { svg } from './dom';

const NODE_W = 140;
const NODE_H = 32;
const GAP_X = 40;
const GAP_Y = 48;

/** Layer of each step: 0 for steps without upstream, else 1 + the deepest upstream. */
export function layers(graph: IGraph): Map<string, number> {
  const depth = new Map<string, number>();
  const upstream = new Map(graph.steps.map(s => [s.name, s.upstream ?? []]));
  const visit = (name: string, seen: Set<string>): number => {
    const known = depth.get(name);
    if (known !== undefined) {
      return known;
    }
    if (seen.has(name)) {
      return 0; // a cycle: the server rejects those, stay finite anyway
    }
    seen.add(name);
    const parents = upstream.get(name) ?? [];
    const level = parents.length
      ? 1 + Math.max(...parents.map(p => visit(p, seen)))
      : 0;
    depth.set(name, level);
    return level;
  };
  graph.steps.forEach(step => visit(step.name, new Set()));
  return depth;
}

/** Render the DAG, top to bottom. */
export function renderDag(graph: IGraph): SVGElement {
  const depth = layers(graph);
  const rows: string[][] = [];
  for (const step of graph.steps) {
    const level = depth.get(step.name) ?? 0;
    (rows[level] = rows[level] ?? []).push(step.name);
  }
  const widest = Math.max(1, ...rows.map(r => r.length));
  const width = widest * (NODE_W + GAP_X) + GAP_X;
  const height = rows.length * (NODE_H + GAP_Y) + GAP_Y / 2;
  const position = new Map<string, { x: number; y: number }>();
  rows.forEach((row, level) => {
    const offset = (width - row.length * (NODE_W + GAP_X) + GAP_X) / 2;
    row.forEach((name, i) =>
      position.set(name, {
        x: offset + i * (NODE_W + GAP_X),
        y: GAP_Y / 2 + level * (NODE_H + GAP_Y)
      })
    );
  });
  const root = svg('svg', {
    class: 'jp-mlops-dag',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `pipeline ${graph.name}`
  });
  for (const edge of graph.edges) {
    const from = position.get(edge.source);
    const to = position.get(edge.target);
    if (!from || !to) {
      continue;
    }
    const x1 = from.x + NODE_W / 2;
    const y1 = from.y + NODE_H;
    const x2 = to.x + NODE_W / 2;
    const y2 = to.y;
    const mid = (y1 + y2) / 2;
    const path = svg('path', {
      class: 'jp-mlops-dag-edge',
      d: `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2 - 4}`,
      'marker-end': 'url(#jp-mlops-arrow)'
    });
    path.appendChild(svg('title', {}, (edge.names ?? []).join(', ')));
    root.appendChild(path);
  }
  root.appendChild(arrowMarker());
  for (const step of graph.steps) {
    const p = position.get(step.name)!;
    const first = step.cells?.[0];
    root.appendChild(
      svg(
        'g',
        { class: 'jp-mlops-dag-node', 'data-step': step.name },
        svg('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }),
        svg(
          'text',
          { x: p.x + NODE_W / 2, y: p.y + NODE_H / 2 + 4, 'text-anchor': 'middle' },
          step.name
        ),
        svg('title', {}, first !== undefined ? `${step.name} (cell ${first})` : step.name)
      )
    );
  }
  return root;
}

function arrowMarker(): SVGElement {
  return svg(
    'defs',
    {},
    svg(
      'marker',
      {
        id: 'jp-mlops-arrow',
        viewBox: '0 0 10 10',
        refX: 8,
        refY: 5,
        markerWidth: 6,
        markerHeight: 6,
        orient: 'auto-start-reverse'
      },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'jp-mlops-dag-arrow' })
    )
  );
}
