"""Read-only views for `%mlops runs`, `%mlops status` and `%mlops ui` (mlflow imported on use)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jupyter_mlops.tracking.store import DEFAULT_UI, artifact_root, open_client, sqlite_path


def runs_table(uri: str, experiment: str, last: int) -> Any:
    """The experiment's `last` most recent runs as a pandas DataFrame, newest first."""
    import pandas as pd

    client = open_client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame()
    runs = client.search_runs([exp.experiment_id], max_results=last,
                              order_by=["attributes.start_time DESC"])
    return pd.DataFrame([_row(run) for run in runs])


def _row(run: Any) -> dict[str, Any]:
    info, data = run.info, run.data
    end = info.end_time or None
    row: dict[str, Any] = {
        "run": info.run_name,
        "status": info.status,
        "started": dt.datetime.fromtimestamp(info.start_time / 1000).strftime("%Y-%m-%d %H:%M:%S"),
        "duration_s": round((end - info.start_time) / 1000, 3) if end else None,
        "kind": data.tags.get("mlops.kind", ""),
        "run_id": info.run_id,
    }
    row.update({f"metrics.{k}": v for k, v in sorted(data.metrics.items())[:8]})
    row.update({f"params.{k}": v for k, v in sorted(data.params.items())[:8]})
    return row


def ui_hint(uri: str) -> str:
    db = sqlite_path(uri)
    if db is None:
        return f"Runs are on the MLflow server at {uri} - open that address in a browser."
    return (f"Open the MLflow UI on this store with:\n"
            f"  mlflow ui --backend-store-uri sqlite:///{db} --default-artifact-root "
            f"{artifact_root(uri)} --port 5000\n"
            f"then browse {DEFAULT_UI} (from the folder {db.parent}).")
