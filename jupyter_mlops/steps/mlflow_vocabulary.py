"""The MLflow names jupyter-mlops writes, and the few ways it reads them back.

One home for each name, as `mlflow.utils.mlflow_tags` is MLflow's: the tracking client, the
local runner, the KFP steps and sweeps write these tags and artifacts; the server, the widgets
and the JupyterLab panel read them. The package ships whole into KFP step containers, so this
module imports only the standard library; mlflow is imported inside the functions using it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- tags on every run we write ------------------------------------------------------------
KIND_TAG = "mlops.kind"  # what made the run: one of the KIND_* values below
NOTEBOOK_TAG = "mlops.notebook"  # the notebook whose code the run executed (real path)
LAUNCHED_FROM_TAG = "mlops.launched_from"  # the notebook that started it, when another (sweeps)
ERROR_TAG = "mlops.error"  # why the run failed, in a line or a traceback
RUN_KEY_TAG = "mlops.run_key"  # the tracking client's own key: a resent run is found again
PID_TAG, HOST_TAG, START_TAG = "mlops.pid", "mlops.host", "mlops.pid_start"  # who wrote it
RECOVERED_TAG = "mlops.recovered"  # FAILED by recovery: its process died while it ran
GIT_DIRTY_TAG = "mlops.git.dirty"  # "true" when the working tree had changes
TRACK_LINE_TAG = "mlops.track_line"  # a tracked cell's `%%mlops track ...` line, flags and all

# --- pipeline runs (local runner and KFP) --------------------------------------------------
PIPELINE_TAG = "mlops.pipeline"  # the pipeline's name
PIPELINE_RUN_TAG = "mlops.run_id"  # the pipeline run's id (the run folder's, or KFP's)
BACKEND_TAG = "mlops.backend"  # "kfp" on runs a KFP step wrote
STEP_TAG = "mlops.step"
STATUS_TAG = "mlops.status"  # the runner's verdict: ok, cached, failed, skipped
CACHE_HIT_TAG, CACHE_KEY_TAG = "mlops.cache_hit", "mlops.cache_key"
REASON_TAG = "mlops.reason"  # why a step did not run
MODEL_ERROR_TAG = "mlops.model_error"  # the step ran, its model could not be logged
RUN_DIR_TAG = "mlops.run_dir"  # the local run folder
DURATION_METRIC, CACHE_HIT_METRIC = "duration_s", "cache_hit"  # a step run's bookkeeping
STEP_METRICS = (DURATION_METRIC, CACHE_HIT_METRIC)  # shown after the step's own metrics

# --- registered model versions (besides NOTEBOOK_TAG and GIT_COMMIT_TAG, copied from the run) -
PREVIOUS_HOLDER_PREFIX = "mlops.previous."  # + alias: the version that held it before this one
PREVIOUS_NOBODY = "none"  # that tag's value when nobody held the alias
GATE_TAG_PREFIX = "mlops.gate."  # + a gate in words: its verdict when a pipeline registered it
# MLflow's tag keys allow no `<>=+`: the gate's signs are spelled as words in the key.
_GATE_WORDS = ((">=", " ge "), ("<=", " le "), ("==", " eq "), (">", " gt "), ("<", " lt "),
               ("+", " plus "))


def previous_holder_tag(alias: str) -> str:
    """The version tag naming who held `alias` before this version took it (`none`: nobody)."""
    return PREVIOUS_HOLDER_PREFIX + alias


def gate_tag(gate: str) -> str:
    """The version tag holding the verdict of `gate`, the verdict's message its value:
    `f1>=champion+0.01` -> `mlops.gate.f1 ge champion plus 0.01`."""
    key = "".join(gate.split())
    for sign, word in _GATE_WORDS:
        key = key.replace(sign, word)
    return GATE_TAG_PREFIX + key


# --- monitor runs: the model version whose reference the data was compared with ------------
MONITOR_MODEL_TAG = "mlops.monitor.model"  # registered model name (absent: a run or a frame)
MONITOR_VERSION_TAG = "mlops.monitor.version"  # its version number
MONITOR_REFERENCE_TAG = "mlops.monitor.reference"  # as the user named it: MODEL@ALIAS, a run id
MONITOR_REFERENCE_RUN_TAG = "mlops.monitor.reference_run"  # the run holding the profile
MONITOR_DRIFTED_TAG = "mlops.monitor.drifted"  # "true" when a PSI passed the threshold
MONITOR_BAND_TAG = "mlops.monitor.band"  # the largest PSI's band: stable, moderate, significant
MAX_PSI_METRIC = "drift.max_psi"  # a monitor run's largest PSI, of the features and predictions


# --- sweeps --------------------------------------------------------------------------------
SWEEP_TAG = "mlops.sweep"  # the sweep's id, shared by its runs
SWEEP_MODE_TAG = "mlops.mode"  # "notebook" or "pipeline"
SWEEP_INDEX_TAG = "sweep.index"  # the run's place in the grid

# --- values of KIND_TAG --------------------------------------------------------------------
KIND_SESSION, KIND_CELL, KIND_SCRIPT = "session", "cell", "script"
KIND_PIPELINE, KIND_STEP, KIND_SWEEP = "pipeline", "pipeline-step", "sweep"
KIND_MONITOR = "monitor"  # a drift report's run (monitoring/monitor.py)
BACKEND_KFP = "kfp"

# --- MLflow's own tags that we set (spelled as in mlflow.utils.mlflow_tags) -----------------
PARENT_RUN_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"  # the run's description in MLflow's UI: the cell's code
USER_TAG = "mlflow.user"
SOURCE_NAME_TAG, SOURCE_TYPE_TAG = "mlflow.source.name", "mlflow.source.type"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_BRANCH_TAG = "mlflow.source.git.branch"
GIT_REPO_TAG = "mlflow.source.git.repoURL"
DATASET_CONTEXT_TAG = "mlflow.data.context"  # on a dataset input: how the run used it
MODEL_HISTORY_TAG = "mlflow.log-model.history"  # MLflow 2's record of the run's models

# Bookkeeping a reader of a run has no use for: the panel hides these unless asked. The parent
# shows by name and the cell's code as code instead.
INTERNAL_TAGS = frozenset({RUN_KEY_TAG, PID_TAG, HOST_TAG, START_TAG, PARENT_RUN_TAG, NOTE_TAG,
                           MODEL_HISTORY_TAG, TRACK_LINE_TAG})

# --- dataset inputs of runs (steps/datasets.py) ---------------------------------------------
CONTEXT_TRAINING = "training"  # a tracked cell's `--inputs`
CONTEXT_INPUT, CONTEXT_OUTPUT = "input", "output"  # a pipeline step's values, read and written
DATASET_SHA256_TAG = "mlops.sha256"  # a step value's full file digest (the dataset's is cut)

# --- artifacts -----------------------------------------------------------------------------
CELL_SOURCE_ARTIFACT = "cell.py"  # a tracked cell's code
STDOUT_ARTIFACT = "stdout.txt"
ERROR_ARTIFACT = "error.txt"  # the full traceback
MODEL_ARTIFACT = "model"  # the default name of a logged model
FIGURES_DIR = "figures"
REFERENCE_PROFILE_ARTIFACT = "reference_profile.json"  # beside a logged model: its training data
DRIFT_REPORT_ARTIFACT = "drift_report.html"  # a monitor run's report


def figure_artifact(index: int) -> str:
    return f"{FIGURES_DIR}/figure_{index}.png"


def overflow_artifact(kind: str, key: str) -> str:
    """Where the full text of a param or tag value too long for MLflow goes."""
    return f"{kind}s/{key}.txt"


def step_notebook_artifact(step: str) -> str:
    """A pipeline step's executed notebook, on the step's run (both backends)."""
    return f"{step}.ipynb"


def note_text(source: str) -> str:
    """The cell's code as MLflow's UI shows a run's description (Markdown)."""
    return f"```python\n{source}\n```"


