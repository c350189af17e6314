/**
 * The panel's "Models" view: the registered models of the notebook's store, each model's
 * versions with alias badges, key metrics, gate verdicts, lineage and the drift reports logged
 * against them (monitor runs), and "Promote to champion" behind a confirmation that compares
 * the candidate with the current champion.
 * It only shows what the server answers: the registry's logic is the Python package's.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  api,
  IGateResult,
  IModel,
  IModelVersion,
  IModelVersions,
  IPromotionPreview,
  IVersionLineage
} from './api';
import { h, num, when } from './dom';
import { renderLineage } from './lineage';

const CHAMPION = 'champion';
const MONITORS_SHOWN = 3; // a version's newest monitor runs in its row; the count says the rest

/** A gate's verdict recorded on a version by the pipeline that registered it. */
type IVerdict = Pick<IGateResult, 'gate' | 'passed' | 'message'>;

/** A drift report logged against a version (monitoring/monitor.py `MonitorRun`). */
interface IMonitorRun {
  run_id: string;
  start_ms: number;
  max_psi: number | null;
  band: 'stable' | 'moderate' | 'significant';
  drifted: boolean;
  reference: string;
  report: string;
}

/**
 * The Models view's state and its element, redrawn on each change.
 */
export class ModelsView {
  /** `trans`: the labels' translations (ITranslator's bundle for jupyter_mlops). */
  constructor(private trans: TranslationBundle) {}

  /** The element the panel shows under its "Models" tab. */
  readonly node = h('div', { className: 'jp-mlops-models' });

  /** The notebook whose store is read (API path), or null for the root folder's. */
  set notebook(path: string | null) {
    if (path !== this._notebook) {
      this._notebook = path;
      this._open.clear();
      this._versions.clear();
      this._lineage.clear();
    }
  }

  /** Fetch the models, and the versions of the models shown open. */
  async refresh(): Promise<void> {
    try {
      const page = await api.models(this.notebookArg);
      this._models = page.models;
      this._nextModels = page.next_page_token;
      this._message = page.models.length
        ? ''
        : this.trans.__(
            'No registered models yet: %mlops register, a register: step, or jupyter-mlops models.'
          );
      await Promise.all([...this._open].map(name => this.loadVersions(name)));
    } catch (error) {
      this._message = this.trans.__('Cannot list models: %1', (error as Error).message);
    }
    this.draw();
  }

  private get notebookArg(): string | undefined {
    return this._notebook ?? undefined;
  }

  private async loadVersions(name: string): Promise<void> {
    try {
      this._versions.set(name, await api.model(name, this.notebookArg, this._condition));
      this._errors.delete(name);
    } catch (error) {
      this._errors.set(name, (error as Error).message);
      // The verdicts shown judged the previous conditions, not the refused ones: drop them.
      const shown = this._versions.get(name);
      if (shown) {
        const versions = shown.versions.map(v => ({ ...v, gates: [] }));
        this._versions.set(name, { ...shown, versions });
      }
    }
  }

  /** The next page of models, or of one model's versions, appended to what is shown. */
  private async more(name?: string): Promise<void> {
    try {
      if (name === undefined) {
        const page = await api.models(this.notebookArg, this._nextModels ?? undefined);
        this._models = [...this._models, ...page.models];
        this._nextModels = page.next_page_token;
      } else {
        const shown = this._versions.get(name);
        const page = await api.model(
          name,
          this.notebookArg,
          this._condition,
          shown?.next_page_token ?? undefined
        );
        this._versions.set(name, {
          ...page,
          versions: [...(shown?.versions ?? []), ...page.versions]
        });
      }
    } catch (error) {
      Notification.error((error as Error).message);
    }
    this.draw();
  }

  private async toggle(name: string): Promise<void> {
    if (this._open.delete(name)) {
      this.draw();
      return;
    }
    this._open.add(name);
    await this.loadVersions(name);
    this.draw();
  }

  /** Unfold (or fold) a version's lineage under its row. */
  private async toggleLineage(v: IModelVersion): Promise<void> {
    const key = `${v.model}/${v.version}`;
    if (this._lineage.delete(key)) {
      this.draw();
      return;
    }
    try {
      this._lineage.set(key, await api.versionLineage(v.model, v.version, this.notebookArg));
    } catch (error) {
      Notification.error(
        this.trans.__('Cannot read the lineage of %1: %2', v.label, (error as Error).message)
      );
    }
    this.draw();
  }

