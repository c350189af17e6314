"""The Export to pipeline dialog in Chromium: the whole DAG inside the box (the shipped pipeline
and a 30-step one with branches), zoom and fit; Submit disabled with the way to configure a KFP
host, or, against the KFP tests' stand-in API server, a schedule refused naming its field and a
good one creating a recurring run; Run locally turning the DAG's steps green as they finish and
linking its executed step notebooks, which open (the dialog closing, so the tab is seen) though
they lie under the hidden `.mlops/`, and naming its run folder, which JupyterLab cannot open."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Lab, explained, new_page, start_lab
from .jupyterlab import EXPORT_BUTTON, command, open_notebook

sys.path.insert(0, str(ROOT / "tests" / "kfp"))
from kfp_api_standin import KfpApiStandIn  # noqa: E402 - the KFP tests' stand-in, not a package

SHIPPED_PIPELINE = ROOT / "notebooks" / "02_tagged_pipeline.ipynb"
DIALOG = ".jp-Dialog"
BOX = f"{DIALOG} .jp-mlops-dag-box"
# Each node's box against the DAG box's: [step, inside?], and whether any two nodes overlap.
GEOMETRY_JS = f"""() => {{
  const box = document.querySelector('{BOX}').getBoundingClientRect();
  const nodes = [...document.querySelectorAll('{BOX} .jp-mlops-dag-node')]
    .map(n => [n.dataset.step, n.querySelector('rect').getBoundingClientRect()]);
  const inside = nodes.map(([s, r]) => [s, r.left >= box.left - 0.5 && r.right <= box.right + 0.5
    && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5]);
  const overlap = nodes.some(([, a], i) => nodes.some(([, b], j) => i < j && a.left < b.right
    && b.left < a.right && a.top < b.bottom && b.top < a.bottom));
  return {{inside, overlap}};
}}"""


def _notebook(path: Path, cells: list[tuple[list[str], str]]) -> str:
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernel},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags},
                   "source": source, "outputs": [], "execution_count": None}
                  for i, (tags, source) in enumerate(cells)]}), encoding="utf-8")
    return path.name


def _quick_steps(path: Path) -> str:
    return _notebook(path, [(["parameters"], "n = 4"),
                            (["step:make"], "values = list(range(n))"),
                            (["step:total"], "total = sum(values)\nprint('total', total)")])


def _thirty_steps(path: Path) -> str:
    """Three branches of nine steps from one source, joined by two steps at the end."""
    cells = [(["step:source"], "raw = 1")]
    for branch in "abc":
        previous = "raw"
        for i in range(9):
            cells.append(([f"step:{branch}-stage-{i}"], f"{branch}{i} = {previous} + 1"))
            previous = f"{branch}{i}"
    cells.append((["step:join"], "joined = a8 + b8 + c8"))
    cells.append((["step:report"], "print(joined, raw)"))
    return _notebook(path, cells)


def _export(page: Any, notebook: str) -> Any:  # noqa: ANN401
    page.locator(f"{notebook} .jp-NotebookPanel-toolbar {EXPORT_BUTTON}").wait_for(
        state="attached")
    command(page, "jupyter-mlops:export-pipeline")  # the button may sit in the toolbar's overflow
    dialog = page.locator(DIALOG)
    dialog.locator(".jp-mlops-dag-box[data-laid-out=true]").wait_for()
    return dialog


def _assert_all_inside(page: Any, steps: int) -> None:  # noqa: ANN401
    geometry = page.evaluate(GEOMETRY_JS)
    assert len(geometry["inside"]) == steps
    assert [s for s, inside in geometry["inside"] if not inside] == []
    assert not geometry["overlap"]


def test_the_dialog_shows_every_step_zooms_and_says_how_to_enable_submit(page, lab):  # noqa: ANN001
    path = lab.folder("export_fit") / "02_tagged_pipeline.ipynb"
    shutil.copy(SHIPPED_PIPELINE, path)
    dialog = _export(page, open_notebook(page, lab, "export_fit/02_tagged_pipeline.ipynb",
                                         "export-fit"))
    _assert_all_inside(page, 5)
    box = dialog.locator(".jp-mlops-dag-box")
    fitted = float(box.get_attribute("data-scale"))
    dialog.get_by_role("button", name="Zoom in").click()
    assert float(box.get_attribute("data-scale")) == pytest.approx(fitted * 1.25, rel=0.01)
    dialog.get_by_role("button", name="Fit the whole graph in the box").click()
    assert float(box.get_attribute("data-scale")) == pytest.approx(fitted, rel=0.01)
    _assert_all_inside(page, 5)
    # An edge names the values it carries on hover.
    titles = dialog.locator(".jp-mlops-dag-edge-group title").all_text_contents()
    assert any(t.startswith("load → features: ") for t in titles), titles
    # No KFP host on this server: Submit is there, disabled, with the setting that enables it.
    assert dialog.locator("button.jp-mlops-submit").is_disabled()
    assert "--MlopsExtension.kfp_host=" in dialog.locator(".jp-mlops-kfp-hint").inner_text()


def test_a_thirty_step_pipeline_with_branches_fits_without_overlaps(page, lab):  # noqa: ANN001
    name = _thirty_steps(lab.folder("export_wide") / "Thirty_Steps.ipynb")
    _export(page, open_notebook(page, lab, f"export_wide/{name}", "export-wide"))
    _assert_all_inside(page, 30)


def test_run_locally_colours_the_steps_and_links_the_run(page, lab):  # noqa: ANN001
    name = _quick_steps(lab.folder("export_run") / "Quick_Steps.ipynb")
    dialog = _export(page, open_notebook(page, lab, f"export_run/{name}", "export-run"))
    heading = dialog.locator("p", has_text="Pipeline").first.inner_text()
    assert heading.endswith(" — 2 steps, 1 edge"), heading  # not "1 edges"
    dialog.locator("button.jp-mlops-run-locally").click()
    status = dialog.locator(".jp-mlops-local-status[data-status=succeeded]")
    status.wait_for()
    for step in ("make", "total"):  # green: the runner's "ok"
        dialog.locator(f".jp-mlops-dag-node[data-step={step}][data-status=ok]").wait_for()
    summary = status.locator(".jp-mlops-local-summary").inner_text()
    assert "Local run succeeded in " in summary and "the runner's time" in summary
    folder = status.locator(".jp-mlops-run-folder").get_attribute("data-path")
    assert folder.startswith("export_run/.mlops/runs/")
    links = status.locator(".jp-mlops-step-notebook").evaluate_all(
        "as => as.map(a => a.dataset.path)")
    assert links == [f"{folder}/make.ipynb", f"{folder}/total.ipynb"]
    assert all((lab.root / link).is_file() for link in links)
    # The run folder is under .mlops/, which Jupyter does not open by default: its path, no
    # link. A step notebook opens all the same, as the server renders it, and the dialog
    # closes so its tab is seen.
    assert status.locator("a.jp-mlops-run-folder").count() == 0
    assert folder in status.locator(".jp-mlops-run-folder").inner_text()
    status.locator("a.jp-mlops-step-notebook", has_text="total.ipynb").click()
    dialog.wait_for(state="detached")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current",
                 has_text="total.ipynb").wait_for()
    executed = page.frame_locator(".jp-mlops-page-view").locator(".jp-OutputArea-output")
    executed.filter(has_text="total 6").wait_for()  # the step's own print, n = 4


@pytest.fixture(scope="module")
def kfp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, KfpApiStandIn]]:
    """A second lab whose MlopsExtension.kfp_host is the stand-in KFP API server."""
    with KfpApiStandIn() as api, start_lab(tmp_path_factory.mktemp("kfp-lab"),
                                           {"kfp_host": api.url}) as lab:
        yield lab, api


def test_submit_checks_the_schedule_then_creates_a_recurring_run(browser, kfp_lab,  # noqa: ANN001
                                                                 request):
    lab, api = kfp_lab
    name = _quick_steps(lab.root / "Quick_Steps.ipynb")
    page = new_page(browser, viewport={"width": 1400, "height": 900})
    with lab.own_kernels(), explained(request, page, lab):
        dialog = _export(page, open_notebook(page, lab, name, "kfp-submit"))
        assert dialog.locator(".jp-mlops-kfp-hint").count() == 0
        message = dialog.locator(".jp-mlops-submit-message")
        dialog.locator(".jp-mlops-schedule").fill("0 25 * * *")
        dialog.locator("button.jp-mlops-submit").click()
        dialog.locator(".jp-mlops-submit-message.jp-mlops-error").wait_for()
        assert "the hour field '25': '25' is out of range 0-23" in message.inner_text()
        assert "6 fields, seconds minute hour" in message.inner_text()
        assert api.behaviour.requests == []  # refused before anything was sent
        dialog.locator(".jp-mlops-schedule").fill("0 6 * * MON-FRI")
        dialog.locator(".jp-mlops-schedule").press("Enter")  # submits; the dialog stays
        dialog.locator(".jp-mlops-submit-message.jp-mlops-ok").wait_for()
        assert "Created recurring run rec-1" in message.inner_text()
        (job,) = api.behaviour.recurring_runs
        assert job["trigger"]["cron_schedule"]["cron"] == "0 0 6 * * MON-FRI"
        assert job["pipeline_spec"]["pipelineInfo"]["name"] == "quick-steps"
        page.context.close()
