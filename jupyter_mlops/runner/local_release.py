"""The release of a local run: its gates judged, its model registered and promoted.

Runs once the steps have settled, before the pipeline's MLflow run is closed. The decision is
models/release.py's (a compiled KFP pipeline makes the same one in its gate task); this module
gives it what a local run has: the pipeline's metrics, the registry, and the MLflow runs the
steps' models were logged on, which the background sender must have stored first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_mlops.errors import counted
from jupyter_mlops.runner.results import OK, PipelineResult

if TYPE_CHECKING:
    from jupyter_mlops.models.release import ModelSource, Registration, ReleaseOutcome
    from jupyter_mlops.notebook import StepGraph

STORE_TIMEOUT = 120.0  # how long the models may take to reach the store before registering


def release_run(graph: StepGraph, result: PipelineResult, tracker: Any,
                tracking_uri: str | None, say: Any) -> ReleaseOutcome | None:
    """Judge the gates and register/promote; each verdict and what was done goes to `say`.
    A failed quality gate marks `result` failed (exit code 3). None: nothing to release."""
    from jupyter_mlops.models.release import ReleasePlan, release

    plan = ReleasePlan.of(graph)
    if plan is None:
        return None
    released = {t.step for t in graph.gates} | {r.step for r in plan.registrations}
    skipped = [result.steps[n] for n in sorted(released)
               if n in result.steps and result.steps[n].conditional]
    if skipped:  # a when: condition left the model or its metrics out: nothing to judge
        say(f"release: nothing judged or registered, step {skipped[0].name!r} was skipped "
            f"({skipped[0].reason})")
        return None
    say(_announce(plan, tracker))  # opening the registry (importing mlflow) takes seconds
    client = _client(plan, tracker, tracking_uri)
    outcome = release(plan, result.metrics, client, lambda entry: _source(entry, result, tracker),
                      say)
    result.release = outcome
    if outcome.failed:
        result.gate_error = outcome.error(graph.path)
    return outcome


def _announce(plan: Any, tracker: Any) -> str:
    """The line said before the release starts, so the wait for the registry is not silent."""
    gates = f"judging {counted(len(plan.gates), 'gate')}: {', '.join(plan.gates)}"
    parts = [gates] if plan.gates else []
    models = " and ".join(dict.fromkeys(r.model for r in plan.registrations))
    parts += [f"registering {models}"] if models else []
    opening = tracker is not None or any(g.relative for g in plan.parsed)
    where = " (opening MLflow's registry)" if opening else ""
    return f"release: {', then '.join(parts)}{where}..."


def _client(plan: Any, tracker: Any, uri: str | None) -> Any:
    """The registry: the tracked run's store, or the configured one to read the champion."""
    if tracker is None and not any(g.relative for g in plan.parsed):
        return None
    from jupyter_mlops.tracking.destination import open_client, tracking_uri

    if tracker is not None:
        return open_client(tracker.uri)
    try:  # untracked: read the champion where it is, create no store for it
        return open_client(uri or tracking_uri(), create=False)
    except Exception:  # noqa: BLE001 - no store: the gates say there is no champion
        return None


def _source(entry: Registration, result: PipelineResult, tracker: Any) -> ModelSource:
    """The model `entry`'s step logged in this run, once the sender stored it."""
    from jupyter_mlops.models.release import ModelSource

    if result.steps[entry.step].status != OK:  # a cached step logs no second model
        return ModelSource(None, f"step {entry.step!r} came from the cache; its model was "
                                 "registered by the run that made it")
    if tracker is None:
        return ModelSource(None, "tracking is off")
    if not tracker.tracker.flush(STORE_TIMEOUT):
        return ModelSource(None, f"MLflow at {tracker.uri} did not take the runs yet")
    child = tracker.children.get(entry.step)
    run_id = tracker.tracker.run_id(child) if child is not None else None
    if run_id is None:
        return ModelSource(None, f"step {entry.step!r} has no MLflow run")
    return ModelSource(f"runs:/{run_id}/{entry.variable}")
