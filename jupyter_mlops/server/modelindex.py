"""The registry behind the panel's Models view: pages of registered models, one model's
versions kept until the model changes, one version's lineage, and the shapes the panel reads
(api.ts `IModel`, `IModelVersions`, `IVersionLineage`, `IPromotionPreview`).

Why a cache: a version's metrics and lineage come from its run (models/registry.py reads the
runs of a model's versions in batches), so describing them costs several store queries, while
its registered-model row is one cheap query. An entry is kept while that row's update time and the
model's version count are unchanged, at most `max_age` seconds (a tag set on a version does not
touch the row), and is dropped when a promotion goes through this server. Aliases are always
read afresh, and so are the monitor runs logged against the versions (monitoring/monitor.py):
a drift report is logged without touching the model. What a version is, what its gates say
and how a promotion moves an alias is models/'s, what a monitor run says monitoring/'s: this
module only calls them and shapes the answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from jupyter_mlops.models import gates, registry
from jupyter_mlops.monitoring.monitor import monitor_runs
from jupyter_mlops.server.errors import ApiError
from jupyter_mlops.steps.mlflow_vocabulary import STEP_METRICS

MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
SHOWN_METRICS = 3  # metric columns of the versions table besides the gated ones (sidebar width)


@dataclass
class _Entry:
    stamp: tuple[int, int]  # the model's last update time and latest version number
    loaded: float  # time.monotonic() of the load
    versions: list[registry.Version]


class ModelIndex:
    """Registered models of one store, and each model's versions described once."""

    def __init__(self, client: Any, max_age: float) -> None:
        self.client = client
        self.max_age = max_age
        self._entries: dict[str, _Entry] = {}
        self._forgotten: dict[str, int] = {}  # per model: how often it was forgotten
        self._lock = threading.Lock()

    def models(self, max_results: int, page_token: str | None,
               text: str = "") -> dict[str, Any]:
        """A page of registered models by name (MLflow's own paging)."""
        query = f"name ILIKE '%{_escaped(text)}%'" if text else None
        found = self.client.search_registered_models(
            filter_string=query, max_results=max_results, order_by=["name ASC"],
            page_token=page_token or None)
        return {"models": [model_dict(m) for m in found],
                "next_page_token": found.token or None}

    def versions(self, name: str) -> tuple[Any, list[registry.Version]]:
        """The registered model (aliases as they are now) and its versions, newest first."""
        model = self.registered(name)
        stamp = (int(model.last_updated_timestamp or 0), _latest(model))
        with self._lock:
            entry, generation = self._entries.get(name), self._forgotten.get(name, 0)
        if entry is None or entry.stamp != stamp or \
                time.monotonic() - entry.loaded > self.max_age:
            entry = _Entry(stamp, time.monotonic(), registry.versions(name, store=self.client))
            with self._lock:  # not kept when a promotion went through meanwhile
                if self._forgotten.get(name, 0) == generation:
                    self._entries[name] = entry
        return model, entry.versions

    def page(self, name: str, condition: str, offset: int, size: int) -> dict[str, Any]:
        """A page of `name`'s versions (api.ts `IModelVersions`), each with its verdicts on
        `condition` (`promote --if`'s grammar) against the version holding @champion, and the
        metrics its table shows (`key_metrics`: every gated one, no runner bookkeeping)."""
        conditions = gates.parse_condition(condition, "condition") if condition else []
        model, versions = self.versions(name)
        champion = _holder(model, versions, gates.CHAMPION)
        against = _against(name, gates.CHAMPION, champion)
        monitors = self.monitors(name)
        rows = [version_dict(v, model) | {"gates": results_list(
            gates.check(conditions, v.metrics, against)) if conditions else [],
            "monitors": monitors.get(v.version, [])}
            for v in versions[offset:offset + size]]
        following = offset + size if offset + size < len(versions) else None
        shown = registry.shown_metrics(versions, [g.metric for g in conditions], SHOWN_METRICS)
        return {"model": model_dict(model), "versions": rows, "total": len(versions),
                "key_metrics": shown,
                "champion": version_dict(champion, model) if champion else None,
                "next_page_token": str(following) if following is not None else None}

    def preview(self, name: str, version: int, condition: str, alias: str) -> dict[str, Any]:
        """What promoting `version` to `alias` would do (api.ts `IPromotionPreview`): both
        versions' metrics side by side and the verdicts on `condition`; nothing moves."""
        conditions = gates.parse_condition(condition, "condition") if condition else []
        model, versions = self.versions(name)
        candidate = next((v for v in versions if v.version == version), None)
        if candidate is None:
            raise ApiError(404, "version-not-found", f"model {name!r} has no version {version}")
        holder = _holder(model, versions, alias)
        verdicts = gates.check(conditions, candidate.metrics, _against(name, alias, holder))
        return {"model": name, "alias": alias, "candidate": version_dict(candidate, model),
                "champion": version_dict(holder, model) if holder else None,
                "metrics": comparison(candidate, holder), "results": results_list(verdicts)}

    def monitors(self, name: str) -> dict[int, list[dict[str, Any]]]:
        """The model's newest monitor runs by version, newest first (api.ts `IMonitorRun`)."""
        found: dict[int, list[dict[str, Any]]] = {}
        for run in monitor_runs(self.client, name):
            if run.version is not None:
                found.setdefault(run.version, []).append(asdict(run))
        return found

    def registered(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as error:
            if error.error_code not in MISSING:
                raise
        raise ApiError(404, "model-not-found", f"no registered model {name!r}")

    def lineage(self, name: str, version: int) -> dict[str, Any]:
        """One version and where it came from (models/lineage.py): run, notebook, git commit,
        params and dataset inputs with their digests."""
        from jupyter_mlops.models.lineage import lineage

        model, versions = self.versions(name)
        found = next((v for v in versions if v.version == version), None)
        if found is None:
            raise ApiError(404, "version-not-found", f"model {name!r} has no version {version}")
        return {"version": version_dict(found, model),
                "lineage": lineage(self.client, name, version).to_dict()}

    def forget(self, name: str) -> None:
        """Drop a model's versions (after a promotion: the previous-holder tag changed)."""
        with self._lock:
            self._entries.pop(name, None)
            self._forgotten[name] = self._forgotten.get(name, 0) + 1


def model_dict(model: Any) -> dict[str, Any]:
    """A registered model as the Models view lists it."""
    return {"name": model.name, "description": model.description or "",
            "aliases": {a: int(v) for a, v in (model.aliases or {}).items()},
            "latest_version": _latest(model) or None,
            "last_updated": model.last_updated_timestamp}


def version_dict(version: registry.Version, model: Any) -> dict[str, Any]:
    """A version with its lineage as models/ describes it; aliases from `model` (fresh)."""
    data = asdict(version)
    data["aliases"] = sorted(a for a, v in (model.aliases or {}).items()
                             if int(v) == version.version)
    data["label"], data["uri"] = version.label, version.uri
    data["previous"] = {alias: version.previous(alias) for alias in _promoted(version.tags)}
    data["recorded_gates"] = [asdict(r) for r in version.gates]  # as its pipeline judged it
    return data


def results_list(results: Iterable[gates.GateResult]) -> list[dict[str, Any]]:
    return [{"gate": str(r.gate), "metric": r.metric, "value": r.value,
             "threshold": r.threshold, "passed": r.passed, "message": r.message}
            for r in results]


def comparison(candidate: registry.Version, champion: registry.Version | None
               ) -> list[dict[str, Any]]:
    """Each metric of either version, side by side: what the confirmation shows (not the
    runner's bookkeeping: a step's duration and cache hit say nothing of the model)."""
    theirs = champion.metrics if champion is not None else {}
    keys = sorted((set(candidate.metrics) | set(theirs)) - set(STEP_METRICS))
    return [{"metric": k, "candidate": candidate.metrics.get(k), "champion": theirs.get(k)}
            for k in keys]


def _holder(model: Any, versions: list[registry.Version], alias: str
            ) -> registry.Version | None:
    """The version holding `alias` now (None: nobody)."""
    number = (model.aliases or {}).get(alias)
    return next((v for v in versions if str(v.version) == str(number)), None)


def _against(name: str, alias: str, holder: registry.Version | None) -> gates.Champion:
    """The holder as models/gates.py compares with it (read from the cache, not the store)."""
    if holder is None:
        return gates.Champion(name, alias)
    return gates.Champion(name, alias, str(holder.version), holder.metrics)


def _promoted(tags: dict[str, str]) -> list[str]:
    from jupyter_mlops.steps.mlflow_vocabulary import PREVIOUS_HOLDER_PREFIX

    return sorted(k.removeprefix(PREVIOUS_HOLDER_PREFIX) for k in tags
                  if k.startswith(PREVIOUS_HOLDER_PREFIX))


def _latest(model: Any) -> int:
    """The highest version number among MLflow's latest versions (0: none)."""
    return max((int(v.version) for v in model.latest_versions or ()), default=0)


def _escaped(text: str) -> str:
    return text.replace("'", "\\'")
