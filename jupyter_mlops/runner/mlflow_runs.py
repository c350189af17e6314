"""A pipeline run in MLflow: a parent run, one child run per step, written as the steps go.

Logging goes through the tracking client (`jupyter_mlops.tracking.client.Tracker`): its
background writer imports mlflow and talks to the store off the scheduler's thread, and spools
to disk when the store is unreachable. Only the runner's process logs, never the step kernels.
One client per store serves every run of the process (starting one costs seconds); the tracking
client flushes and closes it at exit, `close_trackers()` sooner. `jupyter-mlops run` waits for
none of that: `finish(wait=False)` hands the records to the sender process, as a kernel's
session does, and the command ends while they are sent.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jupyter_mlops.runner.results import CACHED, FAILED, OK, PipelineResult, StepResult
from jupyter_mlops.steps import datasets
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking.notebook_info import notebook_tags

# MLflow has no "skipped": a step that never ran ends KILLED, its tag says why.
_STATUS = {OK: "FINISHED", CACHED: "FINISHED", FAILED: "FAILED"}
FLUSH_TIMEOUT = 60.0
log = logging.getLogger("jupyter_mlops.runner")
_TRACKERS: dict[str, Any] = {}  # tracking URI -> Tracker, shared by the runs of this process


def shared_tracker(uri: str | None) -> Any:
    from jupyter_mlops.tracking.client import Tracker
    from jupyter_mlops.tracking.destination import tracking_uri

    uri = uri or tracking_uri()
    if uri not in _TRACKERS:
        _TRACKERS[uri] = Tracker(uri)
    return _TRACKERS[uri]


def close_trackers() -> None:
    """Send what is left and stop every shared client."""
    while _TRACKERS:
        _TRACKERS.popitem()[1].close()


def detach_tracker(tracker: Any) -> None:
    """Hand `tracker`'s records to its sender process without waiting, and stop sharing it."""
    uri = tracker.uri
    if _TRACKERS.get(uri) is tracker:
        del _TRACKERS[uri]
    tracker.detach()