  /** Ask with the comparison, then promote; the view refreshes either way. */
  private async promote(version: IModelVersion): Promise<void> {
    let preview: IPromotionPreview;
    try {
      preview = await api.promotionPreview(
        version.model,
        version.version,
        this.notebookArg,
        this._condition
      );
    } catch (error) {
      Notification.error(
        this.trans.__('Cannot compare %1: %2', version.label, (error as Error).message)
      );
      return;
    }
    const result = await showDialog({
      title: this.trans.__('Promote %1 to @%2?', version.label, CHAMPION),
      body: new Widget({ node: renderComparison(preview, this.trans) }),
      buttons: [
        Dialog.cancelButton({ label: this.trans.__('Cancel') }),
        Dialog.warnButton({ label: this.trans.__('Promote') })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      const done = await api.promote(
        version.model,
        version.version,
        this.notebookArg,
        this._condition
      );
      Notification.success(done.message.split('\n')[0]);
    } catch (error) {
      Notification.error((error as Error).message);
    }
    await this.refresh();
  }

  private draw(): void {
    const node = this.node;
    node.textContent = '';
    node.appendChild(this.renderToolbar());
    if (this._message) {
      node.appendChild(h('p', { className: 'jp-mlops-message' }, this._message));
    }
    for (const model of this._models) {
      node.appendChild(this.renderModel(model));
    }
    if (this._nextModels) {
      node.appendChild(
        h(
          'button',
          { className: 'jp-mlops-button jp-mlops-more', onClick: () => void this.more() },
          this.trans.__('More models')
        )
      );
    }
  }

  private renderToolbar(): HTMLElement {
    const gates = h('input', {
      className: 'jp-mlops-filter jp-mlops-gates-input',
      placeholder: this.trans.__('Gates, e.g. accuracy>=champion and f1>=0.8'),
      title: this.trans.__('Each version is judged by these conditions; a promotion requires them'),
      value: this._condition,
      onChange: (e: Event) => {
        this._condition = (e.target as HTMLInputElement).value.trim();
        void this.refresh();
      }
    });
    return h(
      'div',
      { className: 'jp-mlops-toolbar' },
      gates,
      h(
        'button',
        {
          className: 'jp-mlops-button',
          title: this.trans.__('Refresh now'),
          onClick: () => void this.refresh()
        },
        '⟳'
      )
    );
  }

  private renderModel(model: IModel): HTMLElement {
    const open = this._open.has(model.name);
    const aliases = Object.entries(model.aliases).sort();
    const found = this._versions.get(model.name);
    const error = this._errors.get(model.name);
    return h(
      'div',
      { className: 'jp-mlops-model', 'data-model': model.name },
      h(
        'div',
        { className: 'jp-mlops-model-header', onClick: () => void this.toggle(model.name) },
        open ? '▾ ' : '▸ ',
        h('strong', {}, model.name),
        ' ',
        ...aliases.map(([alias, v]) => badge(alias, `v${v}`)),
        h(
          'span',
          { className: 'jp-mlops-subtitle' },
          // the highest version number, not a count (deleted versions leave gaps)
          model.latest_version ? ` · ${this.trans.__('latest v%1', model.latest_version)}` : ''
        )
      ),
      open && error ? h('p', { className: 'jp-mlops-error' }, error) : null,
      open && found ? this.renderVersions(found) : null,
      open && found?.next_page_token
        ? h(
            'button',
            {
              className: 'jp-mlops-button jp-mlops-more',
              onClick: () => void this.more(model.name)
            },
            this.trans.__('More versions (%1 of %2)', found.versions.length, found.total)
          )
        : null
    );
  }

  private renderVersions(found: IModelVersions): HTMLElement {
    const keys = found.key_metrics;
    const trans = this.trans;
    return h(
      'table',
      { className: 'jp-mlops-runs jp-mlops-versions' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, trans.__('version')),
          h('th', {}, trans.__('aliases')),
          ...keys.map(k => h('th', {}, k)),
          h('th', {}, trans.__('gates')),
          h('th', {}, trans.__('monitoring')),
          h('th', {}, trans.__('lineage')),
          h('th', {}, '')
        )
      ),
      h(
        'tbody',
        {},
        ...found.versions.flatMap(v => {
          const lineage = this._lineage.get(`${v.model}/${v.version}`);
          const row = this.renderVersion(v, keys);
          return lineage
            ? [
                row,
                h(
                  'tr',
                  { className: 'jp-mlops-lineage-row' },
                  h('td', { colspan: keys.length + 6 }, renderLineage(lineage.lineage))
                )
              ]
            : [row];
        })
      )
    );
  }

  private renderVersion(v: IModelVersion, keys: string[]): HTMLElement {
    const champion = v.aliases.includes(CHAMPION);
    const trans = this.trans;
    return h(
      'tr',
      { className: 'jp-mlops-version', 'data-version': v.version },
      h(
        'td',
        { title: trans.__('registered %1; click for its lineage', when(v.created_ms)) },
        h(
          'a',
          {
            className: 'jp-mlops-version-link',
            href: '#',
            onClick: (e: Event) => {
              e.preventDefault();
              void this.toggleLineage(v);
            }
          },
          `v${v.version}`
        )
      ),
      h('td', { className: 'jp-mlops-aliases' }, ...v.aliases.map(a => badge(a))),
      ...keys.map(k => h('td', { className: 'jp-mlops-num' }, num(v.metrics[k]))),
      h(
        'td',
        { className: 'jp-mlops-gates' },
        ...((v.recorded_gates ?? []) as IVerdict[]).map(r =>
          verdict(r, trans.__('when registered: '))
        ),
        ...(v.gates ?? []).map(r => verdict(r))
      ),
      h('td', { className: 'jp-mlops-monitors' }, ...this.renderMonitors(v)),
      h('td', { className: 'jp-mlops-lineage' }, lineage(v, trans)),
      h(
        'td',
        {},
        champion
          ? null
          : h(
              'button',
              {
                className: 'jp-mlops-button jp-mlops-promote',
                onClick: () => void this.promote(v)
              },
              trans.__('Promote to champion')
            )
      )
    );
  }

