/**
 * "Export to pipeline": compile the notebook, show its DAG with warnings and errors, then
 * save the YAML next to it, run it locally, or submit it to Kubeflow.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Contents } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { api, ApiError, ICompiled, IServerConfig } from './api';
import { renderDag } from './dag';
import { h } from './dom';

/** Where the pipeline YAML of a notebook is saved: beside it, `<stem>.pipeline.yaml`. */
export function yamlPath(notebookPath: string): string {
  return notebookPath.replace(/\.(ipynb|py)$/, '') + '.pipeline.yaml';
}

/** The dialog body: the DAG, the parameters, the warnings naming cells. */
export function exportBody(compiled: ICompiled): Widget {
  const graph = compiled.graph;
  const warnings = [
    ...graph.warnings.map(w => (w.cell_index !== null ? `cell ${w.cell_index}: ${w.message}` : w.message)),
    ...compiled.warnings
  ];
  const params = Object.entries(graph.parameters);
  const node = h(
    'div',
    { className: 'jp-mlops-export' },
    h('p', {}, `Pipeline `, h('strong', {}, compiled.name), ` — ${graph.steps.length} steps, ${graph.edges.length} edges`),
    h('div', { className: 'jp-mlops-dag-box' }, renderDag(graph)),
    params.length
      ? h('p', { className: 'jp-mlops-params' }, 'Parameters: ', params.map(([k, p]) => `${k}=${JSON.stringify(p.default)}`).join(', '))
      : null,
    warnings.length
      ? h('ul', { className: 'jp-mlops-warnings' }, ...warnings.map(w => h('li', {}, w)))
      : h('p', { className: 'jp-mlops-ok' }, 'No warnings.')
  );
  const widget = new Widget({ node });
  return widget;
}

function errorBody(error: ApiError | Error): Widget {
  const node = h(
    'div',
    { className: 'jp-mlops-export jp-mlops-export-error' },
    h('p', {}, 'The notebook cannot become a pipeline yet:'),
    h('pre', { className: 'jp-mlops-error' }, error.message)
  );
  return new Widget({ node });
}

/** What the export flow needs from the application. */
export interface IExportHost {
  contents: Contents.IManager;
  config: () => IServerConfig | null;
  defaultImage: () => string | undefined;
  onLocalRun: (job: Awaited<ReturnType<typeof api.startLocalRun>>) => void;
}

/** Run the whole flow for the notebook at `path` (saved first by the caller). */
export async function exportNotebook(path: string, host: IExportHost): Promise<void> {
  let compiled: ICompiled;
  try {
    compiled = await api.compile(path, host.defaultImage());
  } catch (error) {
    await showDialog({
      title: 'Export to pipeline',
      body: errorBody(error as Error),
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
    return;
  }
  const kfp = host.config()?.kfp_enabled ?? false;
  const buttons = [
    Dialog.cancelButton({ label: 'Close' }),
    Dialog.createButton({ label: 'Run locally', actions: ['run'] }),
    ...(kfp ? [Dialog.createButton({ label: 'Submit to Kubeflow', actions: ['submit'] })] : []),
    Dialog.okButton({ label: 'Save YAML', actions: ['save'] })
  ];
  const result = await showDialog({
    title: `Export to pipeline: ${path}`,
    body: exportBody(compiled),
    buttons
  });
  const action = result.button.actions.find(a => ['save', 'run', 'submit'].includes(a));
  if (action === 'save') {
    await saveYaml(path, compiled, host.contents);
  } else if (action === 'run') {
    await runLocally(path, host);
  } else if (action === 'submit') {
    await submit(path);
  }
}

async function saveYaml(path: string, compiled: ICompiled, contents: Contents.IManager): Promise<void> {
  const target = yamlPath(path);
  await contents.save(target, { type: 'file', format: 'text', content: compiled.yaml });
  Notification.success(`Saved the pipeline to ${target}`, { autoClose: 5000 });
}

async function runLocally(path: string, host: IExportHost): Promise<void> {
  try {
    const job = await api.startLocalRun(path);
    host.onLocalRun(job);
    Notification.info(`Local run of ${path} started; progress in the MLOps panel`, { autoClose: 5000 });
  } catch (error) {
    Notification.error(`Cannot run locally: ${(error as Error).message}`);
  }
}

async function submit(path: string): Promise<void> {
  const id = Notification.emit(`Submitting ${path} to Kubeflow…`, 'in-progress', { autoClose: false });
  try {
    const done = await api.submit(path);
    Notification.update({
      id,
      message: `Submitted ${done.kind} ${done.id} (experiment ${done.experiment})`,
      type: 'success',
      autoClose: 8000,
      actions: [{ label: 'Open', callback: () => window.open(done.url, '_blank', 'noopener') }]
    });
  } catch (error) {
    Notification.update({ id, message: `Submit failed: ${(error as Error).message}`, type: 'error' });
  }
}
