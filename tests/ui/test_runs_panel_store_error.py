"""The Runs tab of a notebook whose store cannot be read, in Chromium: the panel says so in one
red line naming the store and the cause (not "No runs yet", as if there were none), and once
the store is mended it lists the runs again on its own; broken after that, the runs it listed
stay, under the red line."""

from __future__ import annotations

import json
import sqlite3

from .jupyterlab import PANEL, open_notebook, open_panel

FOLDER = "broken_store"
NOTEBOOK = f"{FOLDER}/Churn_Sweep.ipynb"
RUNS = 3
LOAD_ERROR = f"{PANEL} .jp-mlops-load-error"
COUNT = f"{PANEL} .jp-mlops-count"


def _write(lab) -> str:  # noqa: ANN001
    """The notebook and RUNS finished runs of it in 'Churn Sweep'; returns the store's file."""
    from mlflow import MlflowClient

    from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG
    from jupyter_mlops.tracking.notebook_info import tag_value

    folder = lab.folder(FOLDER)
    path = lab.root / NOTEBOOK
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell: dict[str, object] = {"cell_type": "code", "id": "fit", "metadata": {},
                               "outputs": [], "execution_count": None,
                               "source": "%%mlops track fit\nn_estimators = 200"}
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [cell],
                                "metadata": {"kernelspec": kernel}}), encoding="utf-8")
    store = folder / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.create_experiment("Churn Sweep")
    for i in range(RUNS):
        run = client.create_run(experiment, run_name=f"fit-{i}",
                                tags={NOTEBOOK_TAG: tag_value(path)})
        client.log_metric(run.info.run_id, "accuracy", 0.8 + i / 100)
        client.set_terminated(run.info.run_id)
    return str(store)


def _move_table(store: str, old: str, new: str) -> None:
    """A table MLflow reads gone (as after a bad migration), or put back."""
    with sqlite3.connect(store) as connection:
        connection.execute(f"ALTER TABLE {old} RENAME TO {new}")


def test_a_store_that_cannot_be_read_says_so_until_mended(page, lab):  # noqa: ANN001
    store = _write(lab)
    _move_table(store, "latest_metrics", "latest_metrics_away")
    try:
        open_notebook(page, lab, NOTEBOOK, "churn_sweep_broken")
        panel = open_panel(page, widen=0)
        error = page.locator(LOAD_ERROR)
        error.wait_for()
        text = error.inner_text()
        # The store as the server names it to the browser: its path below the lab's root.
        assert text.startswith("Not every run could be read: the runs could not all be read"
                               f" from sqlite:///{FOLDER}/mlflow.db: "), text
        assert "no such table: latest_metrics" in text and "\n" not in text, text
        shown = panel.inner_text()
        assert "No runs yet" not in shown and " of 0 runs" not in shown, shown
    finally:
        _move_table(store, "latest_metrics_away", "latest_metrics")
    # Mended: the panel's own poll lists the runs and the red line goes.
    page.locator(COUNT, has_text=f"{RUNS} of {RUNS} runs").wait_for()
    error.wait_for(state="detached")
    assert "No runs yet" not in panel.inner_text()
    # Broken once its runs are listed: they stay listed, under the red line.
    _move_table(store, "latest_metrics", "latest_metrics_away")
    try:
        error.wait_for()
        assert "no such table: latest_metrics" in error.inner_text()
        assert page.locator(f"{PANEL} tr.jp-mlops-run").count() == RUNS
        assert page.locator(COUNT).inner_text().startswith(f"{RUNS} of {RUNS} runs")
    finally:
        _move_table(store, "latest_metrics_away", "latest_metrics")
    error.wait_for(state="detached")
