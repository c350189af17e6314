/**
 * A typed client of the jupyter-mlops REST API (`<base_url>/mlops/api/`).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An error answered by the API: a stable code and a message safe to show. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The notebook cell at fault (its index), when the answer names one. */
    readonly cell: number | null = null
  ) {
    super(message);
  }
}

/** Server settings the frontend may know. */
export interface IServerConfig {
  mlflow_ui_url: string | null;
  kfp_enabled: boolean;
  /** Without a KFP host: how to configure one (the export dialog shows it by Submit). */
  kfp_hint?: string | null;
  /** Whether JupyterLab opens hidden files (a local run's, under `.mlops/`). */
  opens_hidden_files?: boolean;
  default_image: string | null;
}

export interface IExperiment {
  experiment_id: string;
  name: string;
  lifecycle_stage: string;
  creation_time: number | null;
  last_update_time: number | null;
}

/** A run as the runs list gives it. */
export interface IRunSummary {
  run_id: string;
  run_name: string | null;
  experiment_id: string;
  status: string;
  start_time: number | null;
  end_time: number | null;
  /** The user's metrics: not the runner's bookkeeping (a step's duration_s, cache_hit), which
   * only the details hold. */
  metrics: Record<string, number>;
  params: Record<string, string>;
  tags: Record<string, string>;
  /** The session run a cell run belongs to (the panel nests it there). */
  parent_id: string | null;
}

export interface IMetricPoint {
  step: number;
  timestamp: number;
  value: number;
}

/** A value the run used (or, a pipeline step, wrote): an MLflow dataset input. */
export interface IDataset {
  name: string;
  /** How the run used it: training (a tracked cell's --inputs), input or output (a step). */
  context: string;
  digest: string;
  rows: number | null;
  /** The full file digest of a pipeline step's value (the runner's cache key's). */
  sha256: string | null;
  schema: string | null;
}

/** A model the run logged (an MLflow logged model) and the registered versions made of it. */
export interface ILoggedModel {
  name: string;
  model_id: string;
  model_type: string | null;
  uri: string;
  registered: { name: string; version: string }[];
  /** Its state in the run card's words: "registered NAME vN", "stored, not registered". */
  state: string;
}

/** One run in full. */
export interface IRunDetails extends IRunSummary {
  metric_history: Record<string, IMetricPoint[]>;
  artifacts: { path: string; size: number | null }[];
  source: string | null;
  /** The code as a cell to insert: a tracked cell's with its `%%mlops track` line. */
  cell: string | null;
  datasets: IDataset[];
  /** Its tags that are bookkeeping (the vocabulary's INTERNAL_TAGS): hidden unless asked. */
  internal_tags: string[];
  /** Why it failed, as the runner or the cell recorded it. */
  error: string | null;
  /** What made it (the vocabulary's KIND_* values: cell, pipeline, pipeline-step, sweep...). */
  kind: string | null;
  /** The session run a cell run belongs to. */
  parent: { run_id: string; run_name: string | null } | null;
  models: ILoggedModel[];
}

/** An experiment holding some of the listed runs: the experiment picker's entries. */
export interface IExperimentRuns {
  experiment_id: string;
  name: string;
  runs: number;
}

/**
 * A page of runs. With `notebook`: that notebook's runs in every experiment (`experiments`
 * lists those experiments), narrowed to `experiment` when one is asked for.
 */
export interface IRunsPage {
  experiment: IExperiment | null;
  experiments: IExperimentRuns[];
  runs: IRunSummary[];
  total: number;
  next_page_token: string | null;
  /** The server is still reading the runs: `total` counts those seen so far, and an order
   * other than newest first sorts only them. */
  loading?: boolean;
  /** Why the server could not read every run (the store named); it tries again. */
  error?: string | null;
}

export interface IStep {
  name: string;
  upstream: string[];
  cells: number[];
  [key: string]: unknown;
}

export interface IGraph {
  path: string;
  name: string;
  steps: IStep[];
  edges: { source: string; target: string; names: string[] }[];
  parameters: Record<string, { type: string; default: unknown; cell: number }>;
  warnings: { code: string; message: string; cell_index: number | null }[];
  /** The tag grammar's roles of each code cell, by cell index (POST /graph only). */
  cells?: Record<string, string[]>;
}

