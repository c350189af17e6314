"""notebooks/04_monitor_and_retrain.ipynb executed top to bottom with papermill against a SQLite
store: the champion's profile, a stable and a drifted report, retraining, the gate and the
promotion, as the reader sees them and as the registry holds them."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_monitor_and_retrain.ipynb"


def _outputs(nb: nbformat.NotebookNode) -> tuple[str, str]:
    """All stream text and all HTML of the executed notebook."""
    text, html = [], []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text.append(output.get("text", ""))
            html.append(output.get("data", {}).get("text/html", ""))
    return "".join(text), "".join(html)


def test_04_monitor_and_retrain(tmp_path, monkeypatch):
    import papermill

    from jupyter_mlops.tracking.destination import open_client

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the kernel inherits it
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    output = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(tmp_path / NOTEBOOK.name), str(output), cwd=str(tmp_path),
                               parameters={"n_customers": 2000}, kernel_name="python3",
                               progress_bar=False, execution_timeout=300)
    executed = nbformat.read(output, as_version=4)
    text, html = _outputs(executed)

    assert "Churn_Monitored v1 is now @champion (was nobody)" in text
    assert 'class="mlops-drift-verdict">stable<' in html
    assert 'class="mlops-drift-verdict">DRIFTED<' in html
    assert "stable batch: max PSI" in text and "drifted: False" in text
    assert "drifted batch: max PSI" in text and "drifted: True" in text
    assert "Churn_Monitored v2 is now @champion (was v1)" in text
    assert "gate accuracy>=" in text and ": passed" in text
    assert "against the new champion: max PSI" in text
    assert "Downloading artifacts" not in text + html  # no progress bar in the cells
    assert "all records stored" in text
    # `%mlops models` lists the versions from any line of its cell, not only from the last
    for cell in (c for c in executed.cells if "%mlops models" in c.source):
        shown = "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)
        assert "mlops-models-table" in shown and "Churn_Monitored" in shown, cell.source

    client = open_client(uri)
    assert client.get_registered_model("Churn_Monitored").aliases == {"champion": 2}
    experiment = client.get_experiment_by_name("Churn_Monitoring").experiment_id
    monitors = client.search_runs([experiment], "tags.`mlops.kind` = 'monitor'",
                                  order_by=["attributes.start_time ASC"])
    assert [(r.data.tags["mlops.monitor.version"], r.data.tags["mlops.monitor.drifted"])
            for r in monitors] == [("1", "false"), ("1", "true"), ("2", "false")]
