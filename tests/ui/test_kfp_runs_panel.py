"""The Runs panel's Kubeflow section in Chromium: the active notebook's KFP runs, read by the
server from its configured host (the KFP tests' stand-in API server), with their state,
duration and a link to the KFP UI."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, Lab, explained, new_page, start_lab
from .jupyterlab import PANEL, open_notebook, open_panel

sys.path.insert(0, str(ROOT / "tests" / "kfp"))
from kfp_api_standin import Behaviour, KfpApiStandIn  # noqa: E402 - not a package

SECTION = f"{PANEL} .jp-mlops-kfp"
RUNS = [
    {"run_id": "run-2", "display_name": "Churn_Training nightly", "experiment_id": "exp-1",
     "state": "RUNNING", "created_at": "2026-12-01T06:00:00Z",
     "finished_at": "1970-01-01T00:00:00Z",
     "pipeline_spec": {"pipelineInfo": {"name": "churn-training"}}},
    {"run_id": "run-9", "display_name": "someone else's", "experiment_id": "exp-1",
     "state": "SUCCEEDED", "created_at": "2026-11-30T07:00:00Z",
     "finished_at": "2026-11-30T07:01:00Z",
     "pipeline_spec": {"pipelineInfo": {"name": "other-pipeline"}}},
    {"run_id": "run-1", "display_name": "Churn_Training 2026-11-30", "experiment_id": "exp-1",
     "state": "FAILED", "created_at": "2026-11-30T06:00:00Z",
     "finished_at": "2026-11-30T06:05:30Z",
     "pipeline_spec": {"pipelineInfo": {"name": "churn-training"}}},
]


def _churn_training(path: Path) -> str:
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [(["parameters"], "n_trees = 50"), (["step:load"], "rows = list(range(100))"),
             (["step:train"], "score = len(rows) / n_trees")]
    path.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernel},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags},
                   "source": source, "outputs": [], "execution_count": None}
                  for i, (tags, source) in enumerate(cells)]}), encoding="utf-8")
    return path.name


@pytest.fixture(scope="module")
def kfp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, KfpApiStandIn]]:
    """A lab whose MlopsExtension.kfp_host is the stand-in KFP API server listing RUNS."""
    with KfpApiStandIn(Behaviour(runs=RUNS)) as api, \
            start_lab(tmp_path_factory.mktemp("kfp-runs-lab"), {"kfp_host": api.url}) as lab:
        yield lab, api


def test_the_panel_shows_the_notebooks_kfp_runs_with_links(browser, kfp_lab,  # noqa: ANN001
                                                           request) -> None:
    lab, api = kfp_lab
    name = _churn_training(lab.root / "Churn_Training.ipynb")
    page = new_page(browser, viewport={"width": 1400, "height": 900})
    with lab.own_kernels(), explained(request, page, lab):
        open_notebook(page, lab, name, "kfp-runs")
        open_panel(page)
        section = page.locator(SECTION)
        section.locator("tr.jp-mlops-kfp-run").first.wait_for()
        assert "Kubeflow Pipelines: churn-training" in section.inner_text()
        rows = section.locator("tr.jp-mlops-kfp-run")
        assert rows.evaluate_all("rs => rs.map(r => r.dataset.kfpRun)") == ["run-2", "run-1"]
        running, failed = rows.nth(0), rows.nth(1)
        assert "jp-mlops-status-running" in running.get_attribute("class")
        assert running.locator(".jp-mlops-status").inner_text() == "running"
        assert "jp-mlops-status-failed" in failed.get_attribute("class")
        assert "5 min 30 s" in failed.inner_text()
        link = failed.locator("a")
        assert link.inner_text() == "Churn_Training 2026-11-30"
        assert link.get_attribute("href") == f"{api.url}/#/runs/details/run-1"
        assert link.get_attribute("target") == "_blank"
        page.context.close()
    assert any(r.path.startswith("/apis/v2beta1/runs") for r in api.behaviour.requests)
