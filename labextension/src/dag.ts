/**
 * The step graph as an SVG laid out by ELK's layered algorithm (crossings minimized, edges
 * routed around nodes), in a viewport that fits the whole graph and zooms and pans.
 */
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk.bundled.js';

import { IGraph } from './api';
import { cellLabel, h, svg } from './dom';
import { stepColor } from './stepcolor';

const NODE_H = 32;
const CHAR_W = 7.2; // of the 12px UI font: a node as wide as its name
const MIN_W = 96;
const MARGIN = 16;
const ZOOM_STEP = 1.25;
const MIN_SCALE = 0.1;
const MAX_SCALE = 4;

/** ELK's options: top to bottom, layer sweeps against crossings, orthogonal edges. */
const LAYOUT_OPTIONS = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.layered.crossingMinimization.strategy': 'LAYER_SWEEP',
  'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
  'elk.layered.spacing.nodeNodeBetweenLayers': '36',
  'elk.spacing.nodeNode': '20',
  'elk.spacing.edgeNode': '12',
  'elk.padding': `[top=${MARGIN},left=${MARGIN},bottom=${MARGIN},right=${MARGIN}]`
};

/** ELK (1.5 MB of JavaScript) is loaded when a dialog first draws a graph. */
let elk: Promise<{ layout: (graph: ElkNode) => Promise<ElkNode> }> | null = null;

/** The edges between known steps; ELK's edge `e<i>` is the i-th of these. */
function drawnEdges(graph: IGraph): IGraph['edges'] {
  const names = new Set(graph.steps.map(s => s.name));
  return graph.edges.filter(e => names.has(e.source) && names.has(e.target));
}

/** Where ELK put the graph's nodes and edges. */
export async function layoutDag(graph: IGraph): Promise<ElkNode> {
  elk = elk ?? import('elkjs/lib/elk.bundled.js').then(m => new m.default());
  return (await elk).layout({
    id: 'root',
    layoutOptions: LAYOUT_OPTIONS,
    children: graph.steps.map(step => ({
      id: step.name,
      width: Math.max(MIN_W, step.name.length * CHAR_W + 28),
      height: NODE_H
    })),
    edges: drawnEdges(graph).map((e, i) => ({
      id: `e${i}`,
      sources: [e.source],
      targets: [e.target]
    }))
  });
}

/** A step's state in a run: `running`, then the runner's `ok`, `cached`, `failed`, ... */
export type StepStatus = string;

/**
 * The DAG in a box: fitted to the box when shown, zoomed with the wheel or the buttons,
 * panned by dragging; each step can show its state in a run.
 */
export class DagView {
  /** The box: put it in the page, then `render()`. */
  readonly node: HTMLDivElement;

  constructor(private readonly graph: IGraph) {
    this.node = h(
      'div',
      { className: 'jp-mlops-dag-box', tabindex: '0' },
      h(
        'div',
        { className: 'jp-mlops-dag-controls' },
        this.button('+', 'Zoom in', () => this.zoom(ZOOM_STEP)),
        this.button('−', 'Zoom out', () => this.zoom(1 / ZOOM_STEP)),
        this.button('Fit', 'Fit the whole graph in the box', () => this.fit())
      )
    );
    this.root = svg('svg', {
      class: 'jp-mlops-dag',
      role: 'img',
      'aria-label': `pipeline ${graph.name}`
    }) as SVGSVGElement;
    this.content = svg('g', { class: 'jp-mlops-dag-content' }) as SVGGElement;
    this.root.appendChild(arrowMarker());
    this.root.appendChild(this.content);
    this.node.appendChild(this.root);
    this.listen();
  }

  /** Lay the graph out and draw it; fitted once the box has a size. */
  async render(): Promise<void> {
    const laid = await layoutDag(this.graph);
    this.width = laid.width ?? 0;
    this.height = laid.height ?? 0;
    const edges = drawnEdges(this.graph);
    for (const edge of (laid.edges ?? []) as ElkExtendedEdge[]) {
      this.content.appendChild(this.edge(edge, edges[Number(edge.id.slice(1))]?.names ?? []));
    }
    for (const child of laid.children ?? []) {
      this.content.appendChild(this.step(child));
    }
    this.node.style.height = `min(45vh, ${Math.ceil(this.height) + 8}px)`;
    this.node.dataset.laidOut = 'true';
    new ResizeObserver(() => this.userMoved || this.fit()).observe(this.node);
    this.fit();
  }

  /** Show the whole graph, never enlarged beyond its natural size. */
  fit(): void {
    const box = this.node.getBoundingClientRect();
    if (!box.width || !box.height || !this.width) {
      return;
    }
    this.scale = Math.min(1, box.width / this.width, box.height / this.height);
    this.x = (box.width - this.width * this.scale) / 2;
    this.y = (box.height - this.height * this.scale) / 2;
    this.userMoved = false;
    this.apply();
  }

