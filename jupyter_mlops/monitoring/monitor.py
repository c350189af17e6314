"""A monitor: new data compared with a model's reference, logged to MLflow as a `monitor` run.

`measure` resolves the reference (monitoring/reference.py) and computes the `DriftReport`;
`log_run` writes it beside the model: in the experiment of the run that logged the model, with
tags naming the model and version, metrics `psi.<feature>`, `ks_p.<feature>`, `drift.max_psi`
..., and the report's HTML (rendered by the caller: views live above this layer). The notebook
(`jupyter_mlops.drift`, `%mlops drift`) and the `monitor` command share both.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

from jupyter_mlops.monitoring.drift import Bands, DriftReport, compute_drift
from jupyter_mlops.monitoring.reference import Reference, as_frame, resolve
from jupyter_mlops.steps import mlflow_vocabulary as vocab

MONITOR_EXPERIMENT = "monitoring"  # monitor runs of a reference that has no run (a frame)


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
    frame = as_frame(current, "current")
    report = compute_drift(frame, source.data, predictions, bands)
    return report, source


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
            vocab.MONITOR_DRIFTED_TAG: str(report.drifted).lower()}
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