# --- experiments ---------------------------------------------------------------------------
def find_experiment(client: Any, name: str) -> Any | None:
    """An experiment by name, or by id when no experiment has that name."""
    found = client.get_experiment_by_name(name)
    if found is None and name.isdigit():
        from mlflow.exceptions import MlflowException

        try:
            found = client.get_experiment(name)
        except MlflowException:
            return None
    return found


def get_or_create_experiment(client: Any, name: str, artifact_root: str | None = None) -> str:
    """The experiment's id, creating it (its artifacts under `artifact_root`, when given).

    Another process may create it between our look and our create: then its id is taken.
    One deleted (in MLflow's UI) is refused by name, as mlflow.set_experiment refuses it: its
    runs would each be refused as "must be in the 'active' state".
    """
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage == "deleted":
        raise MlflowException.invalid_parameter_value(
            f"experiment {name!r} (id {found.experiment_id}) is deleted: restore it (MLflow's "
            f"UI, or `mlflow experiments restore --experiment-id {found.experiment_id}`) or log "
            "to another experiment")
    if found is not None:
        return str(found.experiment_id)
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    try:
        return str(client.create_experiment(
            name, artifact_location=f"{artifact_root}/{slug}" if artifact_root else None))
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


# --- reading runs back for display ---------------------------------------------------------
@dataclass
class RunRow:
    """One MLflow run, flattened for display (the run browser, the card, the panel)."""

    run_id: str
    name: str
    status: str
    start_ms: int
    end_ms: int | None = None
    experiment_id: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.tags.get(KIND_TAG, "")

    @property
    def duration_s(self) -> float | None:
        return round((self.end_ms - self.start_ms) / 1000, 2) if self.end_ms else None

    def value(self, column: str) -> Any:
        """A column's value: a base column, `metrics.NAME`, `params.NAME` or `tags.NAME`."""
        kind, _, key = column.partition(".")
        if key and kind in ("metrics", "params", "tags"):
            return getattr(self, kind).get(key)
        if column == "start":
            return self.start_ms
        return getattr(self, column, None)


def pipeline_of_step(tags: dict[str, str]) -> str | None:
    """The pipeline run of a step's run (by its tags): the parameters and the metrics a model
    logged in one step has, though another step reported them. None for other runs."""
    return tags.get(PARENT_RUN_TAG) if tags.get(KIND_TAG) == KIND_STEP else None


def run_row(run: Any) -> RunRow:
    """An `mlflow.entities.Run` as a RunRow (unnamed runs go by their id's first 8 digits)."""
    info, data = run.info, run.data
    return RunRow(run_id=info.run_id, name=info.run_name or info.run_id[:8],
                  status=info.status, start_ms=info.start_time or 0,
                  end_ms=info.end_time or None, experiment_id=info.experiment_id,
                  params=dict(data.params), metrics=dict(data.metrics), tags=dict(data.tags))
