"""A monitor: new data compared with a model's reference, logged to MLflow as a `monitor` run.

`measure` resolves the reference (monitoring/reference.py) and computes the `DriftReport`;
`log_run` writes it beside the model: in the experiment of the run that logged the model, with
tags naming the model and version, metrics `psi.<feature>`, `ks_p.<feature>`, `drift.max_psi`
..., and the report's HTML (rendered by the caller: views live above this layer). The notebook
(`jupyter_mlops.drift`, `%mlops drift`) and the `monitor` command share both; `monitor_runs`
reads them back per model version (the panel's Models view lists them).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from jupyter_mlops.monitoring.drift import SIGNIFICANT, Bands, DriftReport, compute_drift
from jupyter_mlops.monitoring.profile import (
    DATETIME,
    TIMEDELTA,
    DriftInputError,
    Profile,
    UnsupportedColumn,
    kind_of,
)
from jupyter_mlops.monitoring.reference import Reference, as_frame, resolve
from jupyter_mlops.steps import mlflow_vocabulary as vocab

MONITOR_EXPERIMENT = "monitoring"  # monitor runs of a reference that has no run (a frame)
MONITOR_RUNS = 200  # newest monitor runs of a model read back for its versions


@dataclass(frozen=True)
class MonitorRun:
    """A logged monitor run, as a model version lists it."""

    run_id: str
    experiment_id: str
    version: int | None
    start_ms: int
    max_psi: float | None
    band: str  # of max_psi: stable, moderate or significant
    drifted: bool
    reference: str  # as the user named it: MODEL@ALIAS, MODEL/N
    report: str  # the HTML report's artifact path


def bands_for(threshold: float | None) -> Bands:
    """The PSI bands with `threshold` as the significant one (0.25 by default)."""
    if threshold is None:
        return Bands()
    return Bands(moderate=min(Bands.moderate, threshold), significant=threshold)


def measure(current: Any, reference: Any, predictions: Any = None, *, bands: Bands | None = None,
            store: Any = None) -> tuple[DriftReport, Reference]:
    """The drift of `current` (a DataFrame or 2-D array; with the model's `predictions` on it)
    against `reference` (see reference.resolve), and the reference as resolved."""
    source = resolve(reference, store)
    frame = parsed_times(as_frame(current, "current"), source.data)
    report = compute_drift(frame, source.data, predictions, bands)
    return report, source


def parsed_times(frame: pd.DataFrame, reference: Profile | pd.DataFrame) -> pd.DataFrame:
    """`frame` with the reference's datetime and timedelta columns parsed where it holds them
    as text (read from a CSV); text that does not parse is said, naming the column."""
    parsers = {DATETIME: pd.to_datetime, TIMEDELTA: pd.to_timedelta}
    kinds = _kinds(reference)
    parsed = {}
    for label, series in frame.items():
        kind = kinds.get(str(label))
        textual = pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)
        if kind in parsers and textual:
            try:
                parsed[label] = parsers[kind](series)
            except (ValueError, TypeError) as error:
                raise DriftInputError(f"column {label!r}: {kind} in the reference, text here "
                                      f"that does not read as one ({error})") from None
    if not parsed:
        return frame
    frame = frame.copy(deep=False)
    for label, values in parsed.items():
        frame[label] = values
    return frame


def _kinds(reference: Profile | pd.DataFrame) -> dict[str, str]:
    if isinstance(reference, Profile):
        return {name: column.kind for name, column in reference.columns.items()}
    kinds = {}
    for label, series in reference.items():
        try:
            kinds[str(label)] = kind_of(series, str(label))
        except UnsupportedColumn:
            continue
    return kinds


def log_run(report: DriftReport, source: Reference, *, html: str | None = None,
            store: Any = None, experiment: str | None = None, run_name: str | None = None) -> str:
    """Log `report` as a monitor run; returns its run id. It goes to `experiment`, else to the
    experiment of the run holding the reference, else to MONITOR_EXPERIMENT."""
    from mlflow.entities import Metric

    from jupyter_mlops.models.registry import client_for

    client = client_for(store)
    experiment_id = (vocab.get_or_create_experiment(client, experiment) if experiment
                     else source.experiment_id
                     or vocab.get_or_create_experiment(client, MONITOR_EXPERIMENT))
    run = client.create_run(experiment_id, run_name=run_name or f"monitor {source.label}",
                            tags=monitor_tags(report, source))
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in report.metrics().items() if math.isfinite(v)]
    for start in range(0, len(metrics), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    if html is not None:
        client.log_text(run_id, html, vocab.DRIFT_REPORT_ARTIFACT)
    client.set_terminated(run_id, "FINISHED")
    return str(run_id)


def monitor_tags(report: DriftReport, source: Reference) -> dict[str, str]:
    tags = {vocab.KIND_TAG: vocab.KIND_MONITOR, vocab.MONITOR_REFERENCE_TAG: source.label,
            vocab.MONITOR_DRIFTED_TAG: str(report.drifted).lower(),
            vocab.MONITOR_BAND_TAG: report.bands.of(report.max_psi)}
    if source.run_id:
        tags[vocab.MONITOR_REFERENCE_RUN_TAG] = source.run_id
    if source.model is not None:
        tags[vocab.MONITOR_MODEL_TAG] = source.model
        tags[vocab.MONITOR_VERSION_TAG] = str(source.version)
    return tags


def summary(report: DriftReport, source: Reference, run_id: str | None) -> dict[str, Any]:
    """What a webhook or a CI log is told: the verdict, the largest PSIs, where the run is."""
    frame: pd.DataFrame = report.to_frame()
    return {
        "reference": source.label, "model": source.model, "version": source.version,
        "drifted": report.drifted, "max_psi": report.max_psi,
        "threshold": report.bands.significant, "run_id": run_id,
        "current_rows": report.current_rows, "reference_rows": report.reference_rows,
        "drifted_features": [d.name for d in report.features if d.band == "significant"],
        "features": frame[["feature", "psi", "band", "p_value"]].head(10).to_dict("records"),
    }


def monitor_runs(client: Any, model: str, limit: int = MONITOR_RUNS) -> list[MonitorRun]:
    """The newest `limit` monitor runs logged against any version of `model`, newest first,
    from every active experiment (they go where the model's run is, or where the user said)."""
    experiments, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    name = model.replace("'", "\\'")
    query = (f"tags.`{vocab.KIND_TAG}` = '{vocab.KIND_MONITOR}' and "
             f"tags.`{vocab.MONITOR_MODEL_TAG}` = '{name}'")
    runs = client.search_runs(experiments, query, max_results=limit,
                              order_by=["attributes.start_time DESC"]) if experiments else []
    return [_monitor_run(run) for run in runs]


def _monitor_run(run: Any) -> MonitorRun:
    tags, metrics = run.data.tags, run.data.metrics
    max_psi = metrics.get(vocab.MAX_PSI_METRIC)
    drifted = tags.get(vocab.MONITOR_DRIFTED_TAG) == "true"
    band = tags.get(vocab.MONITOR_BAND_TAG)  # runs logged before the tag: the default bands
    if band is None:
        band = SIGNIFICANT if drifted else Bands().of(max_psi or 0.0)
    version = tags.get(vocab.MONITOR_VERSION_TAG, "")
    return MonitorRun(run.info.run_id, run.info.experiment_id,
                      int(version) if version.isdigit() else None, int(run.info.start_time or 0),
                      max_psi, band, drifted, tags.get(vocab.MONITOR_REFERENCE_TAG, ""),
                      vocab.DRIFT_REPORT_ARTIFACT)
