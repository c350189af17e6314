"""Submit a compiled pipeline to a KFP API server through kfp.Client: a run or a recurring run.

Every failure the API can give (unreachable, 401/403, a rejected spec) becomes a
KfpSubmitError with a sentence a person can act on, never a stack trace.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import KfpSubmitError, counted
from jupyter_mlops.kfp.connection import Connection
from jupyter_mlops.notebook import StepGraph

HEALTHZ = "/apis/v2beta1/healthz"
PROBE_TIMEOUT = 10.0  # seconds; kfp.Client itself retries for ~25 s before it gives up
DEFAULT_EXPERIMENT = "Default"  # KFP's own default experiment


def experiment_name(graph: StepGraph | None, given: str | None = None) -> str:
    """The KFP experiment a notebook's runs go to: the one given, the notebook's, else KFP's."""
    return given or (graph.experiment if graph else None) or DEFAULT_EXPERIMENT


@dataclass(frozen=True)
class Submission:
    """What the server created: a run or a recurring run, with its id and UI link."""

    kind: str  # "run" or "recurring run"
    id: str
    experiment_id: str
    url: str


def submit_package(package: str | Path, connection: Connection, *, arguments: dict[str, Any],
                   experiment: str, run_name: str | None = None,
                   schedule: str | None = None) -> Submission:
    """Create a run of `package` (a compiled YAML), or a recurring run when `schedule` is a cron
    (checked before anything is sent)."""
    cron = kfp_cron(schedule) if schedule else None
    probe(connection)
    name = run_name or f"{Path(package).stem} {datetime.datetime.now():%Y-%m-%d %H:%M:%S}"
    with api_errors(connection):
        client = kfp_client(connection)
        experiment_id = client.create_experiment(
            experiment, namespace=connection.namespace).experiment_id
        if cron:
            job = client.create_recurring_run(
                experiment_id, name, cron_expression=cron, params=arguments,
                pipeline_package_path=str(package))
            return Submission("recurring run", job.recurring_run_id, experiment_id,
                              f"{connection.host}/#/recurringrun/details/{job.recurring_run_id}")
        run = client.run_pipeline(experiment_id, name, pipeline_package_path=str(package),
                                  params=arguments)
        return Submission("run", run.run_id, experiment_id, run_url(connection, run.run_id))


def run_url(connection: Connection, run_id: str) -> str:
    """A run's page in the KFP UI, served with the API."""
    return f"{connection.host}/#/runs/details/{run_id}"


# KFP schedules with robfig/cron: six fields, seconds first. A crontab line (five fields) is
# taken too and gets `0` seconds. Each field: `*`, `?` (day fields), N, N-M, any of them `/STEP`,
# and comma lists; months and weekdays also by name.
CRON_FIELDS = (("seconds", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31),
               ("month", 1, 12), ("day-of-week", 0, 6))
CRON_FORMAT = ("KFP's cron format is 6 fields, seconds minute hour day-of-month month "
               "day-of-week (e.g. '0 0 6 * * MON-FRI'); a 5-field crontab line gets seconds 0")
_CRON_NAMES = {
    "month": {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC"
                                            .split())},
    "day-of-week": {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())},
}
_CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                     "@hourly"}


def kfp_cron(schedule: str) -> str:
    """The schedule in KFP's 6-field cron, or a KfpSubmitError naming the field at fault."""
    text = schedule.strip()
    if text.lower() in _CRON_DESCRIPTORS:
        return text.lower()
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise KfpSubmitError(f"schedule {schedule!r} is not a cron expression: it has "
                             f"{counted(len(fields), 'field')}; {CRON_FORMAT}")
    for value, (name, low, high) in zip(fields, CRON_FIELDS, strict=True):
        problem = _cron_field_problem(value, name, low, high)
        if problem:
            raise KfpSubmitError(f"schedule {schedule!r}: the {name} field {value!r}: {problem}; "
                                 f"{CRON_FORMAT}")
    return " ".join(fields)


def _cron_field_problem(value: str, name: str, low: int, high: int) -> str | None:
    """Why one cron field is malformed, or None."""
    for item in value.split(","):
        span, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return f"step {step!r} is not a positive number"
        if span == "*" or (span == "?" and name.startswith("day-")):
            continue
        for part in span.split("-", 1):
            number = _CRON_NAMES.get(name, {}).get(part.upper(), int(part) if part.isdigit()
                                                   else None)
            if number is None:
                return f"{part!r} is not a number{' or name' if name in _CRON_NAMES else ''}"
            if not low <= number <= high:
                return f"{part!r} is out of range {low}-{high}"
    return None


def probe(connection: Connection) -> None:
    """Ask the server's healthz first: a quick, clear answer for the common failures."""
    request = urllib.request.Request(connection.host + HEALTHZ, headers=connection.headers())
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT):
            return
    except urllib.error.HTTPError as error:
        raise KfpSubmitError(_status_message(connection, error.code, _body(error))) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise KfpSubmitError(f"cannot reach the KFP API at {connection.host}: {reason}. "
                             "Check --host (or KFP_HOST) and that the server is up.") from None


def kfp_client(connection: Connection) -> Any:
    from kfp.client import Client

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "This client only works with ..."
        return Client(host=connection.host, existing_token=connection.token,
                      namespace=connection.namespace or "kubeflow", cookies=connection.cookies)


@contextlib.contextmanager
def api_errors(connection: Connection):
    """kfp's exceptions -> one-sentence KfpSubmitErrors; kfp's own prints are kept quiet."""
    from kfp_server_api import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Experiment details: ..." lines
            yield
    except ApiException as error:
        raise KfpSubmitError(_status_message(connection, error.status, error.body)) from None
    except Urllib3Error as error:
        raise KfpSubmitError(f"lost the KFP API at {connection.host}: {error}") from None
    except (ValueError, TypeError) as error:  # kfp checks the package before sending it
        raise KfpSubmitError(f"kfp refused the pipeline package: {error}") from None


def _status_message(connection: Connection, status: int | None, body: Any) -> str:
    detail = _detail(body)
    if status == 401:
        return (f"the KFP API at {connection.host} wants credentials (401 Unauthorized): "
                f"pass --token or set KFP_TOKEN{detail}")
    if status == 403:
        return (f"the KFP API at {connection.host} refused these credentials (403 Forbidden)"
                f"{' for namespace ' + repr(connection.namespace) if connection.namespace else ''}"
                f"{detail}")
    if status == 404:
        return f"{connection.host} does not serve the KFP v2 API (404 for {HEALTHZ}){detail}"
    if status is not None and 400 <= status < 500:
        return f"the KFP API rejected the pipeline ({status}){detail}"
    return f"the KFP API at {connection.host} failed ({status}){detail}"


def _detail(body: Any) -> str:
    """The server's own message, from its JSON error body when it sends one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return f": {str(body).strip()[:300]}"
    if isinstance(data, dict):
        message = data.get("message") or data.get("error") or data
        return f": {str(message).strip()[:300]}"
    return f": {str(data)[:300]}"


def _body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except OSError:
        return b""
