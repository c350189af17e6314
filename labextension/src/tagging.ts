/**
 * Cell tags without the raw-tag editor: mark the active cell as a step, setup, skip,
 * parameters or metrics cell (the tag grammar of jupyter-mlops; the server validates the
 * notebook and the cells show the result, see cellbadges.ts).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, Notification } from '@jupyterlab/apputils';
import { ICellModel } from '@jupyterlab/cells';
import { INotebookTracker } from '@jupyterlab/notebook';

/** Command ids of the tagging commands (the cell toolbar, context menu and shortcut use them). */
export namespace TagCommandIDs {
  export const tagStep = 'jupyter-mlops:tag-step';
  export const tagSetup = 'jupyter-mlops:tag-setup';
  export const tagSkip = 'jupyter-mlops:tag-skip';
  export const tagParameters = 'jupyter-mlops:tag-parameters';
  export const tagMetrics = 'jupyter-mlops:tag-metrics';
}

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

/**
 * Make `cell` start step `name` (replacing another role it had); an empty name removes its
 * `step:` tag, so the cell joins the step above it.
 */
export function markStep(cell: ICellModel, name: string): void {
  if (!name) {
    cell.setMetadata(
      'tags',
      tagsOf(cell).filter(t => !t.startsWith('step:'))
    );
    return;
  }
  if (!STEP_NAME.test(name)) {
    throw new Error(`"${name}" is not a step name: use a-z, 0-9 and "-", at most 63`);
  }
  cell.setMetadata('tags', [...tagsOf(cell).filter(t => !isRole(t)), `step:${name}`]);
}

/** Toggle a role tag (setup, skip, parameters); setting it removes the cell's other role. */
export function toggleRole(cell: ICellModel, role: string): boolean {
  const tags = tagsOf(cell);
  if (tags.includes(role)) {
    cell.setMetadata(
      'tags',
      tags.filter(t => t !== role)
    );
    return false;
  }
  cell.setMetadata('tags', [...tags.filter(t => !isRole(t)), role]);
  return true;
}

/** Toggle a tag that goes with any role (`metrics`: the cell stays in its step). */
export function toggleTag(cell: ICellModel, tag: string): boolean {
  const tags = tagsOf(cell);
  const on = !tags.includes(tag);
  cell.setMetadata('tags', on ? [...tags, tag] : tags.filter(t => t !== tag));
  return on;
}

/** The step name a cell starts, if any. */
export function stepOf(cell: ICellModel): string | null {
  const tag = tagsOf(cell).find(t => t.startsWith('step:'));
  return tag ? tag.slice(5) : null;
}

/**
 * Register the tagging commands on the active cell. `steps` gives the step names the notebook
 * has now (offered by the step picker).
 */
export function addTaggingCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  steps: () => string[]
): void {
  const activeCell = () => tracker.currentWidget?.content.activeCell?.model ?? null;
  const isEnabled = () => activeCell() !== null;
  app.commands.addCommand(TagCommandIDs.tagStep, {
    // On the cell toolbar: the cell's step, a click changes it.
    label: args => {
      if (!args.toolbar) {
        return 'Set pipeline step of cell…';
      }
      const cell = activeCell();
      const step = cell ? stepOf(cell) : null;
      return step ? `step: ${step}` : 'set step';
    },
    caption: 'Start a pipeline step at this cell, or change its step (Alt+S)',
    isEnabled,
    execute: () => pickStep(activeCell(), steps())
  });
  const toggle = (id: string, tag: string, label: string, set: typeof toggleRole) =>
    app.commands.addCommand(id, {
      label,
      isEnabled,
      isToggled: () => tagsOf(activeCell() ?? emptyCell).includes(tag),
      execute: () => {
        const cell = activeCell();
        if (cell) {
          set(cell, tag);
        }
      }
    });
  toggle(TagCommandIDs.tagSetup, 'setup', 'Setup cell (code every step runs)', toggleRole);
  toggle(TagCommandIDs.tagSkip, 'skip', 'Skipped in pipelines', toggleRole);
  toggle(TagCommandIDs.tagParameters, 'parameters', 'Parameters cell', toggleRole);
  toggle(TagCommandIDs.tagMetrics, 'metrics', "Metrics cell (the step's metrics)", toggleTag);
  // The toolbar's label follows the active cell and its tags.
  const changed = () => app.commands.notifyCommandChanged(TagCommandIDs.tagStep);
  tracker.activeCellChanged.connect((_, cell) => {
    changed();
    cell?.model.metadataChanged.connect(changed);
  });
}

/** No cell: no tags. */
const emptyCell = { getMetadata: () => undefined } as unknown as ICellModel;

/** Ask for the step `cell` starts: one of `steps` or a new name; empty takes the tag away. */
async function pickStep(cell: ICellModel | null, steps: string[]): Promise<void> {
  if (!cell) {
    return;
  }
  const current = stepOf(cell) ?? '';
  const result = await InputDialog.getItem({
    title: 'Pipeline step of this cell (a-z, 0-9, -; empty: none)',
    items: steps,
    current: current || ' ', // '' would pre-select the first step (JupyterLab's getItem)
    editable: true,
    placeholder: 'train'
  });
  if (!result.button.accept || result.value === null) {
    return;
  }
  try {
    markStep(cell, result.value.trim());
  } catch (error) {
    Notification.error((error as Error).message);
  }
}
