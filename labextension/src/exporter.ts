/**
 * "Export to pipeline": compile the notebook, show its DAG with warnings and errors; from the
 * dialog run it locally (the DAG shows each step's state as the run goes) or submit it to
 * Kubeflow, once or on a schedule; or save the YAML next to it.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Contents } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { api, ApiError, ICompiled, IJob, IServerConfig } from './api';
import { DagView } from './dag';
import { duration, h } from './dom';

const POLL_MS = 1000;

/** Where the pipeline YAML of a notebook is saved: beside it, `<stem>.pipeline.yaml`. */
export function yamlPath(notebookPath: string): string {
  return notebookPath.replace(/\.(ipynb|py)$/, '') + '.pipeline.yaml';
}

/** What the export flow needs from the application. */
export interface IExportHost {
  contents: Contents.IManager;
  config: () => IServerConfig | null;
  defaultImage: () => string | undefined;
  onLocalRun: (job: IJob) => void;
  /** Open a file of a run (an executed step notebook) or show a folder, by API path. */
  open: (path: string, folder: boolean) => void;
  /** Show a page (an executed step notebook the server rendered) in a main-area tab. */
  openPage: (title: string, html: string) => void;
  /** The labels' translations (ITranslator's bundle for jupyter_mlops). */
  trans: TranslationBundle;
}

/**
 * The dialog body: the DAG, the parameters, the warnings naming cells, a local run's progress
 * and the Kubeflow submission (with its schedule).
 */
export class ExportBody extends Widget {
  constructor(
    private readonly path: string,
    compiled: ICompiled,
    private readonly host: IExportHost
  ) {
    super({ node: h('div', { className: 'jp-mlops-export' }) });
    const trans = (this.trans = host.trans);
    const graph = compiled.graph;
    this.dag = new DagView(graph);
    const warnings = [
      // a warning about a cell names it (1-based, as the status bar counts) in its message
      ...graph.warnings.map(w => w.message),
      ...compiled.warnings
    ];
    const params = Object.entries(graph.parameters);
    this.node.append(
      h(
        'p',
        {},
        trans.__('Pipeline'),
        ' ',
        h('strong', {}, compiled.name),
        ` — ${trans._n('%1 step', '%1 steps', graph.steps.length)}, ` +
          trans._n('%1 edge', '%1 edges', graph.edges.length)
      ),
      this.dag.node,
      params.length
        ? h(
            'p',
            { className: 'jp-mlops-params' },
            trans.__('Parameters: '),
            params.map(([k, p]) => `${k}=${JSON.stringify(p.default)}`).join(', ')
          )
        : '',
      warnings.length
        ? h('ul', { className: 'jp-mlops-warnings' }, ...warnings.map(w => h('li', {}, w)))
        : h('p', { className: 'jp-mlops-ok' }, trans.__('No warnings.')),
      this.localSection(),
      this.kubeflowSection()
    );
  }

  /** Lay the DAG out (ELK runs asynchronously). */
  render(): Promise<void> {
    return this.dag.render();
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    super.dispose();
  }

  private localSection(): HTMLElement {
    this.runButton = h(
      'button',
      { className: 'jp-mlops-button jp-mlops-run-locally', onClick: () => void this.runLocally() },
      this.trans.__('Run locally')
    );
    return h('div', { className: 'jp-mlops-export-section' }, this.runButton, this.localStatus);
  }

  private kubeflowSection(): HTMLElement {
    const trans = this.trans;
    const config = this.host.config();
    const enabled = config?.kfp_enabled ?? false;
    this.schedule = h('input', {
      className: 'jp-mlops-schedule',
      placeholder: trans.__('schedule (cron), e.g. 0 6 * * *; empty: one run now'),
      title: trans.__(
        "A recurring run on this cron: KFP's 6 fields (seconds minute hour day-of-month month day-of-week), or 5 fields with seconds 0"
      ),
      'aria-label': trans.__('schedule (cron)'),
      disabled: !enabled,
      onKeydown: (event: KeyboardEvent) => event.key === 'Enter' && void this.submit()
    });
    const submit = h(
      'button',
      {
        className: 'jp-mlops-button jp-mlops-submit',
        disabled: !enabled,
        onClick: () => void this.submit()
      },
      trans.__('Submit to Kubeflow')
    );
    const hint = enabled
      ? null
      : h(
          'p',
          { className: 'jp-mlops-kfp-hint' },
          config?.kfp_hint ??
            trans.__(
              'Submit needs a Kubeflow Pipelines host in the server settings (MlopsExtension.kfp_host).'
            )
        );
    return h(
      'div',
      { className: 'jp-mlops-export-section' },
      h('div', { className: 'jp-mlops-toolbar' }, submit, this.schedule),
      hint,
      this.submitMessage
    );
  }

