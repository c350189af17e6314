"""MLflow reads behind the REST API: which store, experiments, one run in full.

The store a notebook's runs go to follows the tracking layer's rule: the configured URI, else
MLFLOW_TRACKING_URI, else `mlflow.db` in the notebook's folder (a kernel's working directory).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import StoreError
from jupyter_mlops.models.lineage import dataset_dict, run_datasets
from jupyter_mlops.server.errors import ApiError
from jupyter_mlops.server.modelindex import ModelIndex
from jupyter_mlops.server.runindex import RunIndex, Scope
from jupyter_mlops.steps.mlflow_vocabulary import (
    CELL_SOURCE_ARTIFACT,
    ERROR_TAG,
    INTERNAL_TAGS,
    KIND_CELL,
    KIND_PIPELINE,
    KIND_TAG,
    LAUNCHED_FROM_TAG,
    NOTEBOOK_TAG,
    PARENT_RUN_TAG,
    REASON_TAG,
    STEP_METRICS,
    TRACK_LINE_TAG,
    run_row,
)
from jupyter_mlops.tracking.delivery import model_state
from jupyter_mlops.tracking.destination import DEFAULT_DB, open_client, sqlite_path
from jupyter_mlops.tracking.notebook_info import tag_value

MAX_SOURCE_BYTES = 200_000
MAX_ARTIFACTS = 500


@dataclass
class Store:
    """One tracking URI with its client, its run index and its registry's model index."""

    uri: str
    client: Any
    index: RunIndex
    models: ModelIndex


class Stores:
    """Clients and run indexes, one per tracking URI, created on first use."""

    def __init__(self, configured_uri: str | None, full_refresh: float, min_refresh: float):
        self.configured_uri = configured_uri
        self.full_refresh = full_refresh
        self.min_refresh = min_refresh
        self._stores: dict[str, Store] = {}
        self._lock = threading.Lock()

    def uri_for(self, folder: str, root: str) -> str | None:
        """The URI runs of notebooks in `folder` go to; None: no store there yet."""
        if self.configured_uri:
            configured = sqlite_path(self.configured_uri)
            # A configured SQLite file no kernel has made yet: no runs, not an error.
            return None if configured is not None and not configured.exists() \
                else self.configured_uri
        db = Path(folder) / DEFAULT_DB
        # Never create a database as a side effect of reading.
        return self.local_uri(folder, root) if db.is_file() else None

    @staticmethod
    def local_uri(folder: str, root: str) -> str:
        """`mlflow.db` in `folder` (under `root`); a link to a store outside the root is
        refused, as notebooks through such links are."""
        db = os.path.join(folder, DEFAULT_DB)
        real, top = os.path.realpath(db), os.path.realpath(root)
        if os.path.commonpath([real, top]) != top:
            raise ApiError(403, "store-outside-root",
                           f"{DEFAULT_DB} in this folder links outside the server root; "
                           "it is not opened")
        return f"sqlite:///{db}"

    def get(self, uri: str) -> Store:
        with self._lock:
            store = self._stores.get(uri)
            if store is None:
                # A read opens only a ready store: it never creates, migrates or repairs
                # one, nor writes a lock file beside it (a kernel makes its own store).
                try:
                    client = open_client(uri, create=False)
                except StoreError as error:
                    raise _store_refused(uri, error) from None
                index = RunIndex(client, self.full_refresh, self.min_refresh)
                models = ModelIndex(client, self.full_refresh)
                store = self._stores[uri] = Store(uri, client, index, models)
        return store


def _store_refused(uri: str, error: StoreError) -> ApiError:
    """409 with the reason, the store named by its file name only (no server paths)."""
    db = sqlite_path(uri)
    message = str(error).replace(f"sqlite:///{db}", DEFAULT_DB).replace(str(db), DEFAULT_DB)
    return ApiError(409, "store-unreadable", message)


def experiments(client: Any) -> list[dict[str, Any]]:
    found = client.search_experiments(max_results=1000, order_by=["last_update_time DESC"])
    return [experiment_dict(e) for e in found]


def experiment_dict(experiment: Any) -> dict[str, Any]:
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "lifecycle_stage": experiment.lifecycle_stage,
        "creation_time": experiment.creation_time,
        "last_update_time": experiment.last_update_time,
    }


