"""Runs as the views show them: rows read from MLflow (the vocabulary's `RunRow`), sorted,
filtered and compared.

mlflow is imported only through `tracking.destination.open_client`, when a view first needs a store.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from jupyter_mlops.steps.mlflow_vocabulary import RunRow, find_experiment, run_row

BASE_COLUMNS = ("name", "status", "start", "duration_s")
_MLFLOW_FILTER_PREFIXES = ("metrics.", "params.", "tags.", "attributes.", "metric.", "param.",
                           "tag.", "attribute.")


def resolve_client(client_or_uri: Any = None) -> Any:
    """An MlflowClient: given, opened on a URI, or on the default store (as `%mlops` uses)."""
    if client_or_uri is not None and not isinstance(client_or_uri, str):
        return client_or_uri
    from jupyter_mlops.tracking.destination import open_client, tracking_uri

    return open_client(client_or_uri or tracking_uri())


def default_experiment() -> str | None:
    """The open `%mlops` session's experiment, if the tracking magics are in use."""
    session_mod = sys.modules.get("jupyter_mlops.tracking.session")  # loaded by `%mlops`
    session = session_mod.current() if session_mod else None
    return getattr(session, "experiment", None) or os.environ.get("MLFLOW_EXPERIMENT_NAME")


def experiment_ids(client: Any, experiment: str | None) -> list[str]:
    """Ids of the named experiment (name or id), or of every experiment when None."""
    if experiment is None:
        return [e.experiment_id for e in client.search_experiments()]
    found = find_experiment(client, experiment)
    return [found.experiment_id] if found is not None else []


def fetch_runs(client: Any, experiment: str | None, filter_string: str = "",
               max_results: int = 200) -> list[RunRow]:
    """The newest runs first; `filter_string` is MLflow's search syntax."""
    ids = experiment_ids(client, experiment)
    if not ids:
        return []
    runs = client.search_runs(ids, filter_string=filter_string, max_results=max_results,
                              order_by=["attributes.start_time DESC"])
    return [run_row(run) for run in runs]


def is_mlflow_filter(text: str) -> bool:
    return text.strip().lower().startswith(_MLFLOW_FILTER_PREFIXES)


def filter_rows(rows: list[RunRow], text: str) -> list[RunRow]:
    """Rows where every word of `text` appears in the name, status, a param or a tag value."""
    words = text.lower().split()
    if not words:
        return list(rows)

    def haystack(row: RunRow) -> str:
        parts = [row.name, row.status, row.run_id, *row.params.values(),
                 *(f"{k}={v}" for k, v in row.params.items()), *row.tags.values()]
        return " ".join(parts).lower()

    return [row for row in rows if all(w in haystack(row) for w in words)]


def sort_rows(rows: list[RunRow], column: str, descending: bool = False) -> list[RunRow]:
    """Sorted by `column`; rows without a value go last either way. Numbers sort as numbers."""
    present = [r for r in rows if r.value(column) is not None]
    missing = [r for r in rows if r.value(column) is None]
    present.sort(key=lambda r: _sort_key(r.value(column)), reverse=descending)
    return present + missing


def _sort_key(value: Any) -> tuple[int, Any]:
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))


def columns(rows: list[RunRow], limit: int = 12) -> list[str]:
    """Base columns, then the metrics and params any row has (a few of each)."""
    metrics = sorted({k for r in rows for k in r.metrics})
    params = sorted({k for r in rows for k in r.params})
    extra = [f"metrics.{k}" for k in metrics][: limit // 2] + [f"params.{k}" for k in params]
    return list(BASE_COLUMNS) + extra[: limit]


def differing_params(rows: list[RunRow]) -> dict[str, list[str | None]]:
    """Params whose values are not the same in every row, with each row's value."""
    keys = sorted({k for r in rows for k in r.params})
    found = {}
    for key in keys:
        values = [r.params.get(key) for r in rows]
        if len(set(values)) > 1:
            found[key] = values
    return found


def metric_histories(client: Any, rows: list[RunRow], key: str) -> dict[str, list[float]]:
    """Each run's values of one metric in step order (one point when logged once)."""
    histories = {}
    for row in rows:
        if key in row.metrics:
            points = sorted(client.get_metric_history(row.run_id, key), key=lambda m: m.step)
            histories[row.run_id] = [m.value for m in points] or [row.metrics[key]]
    return histories


def run_link(uri: str | None, experiment_id: str | None, run_id: str) -> str:
    """The run's page in the MLflow UI (`tracking.destination.ui_url`). Without the experiment
    id, the UI's `#/runs/<id>` route finds the run's experiment itself."""
    from jupyter_mlops.tracking.destination import ui_url

    base = ui_url(uri)
    page = f"experiments/{experiment_id}/runs/{run_id}" if experiment_id else f"runs/{run_id}"
    return f"{base.rstrip('/')}/#/{page}"
