/**
 * jupyter-mlops in JupyterLab: the MLOps runs panel, "Export to pipeline" and cell tagging.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { api, IServerConfig } from './api';
import { exportNotebook } from './exporter';
import { RunsPanel } from './panel';
import { followNotebooks } from './cellbadges';
import { addTaggingCommands, TagCommandIDs } from './tagging';

/** Command ids of the extension. */
export namespace CommandIDs {
  export const exportPipeline = 'jupyter-mlops:export-pipeline';
  export const openPanel = 'jupyter-mlops:open-panel';
}

const PLUGIN_ID = 'jupyter-mlops:plugin';
/** The labels' translation domain (the Python package's name, as JupyterLab's language packs use). */
const DOMAIN = 'jupyter_mlops';
const CATEGORY = 'MLOps';

/** The sidebar and toolbar icon: three connected steps. */
export const mlopsIcon = new LabIcon({
  name: 'jupyter-mlops:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
    '<g class="jp-icon3" fill="#616161"><rect x="1" y="1" width="6" height="4" rx="1"/>' +
    '<rect x="9" y="6" width="6" height="4" rx="1"/><rect x="1" y="11" width="6" height="4" rx="1"/>' +
    '<path d="M4 5v6h1V5zM7 3h4v3h-1V4H7zM10 10v3H7v-1h2v-2z"/></g></svg>'
});

/** Settings from the schema (schema/plugin.json). */
interface ISettings {
  defaultImage: string;
}

/**
 * The plugin: registers the panel, the commands and follows the active notebook.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'MLOps runs panel, Export to pipeline and cell tagging helpers.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, ILabShell, ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    labShell: ILabShell | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const settings: ISettings = { defaultImage: '' };
    let config: IServerConfig | null = null;
    const current = (): NotebookPanel | null => tracker.currentWidget;

    const panel = new RunsPanel({
      insertCode: source => insertCode(current(), source, trans),
      kernelBusy: () => current()?.sessionContext.session?.kernel?.status === 'busy',
      openText: (title, text) => openText(app, title, text),
      trans
    });
    panel.title.icon = mlopsIcon;
    // JupyterLab: a left sidebar tab. Notebook 7's shell has a left area too (opened from the
    // View menu, by "Show the MLOps runs panel" or by "Run locally"), where tabs have labels.
    if (!labShell) {
      panel.title.label = trans.__('MLOps');
    }
    app.shell.add(panel, 'left', { rank: 850 });
    // After a reload the sidebar opens again on the panel if it was open.
    restorer?.add(panel, panel.id);
    tracker.currentChanged.connect(() => {
      panel.notebook = current()?.context.path ?? null;
    });
    // A cell's start and end: the panel follows its run until the store has settled it.
    NotebookActions.executionScheduled.connect(() => panel.cellActivity());
    NotebookActions.executed.connect(() => panel.cellActivity());
    panel.notebook = current()?.context.path ?? null;

    void api
      .config()
      .then(c => {
        config = panel.config = c;
      })
      .catch(() => undefined);
    if (registry) {
      void registry
        .load(PLUGIN_ID)
        .then(loaded => {
          const read = () => Object.assign(settings, loaded.composite as unknown as ISettings);
          read();
          loaded.changed.connect(read);
        })
        .catch(() => undefined);
    }

    addCommands(app, tracker, panel, settings, () => config, trans);
    const liveGraph = followNotebooks(tracker);
    addTaggingCommands(app, tracker, () => {
      const notebook = current();
      return (notebook && liveGraph(notebook)?.state.graph?.steps.map(s => s.name)) || [];
    });
    if (palette) {
      for (const command of [...Object.values(CommandIDs), ...Object.values(TagCommandIDs)]) {
        palette.addItem({ command, category: trans.__(CATEGORY) });
      }
    }
  }
};

function addCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  panel: RunsPanel,
  settings: ISettings,
  config: () => IServerConfig | null,
  trans: TranslationBundle
): void {
  const current = () => tracker.currentWidget;
  const hasNotebook = () => current() !== null;

  app.commands.addCommand(CommandIDs.exportPipeline, {
    label: trans.__('Export to pipeline'),
    caption: trans.__('Compile this notebook into a pipeline: graph, YAML, local run, Kubeflow'),
    icon: mlopsIcon,
    isEnabled: hasNotebook,
    execute: async () => {
      const notebook = current();
      if (!notebook) {
        return;
      }
      await notebook.context.save();
      await exportNotebook(notebook.context.path, {
        contents: app.serviceManager.contents,
        config,
        defaultImage: () => settings.defaultImage || undefined,
        onLocalRun: job => {
          panel.track(job);
          app.shell.activateById(panel.id);
        },
        open: (path, folder) =>
          void app.commands.execute(folder ? 'filebrowser:go-to-path' : 'docmanager:open', {
            path
          }),
        openPage: (title, html) => openPage(app, title, html),
        trans
      });
    }
  });
  app.commands.addCommand(CommandIDs.openPanel, {
    label: trans.__('Show the MLOps runs panel'),
    execute: () => app.shell.activateById(panel.id)
  });
}

/** A read-only text (a run's artifact) in a main-area tab. */
function openText(app: JupyterFrontEnd, title: string, text: string): void {
  const content = new Widget();
  content.addClass('jp-mlops-artifact-view');
  const pre = document.createElement('pre');
  pre.textContent = text;
  content.node.appendChild(pre);
  const widget = new MainAreaWidget({ content });
  widget.title.label = title;
  widget.title.icon = mlopsIcon;
  app.shell.add(widget, 'main');
}

/**
 * A page the server rendered (an executed step notebook) in a main-area tab: a sandboxed
 * frame, so nothing in the page (an output's script) runs.
 */
function openPage(app: JupyterFrontEnd, title: string, html: string): void {
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', '');
  frame.srcdoc = html;
  const content = new Widget({ node: frame });
  content.addClass('jp-mlops-page-view');
  const widget = new MainAreaWidget({ content });
  widget.title.label = title;
  widget.title.icon = mlopsIcon;
  app.shell.add(widget, 'main');
}

/** Insert `source` as a new code cell below the active cell. */
function insertCode(
  notebook: NotebookPanel | null,
  source: string,
  trans: TranslationBundle
): void {
  if (!notebook) {
    Notification.warning(trans.__('Open a notebook to insert the code into.'));
    return;
  }
  NotebookActions.insertBelow(notebook.content);
  notebook.content.activeCell?.model.sharedModel.setSource(source);
}

export default plugin;