def run_summary(run: Any, whole: bool = False) -> dict[str, Any]:
    """A run as the panel lists it (api.ts `IRunSummary`): no long tag values (the cell's
    code is in the details) and no runner bookkeeping among its metrics (a step's duration
    and cache hit, STEP_METRICS: its status and times say them), so the metric columns are
    the user's. `whole`: every metric and tag, as the details show them."""
    row = run_row(run)
    return {
        "run_id": row.run_id,
        "run_name": row.name,
        "experiment_id": row.experiment_id,
        "status": row.status,
        "start_time": row.start_ms,
        "end_time": row.end_ms,
        "metrics": {k: v for k, v in row.metrics.items() if whole or k not in STEP_METRICS},
        "params": row.params,
        "tags": {k: v for k, v in row.tags.items() if whole or len(v) <= 500},
        "parent_id": row.tags.get(PARENT_RUN_TAG),  # a cell run's session: nested under it
    }


def run_details(client: Any, run_id: str) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ApiError(404, "run-not-found", "no such run") from None
    details = run_summary(run, whole=True)
    details["error"] = run_error(client, run)  # shown by its status
    details["kind"] = run.data.tags.get(KIND_TAG)
    details["metric_history"] = {
        key: [{"step": m.step, "timestamp": m.timestamp, "value": m.value}
              for m in client.get_metric_history(run_id, key)]
        for key in run.data.metrics
    }
    artifacts = list_artifacts(client, run_id)
    details["artifacts"] = artifacts
    details["source"] = cell_source(client, run_id, artifacts)
    details["datasets"] = [dataset_dict(d) for d in run_datasets(run)]
    details["internal_tags"] = sorted(k for k in run.data.tags if k in INTERNAL_TAGS)
    details["cell"] = as_cell(run, details["source"])
    details["parent"] = parent_of(client, run)
    details["models"] = logged_models(client, run)
    return details


def run_error(client: Any, run: Any) -> str | None:
    """Why the run failed or did not run, shown beside its status: its own error; for a step
    that never ran (KILLED), the runner's reason; for a failed pipeline, its failed steps'
    errors (the pipeline run holds none itself: the user looking at it would see only FAILED)."""
    tags = run.data.tags
    if tags.get(ERROR_TAG):
        return str(tags[ERROR_TAG])
    if run.info.status == "KILLED" and tags.get(REASON_TAG):
        return f"not run: {tags[REASON_TAG]}"
    if run.info.status != "FAILED" or tags.get(KIND_TAG) != KIND_PIPELINE:
        return None
    steps = client.search_runs(
        [run.info.experiment_id], max_results=50, order_by=["attributes.start_time ASC"],
        filter_string=f"tags.`{PARENT_RUN_TAG}` = '{run.info.run_id}' "
                      "and attributes.status = 'FAILED'")
    # The first line of each (a step's own details hold its traceback).
    errors = [step.data.tags.get(ERROR_TAG, f"step {step.info.run_name!r} failed")
              .split("\n", 1)[0] for step in steps]
    return "\n".join(errors) or None


def as_cell(run: Any, source: str | None) -> str | None:
    """The tracked cell as "Insert into notebook" puts it back: its `%%mlops track` line as
    written, flags and all (the artifact holds the body only), above its code; a run logged
    before the line was kept gets one naming the run."""
    if source is None or run.data.tags.get(KIND_TAG) != KIND_CELL:
        return source
    if source.lstrip().startswith("%%mlops"):
        return source
    line = run.data.tags.get(TRACK_LINE_TAG)
    if not line:
        import shlex

        name = shlex.quote(run.info.run_name) if run.info.run_name else ""
        line = f"%%mlops track {name}".rstrip()
    return f"{line}\n{source}"


def parent_of(client: Any, run: Any) -> dict[str, Any] | None:
    """The parent run (a cell run's session) by id and name; None for a top-level run."""
    from mlflow.exceptions import MlflowException

    parent_id = run.data.tags.get(PARENT_RUN_TAG)
    if not parent_id:
        return None
    try:
        name = client.get_run(parent_id).info.run_name
    except MlflowException:  # deleted since: the id alone
        name = None
    return {"run_id": parent_id, "run_name": name}