  /** Zoom by `factor` about the box's point (cx, cy), its centre by default. */
  zoom(factor: number, cx?: number, cy?: number): void {
    const box = this.node.getBoundingClientRect();
    const px = cx ?? box.width / 2;
    const py = cy ?? box.height / 2;
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    this.x = px - ((px - this.x) * scale) / this.scale;
    this.y = py - ((py - this.y) * scale) / this.scale;
    this.scale = scale;
    this.userMoved = true;
    this.apply();
  }

  /** Show a step's state in a run (`null`: none). */
  setStatus(step: string, status: StepStatus | null, title?: string): void {
    const node = this.content.querySelector<SVGGElement>(`g[data-step="${CSS.escape(step)}"]`);
    if (!node) {
      return;
    }
    Array.from(node.classList)
      .filter(c => c.startsWith('jp-mlops-dag-status-'))
      .forEach(c => node.classList.remove(c));
    if (status) {
      node.classList.add(`jp-mlops-dag-status-${status}`);
      node.dataset.status = status;
    } else {
      delete node.dataset.status;
    }
    const tip = node.querySelector('title');
    if (tip) {
      tip.textContent = [this.tip(step), title].filter(Boolean).join('\n');
    }
  }

  private listen(): void {
    this.node.addEventListener(
      'wheel',
      event => {
        event.preventDefault();
        const box = this.node.getBoundingClientRect();
        this.zoom(
          event.deltaY < 0 ? 1.1 : 1 / 1.1,
          event.clientX - box.left,
          event.clientY - box.top
        );
      },
      { passive: false }
    );
    this.root.addEventListener('pointerdown', event => {
      const start = { x: event.clientX - this.x, y: event.clientY - this.y };
      this.root.setPointerCapture(event.pointerId);
      this.root.classList.add('jp-mlops-dag-panning');
      const move = (e: PointerEvent) => {
        this.x = e.clientX - start.x;
        this.y = e.clientY - start.y;
        this.userMoved = true;
        this.apply();
      };
      const up = () => {
        this.root.removeEventListener('pointermove', move);
        this.root.classList.remove('jp-mlops-dag-panning');
      };
      this.root.addEventListener('pointermove', move);
      this.root.addEventListener('pointerup', up, { once: true });
    });
  }

  private apply(): void {
    this.content.setAttribute('transform', `translate(${this.x},${this.y}) scale(${this.scale})`);
    this.node.dataset.scale = this.scale.toFixed(3);
  }

  private button(label: string, title: string, onClick: () => void): HTMLButtonElement {
    return h(
      'button',
      { className: 'jp-mlops-button', title, 'aria-label': title, onClick },
      label
    );
  }

  private tip(step: string): string {
    const first = this.graph.steps.find(s => s.name === step)?.cells?.[0];
    return first !== undefined ? `${step} (${cellLabel(first)})` : step;
  }

  private step(child: ElkNode): SVGElement {
    const x = child.x ?? 0;
    const y = child.y ?? 0;
    const width = child.width ?? MIN_W;
    return svg(
      'g',
      { class: 'jp-mlops-dag-node', 'data-step': child.id },
      svg('rect', { x, y, width, height: NODE_H, rx: 6 }),
      svg('rect', {
        class: 'jp-mlops-dag-node-color',
        x,
        y,
        width: 6,
        height: NODE_H,
        rx: 3,
        fill: stepColor(this.graph, child.id)
      }),
      svg(
        'text',
        { x: x + width / 2 + 3, y: y + NODE_H / 2 + 4, 'text-anchor': 'middle' },
        child.id
      ),
      svg('title', {}, this.tip(child.id))
    );
  }

  private edge(edge: ElkExtendedEdge, names: string[]): SVGElement {
    const points = (edge.sections ?? []).flatMap(s => [
      s.startPoint,
      ...(s.bendPoints ?? []),
      s.endPoint
    ]);
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');
    const label = names.length
      ? `${edge.sources[0]} → ${edge.targets[0]}: ${names.join(', ')}`
      : '';
    return svg(
      'g',
      {
        class: 'jp-mlops-dag-edge-group',
        'data-source': edge.sources[0],
        'data-target': edge.targets[0]
      },
      svg('path', { class: 'jp-mlops-dag-edge', d, 'marker-end': 'url(#jp-mlops-arrow)' }),
      svg('path', { class: 'jp-mlops-dag-edge-hit', d }), // a wide, invisible target for hover
      svg('title', {}, label)
    );
  }

  private readonly root: SVGSVGElement;
  private readonly content: SVGGElement;
  private width = 0;
  private height = 0;
  private scale = 1;
  private x = 0;
  private y = 0;
  private userMoved = false;
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
        refX: 9,
        refY: 5,
        markerWidth: 6,
        markerHeight: 6,
        orient: 'auto-start-reverse'
      },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'jp-mlops-dag-arrow' })
    )
  );
}
