"""Read-only views for `%mlops runs`, `%mlops status` and `%mlops ui` (mlflow imported on use)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jupyter_mlops.steps.mlflow_vocabulary import RunRow, find_experiment, run_row
from jupyter_mlops.tracking.destination import DEFAULT_UI, artifact_root, open_client, sqlite_path


def runs_table(uri: str, experiment: str, last: int) -> Any:
    """The experiment's `last` most recent runs as a pandas DataFrame, newest first."""
    import pandas as pd

    client = open_client(uri)
    exp = find_experiment(client, experiment)
    if exp is None:
        return pd.DataFrame()
    runs = client.search_runs([exp.experiment_id], max_results=last,
                              order_by=["attributes.start_time DESC"])
    return pd.DataFrame([_table_row(run_row(run)) for run in runs])


def _table_row(row: RunRow) -> dict[str, Any]:
    table: dict[str, Any] = {
        "run": row.name,
        "status": row.status,
        "started": dt.datetime.fromtimestamp(row.start_ms / 1000).strftime("%Y-%m-%d %H:%M:%S"),
        "duration_s": row.duration_s,
        "kind": row.kind,
        "run_id": row.run_id,
    }
    table.update({f"metrics.{k}": v for k, v in sorted(row.metrics.items())[:8]})
    table.update({f"params.{k}": v for k, v in sorted(row.params.items())[:8]})
    return table


def ui_hint(uri: str) -> str:
    db = sqlite_path(uri)
    if db is None:
        return f"Runs are on the MLflow server at {uri} - open that address in a browser."
    return (f"Open the MLflow UI on this store with:\n"
            f"  mlflow ui --backend-store-uri sqlite:///{db} --default-artifact-root "
            f"{artifact_root(uri)} --port 5000\n"
            f"then browse {DEFAULT_UI} (from the folder {db.parent}).")