  /** The version's newest monitor runs, each opening its drift report. */
  private renderMonitors(v: IModelVersion): HTMLElement[] {
    const trans = this.trans;
    const runs = (v.monitors ?? []) as IMonitorRun[];
    const shown = runs.slice(0, MONITORS_SHOWN).map(run =>
      h(
        'a',
        {
          className: `jp-mlops-monitor jp-mlops-band-${run.band}`,
          'data-run-id': run.run_id,
          'data-band': run.band,
          href: api.artifactUrl(run.run_id, run.report, this.notebookArg),
          target: '_blank',
          rel: 'noopener',
          title: trans.__(
            'Drift against %1, run %2: largest PSI %3 (%4). Click for the report.',
            run.reference,
            run.run_id,
            num(run.max_psi ?? undefined),
            run.band
          )
        },
        `${when(run.start_ms)} · PSI ${num(run.max_psi ?? undefined)} · ` +
          (run.drifted ? trans.__('drifted') : trans.__('no drift'))
      )
    );
    const more = runs.length - shown.length;
    return more > 0
      ? [...shown, h('span', { className: 'jp-mlops-subtitle' }, trans.__('+%1 more', more))]
      : shown;
  }

  private _notebook: string | null = null;
  private _models: IModel[] = [];
  private _nextModels: string | null = null;
  private _open = new Set<string>();
  private _versions = new Map<string, IModelVersions>();
  private _errors = new Map<string, string>();
  private _lineage = new Map<string, IVersionLineage>(); // unfolded, by "model/version"
  private _condition = '';
  private _message = '';
}

/** An alias as a badge: `@champion`, optionally with its version. */
function badge(alias: string, version = ''): HTMLElement {
  return h(
    'span',
    { className: `jp-mlops-badge jp-mlops-badge-${alias}`, 'data-alias': alias },
    `@${alias}${version ? ` ${version}` : ''}`
  );
}

/** A gate's verdict as a mark whose tooltip says why (`when`: recorded at registration). */
function verdict(result: IVerdict, when = ''): HTMLElement {
  const state = result.passed ? 'jp-mlops-pass' : 'jp-mlops-fail';
  return h(
    'span',
    { className: when ? `${state} jp-mlops-recorded` : state, title: when + result.message },
    `${result.passed ? '✓' : '✗'} ${result.gate} `
  );
}

/** Where a version came from: notebook, git commit, run (full values in the tooltip). */
function lineage(v: IModelVersion, trans: TranslationBundle): HTMLElement {
  const parts = [
    v.notebook ? v.notebook.split('/').pop() : null,
    v.git_commit ? `@${v.git_commit.slice(0, 8)}` : null,
    v.run_id ? trans.__('run %1', v.run_id.slice(0, 8)) : null
  ].filter(Boolean);
  const full = [
    trans.__('notebook: %1', v.notebook ?? '-'),
    trans.__('git commit: %1', v.git_commit ?? '-'),
    trans.__('run: %1', v.run_id ?? '-'),
    trans.__('source: %1', v.source)
  ];
  return h('span', { title: full.join('\n') }, parts.join(' · '));
}

/** The confirmation's body: the candidate against the current champion, metric by metric. */
export function renderComparison(
  preview: IPromotionPreview,
  trans: TranslationBundle
): HTMLElement {
  const theirs = preview.champion;
  const delta = (a: number | null, b: number | null) =>
    a === null || b === null ? '' : (a - b >= 0 ? '+' : '') + num(a - b);
  return h(
    'div',
    { className: 'jp-mlops-promotion' },
    h(
      'p',
      {},
      theirs
        ? trans.__('@%1 moves from %2 to %3.', preview.alias, theirs.label, preview.candidate.label)
        : trans.__('Nobody holds @%1 yet: %2 takes it.', preview.alias, preview.candidate.label)
    ),
    h(
      'table',
      { className: 'jp-mlops-compare-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, trans.__('metric')),
          h('th', {}, trans.__('candidate v%1', preview.candidate.version)),
          h('th', {}, theirs ? trans.__('champion v%1', theirs.version) : trans.__('champion')),
          h('th', {}, 'Δ')
        )
      ),
      h(
        'tbody',
        {},
        ...preview.metrics.map(row =>
          h(
            'tr',
            { 'data-metric': row.metric },
            h('td', {}, row.metric),
            h('td', { className: 'jp-mlops-num' }, num(row.candidate ?? undefined)),
            h('td', { className: 'jp-mlops-num' }, num(row.champion ?? undefined)),
            h('td', { className: 'jp-mlops-num' }, delta(row.candidate, row.champion))
          )
        )
      )
    ),
    preview.results.length
      ? h(
          'ul',
          { className: 'jp-mlops-verdicts' },
          ...preview.results.map(r => h('li', {}, verdict(r)))
        )
      : null
  );
}