export interface ICompiled {
  name: string;
  yaml: string;
  graph: IGraph;
  warnings: string[];
}

/** A local pipeline run started from the UI. */
export interface IJob {
  id: string;
  path: string;
  status: 'running' | 'succeeded' | 'failed' | 'cancelled';
  returncode: number | null;
  started: number;
  ended: number | null;
  log: string;
  offset: number;
  /** Each step's latest state; `notebook`: its executed notebook's path. */
  steps?: Record<string, IJobStep>;
  /** The runner's account once it ended: its status, time, and the run's folder. */
  run?: { run_id: string; status: string; duration: number; folder: string | null } | null;
}

/** A step of a local run: `running`, then the runner's `ok`, `cached`, `failed`, `skipped`. */
export interface IJobStep {
  status: string;
  duration?: number;
  reason?: string | null;
  notebook?: string | null;
}

export interface ISubmission {
  kind: string;
  id: string;
  experiment_id: string;
  url: string;
  experiment: string;
  schedule?: string | null;
}

/** What a submission sends besides the notebook. */
export interface ISubmitOptions {
  parameters?: Record<string, unknown>;
  image?: string;
  /** A cron: a recurring run instead of one run. */
  schedule?: string;
}

/** A registered model as the Models view lists it; aliases map to version numbers. */
export interface IModel {
  name: string;
  description: string;
  aliases: Record<string, number>;
  latest_version: number | null;
  last_updated: number | null;
}

export interface IModelsPage {
  models: IModel[];
  next_page_token: string | null;
}

/** One gate's verdict on a version's metrics (`accuracy>=champion`). */
export interface IGateResult {
  gate: string;
  metric: string;
  value: number | null;
  threshold: number | null;
  passed: boolean;
  message: string;
}

/**
 * A model version with its lineage (run, notebook, git commit, and whatever else models/
 * describes), its aliases now, and its verdicts on the condition asked for.
 */
export interface IModelVersion {
  model: string;
  version: number;
  label: string;
  aliases: string[];
  status: string;
  created_ms: number;
  run_id: string | null;
  source: string;
  metrics: Record<string, number>;
  notebook: string | null;
  git_commit: string | null;
  tags: Record<string, string>;
  previous: Record<string, string | null>;
  gates?: IGateResult[];
  [key: string]: unknown;
}

/** A page of one model's versions, newest first, and the version holding @champion. */
export interface IModelVersions {
  model: IModel;
  versions: IModelVersion[];
  total: number;
  champion: IModelVersion | null;
  /** The metrics the versions table shows, in order: every gated one, no runner bookkeeping. */
  key_metrics: string[];
  next_page_token: string | null;
}

/** Where a version came from (models/lineage.py). */
export interface ILineage {
  model: string;
  version: number;
  run_id: string | null;
  run_name: string;
  notebook: string | null;
  git_commit: string | null;
  params: Record<string, string>;
  datasets: IDataset[];
  step: string | null;
  parent_run_id: string | null;
}

export interface IVersionLineage {
  version: IModelVersion;
  lineage: ILineage;
}

/** What a promotion would do: the candidate against the alias's holder, metric by metric. */
export interface IPromotionPreview {
  model: string;
  alias: string;
  candidate: IModelVersion;
  champion: IModelVersion | null;
  metrics: { metric: string; candidate: number | null; champion: number | null }[];
  results: IGateResult[];
}

/** What a promotion did. */
export interface IPromotion {
  model: string;
  alias: string;
  version: number;
  previous: number | null;
  moved: boolean;
  results: IGateResult[];
  message: string;
}

export interface IRunsQuery {
  notebook?: string;
  experiment?: string;
  experiment_id?: string;
  order_by?: string[];
  max_results?: number;
  page_token?: string;
}