class PipelineTracker:
    """Listens to the scheduler (`started`, `finished`) and logs each step as a child run."""

    def __init__(self, experiment: str, run_name: str, tags: dict[str, str],
                 notebook: str, tracking_uri: str | None = None) -> None:
        self.tracker = shared_tracker(tracking_uri)
        self.uri = self.tracker.uri
        self.experiment = experiment
        self.parent = self.tracker.start_run(run_name, experiment, tags=tags, notebook=notebook)
        self.step_tags = notebook_tags(notebook)  # each step's run is the notebook's too
        self.children: dict[str, Any] = {}

    def started(self, step: str) -> None:
        self._child(step)

    def finished(self, result: StepResult) -> None:
        child = self._child(result.name)
        tags = {vocab.STATUS_TAG: result.status,
                vocab.CACHE_HIT_TAG: str(result.cache_hit).lower()}
        if result.cache_key:
            tags[vocab.CACHE_KEY_TAG] = result.cache_key
        if result.error is not None:
            tags[vocab.ERROR_TAG] = result.error.details
        elif result.reason:
            tags[vocab.REASON_TAG] = result.reason
        self.tracker.set_tags(child, tags)
        self.tracker.log_params(child, result.parameters)
        self.tracker.log_metrics(child, dict(result.metrics) | {
            vocab.DURATION_METRIC: result.duration,
            vocab.CACHE_HIT_METRIC: float(result.cache_hit)})
        if result.notebook is not None and Path(result.notebook).is_file():
            executed = Path(result.notebook).read_bytes()
            self.tracker.log_bytes(child, vocab.step_notebook_artifact(result.name), executed)
            if result.status == OK:  # a cached step's model was logged by the run that made it
                self._log_model(child, result, executed)
            self._log_datasets(child, result)
        self.tracker.end_run(child, _STATUS.get(result.status, "KILLED"))

    def _log_model(self, child: Any, result: StepResult, executed: bytes) -> None:
        """The step's `model:VAR`, as saved in its values folder, as an MLflow model of its run.

        The file goes to the sender as it is: loading it here would import the model's library
        into the runner (seconds under load) while steps wait to be scheduled.
        """
        import json

        from jupyter_mlops.runner.rundir import RunFolder
        from jupyter_mlops.steps import serializers
        from jupyter_mlops.steps.model_logging import step_model

        found = step_model(json.loads(executed))
        if found is None:
            return
        variable = found[0]  # registered by the run's release, once its gates passed
        assert result.notebook is not None
        values = RunFolder(Path(result.notebook).parent, "").data(result.name)
        try:
            manifest = serializers.read_manifest(values, variable)
            self.tracker.log_model_file(child, values / manifest["file"], manifest["serializer"],
                                        name=variable)
            profile = values / vocab.REFERENCE_PROFILE_ARTIFACT  # the step wrote it beside
            if profile.is_file():
                self.tracker.log_bytes(child, vocab.REFERENCE_PROFILE_ARTIFACT,
                                       profile.read_bytes())
        except Exception as error:  # noqa: BLE001 - the step ran; say what is missing
            self.tracker.set_tags(child, {vocab.MODEL_ERROR_TAG: str(error)})
            log.warning("step %r: model %r not logged: %s", result.name, variable, error)

    def _log_datasets(self, child: Any, result: StepResult) -> None:
        """The values the step read, and those it wrote, as dataset inputs of its run (MLflow
        has no dataset outputs: theirs have the `output` context), with the digests of their
        manifests, the runner's cache keys' own."""
        from jupyter_mlops.runner.rundir import RunFolder

        assert result.notebook is not None
        folder = RunFolder(Path(result.notebook).parent, "")
        described = datasets.step_values(
            {value: folder.data(producer) for value, producer in result.inputs.items()},
            vocab.CONTEXT_INPUT)
        if result.status in (OK, CACHED):
            written = datasets.folder_values(folder.data(result.name))
            described += datasets.step_values(written, vocab.CONTEXT_OUTPUT)
        self.tracker.log_datasets(child, described)

    def finish(self, result: PipelineResult, summary: Path | None = None,
               wait: bool = True) -> str | None:
        """Settle the parent and return its MLflow run id (None if not created yet).

        `wait`: until the store has the records. Else they go to the sender process, which
        sends them after this process has ended; the tracker is not shared any more.
        """
        self.tracker.log_params(self.parent, result.parameters)
        self.tracker.log_metrics(self.parent, result.metrics)
        self.tracker.set_tags(self.parent, {vocab.STATUS_TAG: result.status,
                                            vocab.RUN_DIR_TAG: str(result.run_dir)})
        if result.gate_error is not None:  # the steps ran; a gate or the registry failed it
            self.tracker.set_tags(self.parent, {vocab.ERROR_TAG: str(result.gate_error)})
        if summary is not None and summary.is_file():
            self.tracker.log_bytes(self.parent, summary.name, summary.read_bytes())
        status = "KILLED" if result.interrupted else "FINISHED" if result.ok else "FAILED"
        self.tracker.end_run(self.parent, status)
        if not wait:
            run_id = self.tracker.run_id(self.parent)
            detach_tracker(self.tracker)
            return run_id
        if not self.tracker.flush(FLUSH_TIMEOUT):
            log.warning("MLflow at %s did not take the run yet; it is spooled and will be sent "
                        "later", self.uri)
        return self.tracker.run_id(self.parent)

    def _child(self, step: str) -> Any:
        if step not in self.children:
            self.children[step] = self.tracker.start_run(
                step, self.experiment, parent=self.parent,
                tags={vocab.KIND_TAG: vocab.KIND_STEP, vocab.STEP_TAG: step, **self.step_tags})
        return self.children[step]
