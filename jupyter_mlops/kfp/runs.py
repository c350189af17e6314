"""The KFP runs of a notebook's pipeline, read through kfp.Client: state, start, end, UI link.

A run belongs to the notebook when its pipeline spec carries the notebook's pipeline name, the
name `compile`, `submit`, the panel's Submit and KFP sweeps give it (the notebook's DNS-safe
name unless `--name` says otherwise), whatever experiment it went to. Failures are
KfpSubmitErrors with the same sentences as a submission's (kfp/submit.py).
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from typing import Any

from jupyter_mlops.kfp.connection import Connection
from jupyter_mlops.kfp.submit import api_errors, kfp_client, probe, run_url

SCANNED = 100  # the newest runs read per request; the notebook's are picked from them
UNSET = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)  # KFP's "not finished"


@dataclass(frozen=True)
class KfpRun:
    """One KFP run as the panel shows it."""

    id: str
    name: str
    state: str  # KFP's: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, ...
    created_at: str | None  # ISO 8601, UTC
    finished_at: str | None  # None while it runs
    url: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pipeline_runs(connection: Connection, pipeline: str, limit: int = 20) -> list[KfpRun]:
    """The newest runs of pipeline `pipeline` (at most `limit`), newest first."""
    probe(connection)
    with api_errors(connection):
        reply = kfp_client(connection).list_runs(page_size=SCANNED, sort_by="created_at desc",
                                                 namespace=connection.namespace)
    found = [run for run in reply.runs or [] if _pipeline_name(run) == pipeline]
    return [_run(connection, run) for run in found[:limit]]


def _pipeline_name(run: Any) -> str | None:
    spec = run.pipeline_spec if isinstance(run.pipeline_spec, dict) else {}
    spec = spec.get("pipelineSpec", spec)  # a PipelineJob wraps the spec
    info = spec.get("pipelineInfo")
    return info.get("name") if isinstance(info, dict) else None


def _run(connection: Connection, run: Any) -> KfpRun:
    return KfpRun(id=run.run_id, name=run.display_name or run.run_id,
                  state=str(run.state or "RUNTIME_STATE_UNSPECIFIED"),
                  created_at=_iso(run.created_at), finished_at=_iso(run.finished_at),
                  url=run_url(connection, run.run_id))


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None or moment <= UNSET:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