/**
 * Call the API; JSON in and out, errors as ApiError.
 */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  query: Record<string, string | string[] | number | undefined> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) {
      continue;
    }
    for (const item of Array.isArray(value) ? value : [value]) {
      params.append(key, String(item));
    }
  }
  const search = params.toString();
  const url =
    URLExt.join(settings.baseUrl, 'mlops', 'api', endpoint) + (search ? `?${search}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new ApiError(
      response.status,
      data.code ?? 'error',
      data.message ?? response.statusText,
      typeof data.cell === 'number' ? data.cell : null
    );
  }
  return data as T;
}

/** A text the API sends as is (not JSON); errors as ApiError. */
async function requestText(url: string): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new ApiError(response.status, data.code ?? 'error', data.message ?? response.statusText);
  }
  return response.text();
}

function post<T>(endpoint: string, body: unknown): Promise<T> {
  return requestAPI<T>(endpoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/** The REST endpoints, one function each. */
export const api = {
  config: () => requestAPI<IServerConfig>('config'),
  experiments: (notebook?: string) =>
    requestAPI<{ experiments: IExperiment[]; notebook_experiment: string | null }>(
      'experiments',
      {},
      { notebook }
    ),
  runs: (query: IRunsQuery) => requestAPI<IRunsPage>('runs', {}, { ...query }),
  run: (runId: string, notebook?: string) =>
    requestAPI<IRunDetails>(`runs/${runId}`, {}, { notebook }),
  /** Where the server streams one of a run's artifacts (text as text, else a download). */
  artifactUrl: (runId: string, path: string, notebook?: string) => {
    const params = new URLSearchParams({ path, ...(notebook ? { notebook } : {}) });
    const base = ServerConnection.makeSettings().baseUrl;
    return `${URLExt.join(base, 'mlops', 'api', 'runs', runId, 'artifact')}?${params}`;
  },
  /** A text artifact's content. */
  artifactText: (runId: string, path: string, notebook?: string) =>
    requestText(api.artifactUrl(runId, path, notebook)),
  /**
   * A local run's executed step notebook as a page to read: the server renders it, since it
   * lies under the hidden `.mlops/`, which Jupyter's contents API refuses by default.
   */
  stepNotebookHtml: (id: string, step: string) => {
    const base = ServerConnection.makeSettings().baseUrl;
    const url = URLExt.join(base, 'mlops', 'api', 'local-runs', id, 'notebook');
    return requestText(`${url}?${new URLSearchParams({ step })}`);
  },
  graph: (path: string) => requestAPI<IGraph>('graph', {}, { path }),
  /** The graph of the notebook as edited (its JSON, unsaved); a cell's fault names the cell. */
  editedGraph: (path: string, notebook: unknown) => post<IGraph>('graph', { path, notebook }),
  compile: (path: string, image?: string) => post<ICompiled>('compile', { path, image }),
  startLocalRun: (path: string, parameters: Record<string, unknown> = {}) =>
    post<IJob>('local-runs', { path, parameters }),
  localRun: (id: string, offset: number) => requestAPI<IJob>(`local-runs/${id}`, {}, { offset }),
  cancelLocalRun: (id: string) => requestAPI<IJob>(`local-runs/${id}`, { method: 'DELETE' }),
  submit: (path: string, options: ISubmitOptions = {}) =>
    post<ISubmission>('submit', { path, parameters: {}, ...options }),
  models: (notebook?: string, pageToken?: string) =>
    requestAPI<IModelsPage>('models', {}, { notebook, page_token: pageToken }),
  model: (name: string, notebook?: string, condition?: string, pageToken?: string) =>
    requestAPI<IModelVersions>(
      `models/${encodeURIComponent(name)}`,
      {},
      {
        notebook,
        condition: condition || undefined,
        page_token: pageToken
      }
    ),
  versionLineage: (name: string, version: number, notebook?: string) =>
    requestAPI<IVersionLineage>(
      `models/${encodeURIComponent(name)}/versions/${version}`,
      {},
      {
        notebook
      }
    ),
  promotionPreview: (name: string, version: number, notebook?: string, condition?: string) =>
    requestAPI<IPromotionPreview>(
      `models/${encodeURIComponent(name)}/promotion`,
      {},
      {
        version,
        notebook,
        condition: condition || undefined
      }
    ),
  promote: (name: string, version: number, notebook?: string, condition?: string) =>
    post<IPromotion>(`models/${encodeURIComponent(name)}/promotion`, {
      version,
      notebook,
      condition: condition || undefined
    })
};