  private async runLocally(): Promise<void> {
    this.runButton.disabled = true;
    let job: IJob;
    try {
      job = await api.startLocalRun(this.path);
    } catch (error) {
      this.runButton.disabled = false;
      this.showLocal(null, this.trans.__('Cannot run locally: %1', (error as Error).message));
      return;
    }
    this.host.onLocalRun(job);
    this.graphSteps().forEach(step => this.dag.setStatus(step, null));
    this.follow(job);
  }

  /** Show the job, poll it until it ends. */
  private follow(job: IJob): void {
    this.showLocal(job);
    if (job.status !== 'running' || this.isDisposed) {
      this.runButton.disabled = false;
      return;
    }
    this.timer = window.setTimeout(async () => {
      try {
        this.follow(await api.localRun(job.id, job.offset));
      } catch (error) {
        this.runButton.disabled = false;
        console.warn(`jupyter-mlops: lost local run ${job.id} of ${this.path}`, error);
        this.showLocal(job, this.trans.__('Lost the local run: %1', (error as Error).message));
      }
    }, POLL_MS);
  }

  private showLocal(job: IJob | null, problem?: string): void {
    const trans = this.trans;
    const node = this.localStatus;
    node.textContent = '';
    if (job) {
      for (const [step, state] of Object.entries(job.steps ?? {})) {
        const took =
          state.duration !== undefined && state.status !== 'running'
            ? ` ${trans.__('in %1', duration(state.duration * 1000))}`
            : '';
        this.dag.setStatus(
          step,
          state.status,
          `${state.status}${took}${state.reason ? ` (${state.reason})` : ''}`
        );
      }
      node.dataset.status = job.status;
      node.append(this.localSummary(job));
      const notebooks = Object.entries(job.steps ?? {}).filter(([, s]) => s.notebook);
      if (notebooks.length) {
        node.append(
          h(
            'div',
            { className: 'jp-mlops-step-notebooks' },
            trans.__('Step notebooks: '),
            ...notebooks.map(([step, s]) => this.stepLink(job, step, s.notebook!))
          )
        );
      }
    }
    if (problem) {
      node.append(h('p', { className: 'jp-mlops-error' }, problem));
    }
  }

  private localSummary(job: IJob): HTMLElement {
    const trans = this.trans;
    const run = job.run;
    if (job.status === 'running') {
      return h('span', { className: 'jp-mlops-local-summary' }, trans.__('Running locally…'));
    }
    const folder = run?.folder;
    return h(
      'span',
      { className: 'jp-mlops-local-summary' },
      trans.__('Local run %1', job.status),
      run ? ` ${trans.__("in %1 (the runner's time)", duration(run.duration * 1000))}` : '',
      folder ? ' · ' : '',
      folder ? this.folderLink(folder) : '',
      job.status === 'succeeded' ? '' : ` · ${trans.__('the log is in the MLOps panel')}`
    );
  }

  /**
   * The run folder: a link that shows it in the file browser (the dialog closes) when Jupyter
   * opens hidden files; else its path as text, since the file browser cannot open `.mlops/`
   * (its step notebooks open all the same, below).
   */
  private folderLink(path: string): HTMLElement {
    const label = this.trans.__('run folder');
    if (!this.opens(path)) {
      return h(
        'span',
        {},
        `${label} `,
        h('code', { className: 'jp-mlops-run-folder', 'data-path': path }, path)
      );
    }
    return this.link(path, label, 'jp-mlops-run-folder', () => this.host.open(path, true));
  }

  /**
   * An executed step notebook: opened as a notebook when Jupyter opens hidden files, else as
   * the page the server renders of it (it lies under `.mlops/`). Either way the dialog closes,
   * so the tab it opens in is seen.
   */
  private stepLink(job: IJob, step: string, path: string): HTMLElement {
    const open = this.opens(path)
      ? () => this.host.open(path, false)
      : () => void this.showStepNotebook(job, step, path);
    return this.link(path, `${step}.ipynb`, 'jp-mlops-step-notebook', open);
  }

  /** A link to a run's file that closes the dialog, then opens it. */
  private link(path: string, label: string, className: string, open: () => void): HTMLElement {
    const onClick = (event: Event) => {
      event.preventDefault();
      this.closeDialog();
      open();
    };
    const attributes = { className: `jp-mlops-link ${className}`, href: '#', title: path };
    return h('a', { ...attributes, 'data-path': path, onClick }, label);
  }

