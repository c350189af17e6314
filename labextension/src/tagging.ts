/**
 * Cell tags without the raw-tag editor: mark the active cell as a step, setup, skip or
 * parameters (the tag grammar of jupyter-mlops; the server validates the notebook).
 */
import { ICellModel } from '@jupyterlab/cells';

/** A step name as the grammar accepts it: DNS-safe, 1 to 63 characters. */
export const STEP_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The tags that say what a cell is; a cell has at most one of them. */
const ROLE_TAGS = ['setup', 'skip', 'parameters'];

function tagsOf(cell: ICellModel): string[] {
  const tags = cell.getMetadata('tags');
  return Array.isArray(tags) ? [...(tags as string[])] : [];
}

function isRole(tag: string): boolean {
  return ROLE_TAGS.includes(tag) || tag.startsWith('step:');
}

/** Make `cell` start step `name` (replacing another role it had). */
export function markStep(cell: ICellModel, name: string): void {
  if (!STEP_NAME.test(name)) {
    throw new Error(`"${name}" is not a step name: use a-z, 0-9 and "-", at most 63`);
  }
  cell.setMetadata('tags', [...tagsOf(cell).filter(t => !isRole(t)), `step:${name}`]);
}

/** Toggle a role tag (setup, skip, parameters); setting it removes the cell's other role. */
export function toggleRole(cell: ICellModel, role: string): boolean {
  const tags = tagsOf(cell);
  if (tags.includes(role)) {
    cell.setMetadata('tags', tags.filter(t => t !== role));
    return false;
  }
  cell.setMetadata('tags', [...tags.filter(t => !isRole(t)), role]);
  return true;
}

/** The step name a cell starts, if any. */
export function stepOf(cell: ICellModel): string | null {
  const tag = tagsOf(cell).find(t => t.startsWith('step:'));
  return tag ? tag.slice(5) : null;
}