def logged_models(client: Any, run: Any) -> list[dict[str, Any]]:
    """The models the run logged (MLflow 3's logged models), with their registered versions."""
    from mlflow.exceptions import MlflowException

    run_id = run.info.run_id
    try:
        found = client.search_logged_models([run.info.experiment_id],
                                            filter_string=f"source_run_id = '{run_id}'")
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except MlflowException:  # a store without logged models (an older server)
        return []
    registered: dict[str, list[dict[str, str]]] = {}
    for version in versions:
        key = _version_model_id(version, found)
        registered.setdefault(key, []).append({"name": version.name,
                                               "version": str(version.version)})
    return [_logged_model(m, registered.get(m.model_id, [])) for m in found]


def _version_model_id(version: Any, logged: list[Any]) -> str:
    """The logged model a registered version was made from. mlflow 3.17's SQL store returns
    versions without their `model_id`; the source (`models:/m-...`) names it, and a version
    registered from an artifact path of a run that logged one model is that model's."""
    source = str(getattr(version, "source", "") or "")
    found = getattr(version, "model_id", None) or (
        source.removeprefix("models:/") if source.startswith("models:/m-") else None)
    if found is None and len(logged) == 1:
        found = logged[0].model_id
    return found or ""


def _logged_model(model: Any, versions: list[dict[str, str]]) -> dict[str, Any]:
    state = model_state([f"{v['name']} v{v['version']}" for v in versions])  # the card's words
    return {"name": model.name, "model_id": model.model_id, "model_type": model.model_type,
            "uri": model.model_uri, "registered": versions, "state": state}


def artifact_file(client: Any, run_id: str, path: str, folder: str) -> str:
    """One of the run's artifact files, downloaded into `folder`; 404 when it has none."""
    from mlflow.exceptions import MlflowException

    if not path or path.startswith("/") or ".." in path.split("/"):
        raise ApiError(400, "bad-artifact-path", "give the artifact's path within the run")
    try:
        local = client.download_artifacts(run_id, path, folder)
    except (MlflowException, OSError):
        raise ApiError(404, "artifact-not-found", f"the run has no artifact {path}") from None
    if not os.path.isfile(local):
        raise ApiError(404, "artifact-not-found", f"{path} is a folder, not a file")
    return str(local)


def list_artifacts(client: Any, run_id: str) -> list[dict[str, Any]]:
    """Every artifact file (breadth first, at most MAX_ARTIFACTS), with sizes."""
    found: list[dict[str, Any]] = []
    pending = [None]
    while pending and len(found) < MAX_ARTIFACTS:
        for item in client.list_artifacts(run_id, pending.pop(0)):
            if item.is_dir:
                pending.append(item.path)
            else:
                found.append({"path": item.path, "size": item.file_size})
    return found[:MAX_ARTIFACTS]


def cell_source(client: Any, run_id: str, artifacts: list[dict[str, Any]]) -> str | None:
    """The tracked cell's code, from its artifact (None for other runs, or too large)."""
    entry = next((a for a in artifacts if a["path"] == CELL_SOURCE_ARTIFACT), None)
    if entry is None or (entry["size"] or 0) > MAX_SOURCE_BYTES:
        return None
    return _download_text(client, run_id, CELL_SOURCE_ARTIFACT)


def _download_text(client: Any, run_id: str, path: str) -> str | None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
            with open(local, encoding="utf-8", errors="replace") as file:
                return file.read(MAX_SOURCE_BYTES)
        except Exception:  # any store's failure to fetch it: the details show no source
            return None


def notebook_scope(os_path: str, real_path: str) -> Scope:
    """A notebook's runs in every experiment: those whose notebook tag names it (by its real
    path, as runs record it; runs of older versions have the path under root_dir), and those
    it launched (sweeps)."""
    paths = dict.fromkeys([tag_value(real_path), os.path.abspath(os_path)])
    pairs = [(NOTEBOOK_TAG, path) for path in paths] + [(LAUNCHED_FROM_TAG, tag_value(real_path))]
    return Scope(None, tuple(pairs))