  /** Close the dialog holding this body (as its Close button does). */
  private closeDialog(): void {
    let widget = this.parent;
    while (widget && !(widget instanceof Dialog)) {
      widget = widget.parent;
    }
    widget?.reject();
  }

  private async showStepNotebook(job: IJob, step: string, path: string): Promise<void> {
    try {
      this.host.openPage(`${step}.ipynb`, await api.stepNotebookHtml(job.id, step));
    } catch (error) {
      console.warn(`jupyter-mlops: cannot show ${path} of local run ${job.id}`, error);
      // the dialog is closed: say it where the user looks now
      Notification.error(this.trans.__('Cannot open %1: %2', path, (error as Error).message));
    }
  }

  /** Whether JupyterLab opens `path`: not hidden, or the server opens hidden files. */
  private opens(path: string): boolean {
    const hidden = path.split('/').some(part => part.startsWith('.'));
    return !hidden || !!this.host.config()?.opens_hidden_files;
  }

  private async submit(): Promise<void> {
    const trans = this.trans;
    const message = this.submitMessage;
    const schedule = this.schedule.value.trim();
    message.className = 'jp-mlops-submit-message';
    message.textContent = schedule
      ? trans.__('Scheduling %1 on Kubeflow…', this.path)
      : trans.__('Submitting %1 to Kubeflow…', this.path);
    try {
      const done = await api.submit(this.path, {
        image: this.host.defaultImage(),
        schedule: schedule || undefined
      });
      message.textContent = '';
      message.classList.add('jp-mlops-ok');
      message.append(
        trans.__('Created %1 %2 in experiment %3', done.kind, done.id, done.experiment),
        done.schedule ? ` (cron ${done.schedule}) ` : ' ',
        h(
          'a',
          { className: 'jp-mlops-link', href: done.url, target: '_blank', rel: 'noopener' },
          trans.__('Open in Kubeflow')
        )
      );
    } catch (error) {
      message.classList.add('jp-mlops-error');
      message.textContent = trans.__('Submit failed: %1', (error as Error).message);
    }
  }

  private graphSteps(): string[] {
    return Array.from(this.dag.node.querySelectorAll<SVGGElement>('g[data-step]')).map(
      g => g.dataset.step!
    );
  }

  private readonly dag: DagView;
  private readonly trans: TranslationBundle;
  private readonly localStatus = h('div', { className: 'jp-mlops-local-status' });
  private readonly submitMessage = h('p', { className: 'jp-mlops-submit-message' });
  private runButton!: HTMLButtonElement;
  private schedule!: HTMLInputElement;
  private timer = 0;
}

function errorBody(error: ApiError | Error, trans: TranslationBundle): Widget {
  const node = h(
    'div',
    { className: 'jp-mlops-export jp-mlops-export-error' },
    h('p', {}, trans.__('The notebook cannot become a pipeline yet:')),
    h('pre', { className: 'jp-mlops-error' }, error.message)
  );
  return new Widget({ node });
}

/** Run the whole flow for the notebook at `path` (saved first by the caller). */
export async function exportNotebook(path: string, host: IExportHost): Promise<void> {
  const trans = host.trans;
  let compiled: ICompiled;
  try {
    compiled = await api.compile(path, host.defaultImage());
  } catch (error) {
    await showDialog({
      title: trans.__('Export to pipeline'),
      body: errorBody(error as Error, trans),
      buttons: [Dialog.okButton({ label: trans.__('Close') })]
    });
    return;
  }
  const body = new ExportBody(path, compiled, host);
  const shown = showDialog({
    title: trans.__('Export to pipeline: %1', path),
    body,
    buttons: [
      Dialog.cancelButton({ label: trans.__('Close') }),
      Dialog.okButton({ label: trans.__('Save YAML'), actions: ['save'] })
    ],
    defaultButton: -1 // Enter in the schedule field submits it, not the dialog
  });
  void body.render();
  const result = await shown;
  body.dispose();
  if (result.button.actions.includes('save')) {
    await saveYaml(path, compiled, host.contents, trans);
  }
}

async function saveYaml(
  path: string,
  compiled: ICompiled,
  contents: Contents.IManager,
  trans: TranslationBundle
): Promise<void> {
  const target = yamlPath(path);
  await contents.save(target, { type: 'file', format: 'text', content: compiled.yaml });
  Notification.success(trans.__('Saved the pipeline to %1', target), { autoClose: 5000 });
}
