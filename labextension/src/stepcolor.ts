/**
 * The colour of a pipeline step. The DAG's node and the step's cells (their bar and badge) use
 * this one function, so a cell is found in the graph, and a node in the notebook, at a glance.
 */
import { IGraph } from './api';

/** Ten hues legible on light and dark themes (Tableau 10), taken in the steps' order. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac'
];

/** The colour of step `name` of `graph`: by its position in notebook order. */
export function stepColor(graph: IGraph, name: string): string {
  const index = graph.steps.findIndex(step => step.name === name);
  return index < 0 ? 'var(--jp-border-color1)' : PALETTE[index % PALETTE.length];
}
