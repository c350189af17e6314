"""The Runs tab of the MLOps panel, in Chromium: a cell's run settles soon after the cell ends;
the session run holds its cell runs; a run's details hide the internal tags, name the parent,
draw a logged metric's steps as a curve and open the cell's code; "Insert into notebook" keeps
the `%%mlops track` line; a failed run's details show its error by its status."""

from __future__ import annotations

import json

import pytest

from .jupyterlab import ERRORS_JS, NOTEBOOK_JS, PANEL, command, open_notebook, open_panel

NOTEBOOK = "Churn_Panel.ipynb"
SESSION = "churn_session"
FIT_LINE = "%%mlops track fit-loop --params epochs --tags stage=tuning"  # kept by Insert
WHY = "test_size=1.5 is not a valid split"
FAILING = f"%%mlops track split-check\nraise ValueError({WHY!r})"
SETTLE_MS = 2500  # the "~2 s" after the cell ends, with room for a loaded machine
CELLS = [
    "%load_ext jupyter_mlops\n%mlops start --experiment 'Churn Panel' --run-name churn_session",
    "%%mlops track warm-up\nwarm = 1",  # the sender is up (mlflow imported) before the timing
    f"{FIT_LINE}\nimport time\nepochs = 4\nfor epoch in range(epochs):\n"
    "    loss = 1.0 / (epoch + 1)\n    %mlops log loss={loss} --step {epoch}\ntime.sleep(1)",
]
FINISHED_JS = ("(name => [...document.querySelectorAll('#jp-mlops-panel tr.jp-mlops-run')]"
               ".some(r => r.querySelector('.jp-mlops-run-link').textContent === name"
               " && r.classList.contains('jp-mlops-status-finished')))")
# When the fit-loop cell ended (its execution count set by the kernel's reply) and when the
# panel first showed its run finished, both in the page's clock.
TIMING_JS = """() => {
  const FINISHED = FINISHED_JS;
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[2];
  window.__settle = { end: null, settled: null };
  cell.model.stateChanged.connect((_, change) => {
    if (change.name === 'executionCount' && change.newValue !== null) {
      window.__settle.end = performance.now();
    }
  });
  const seen = () => FINISHED('fit-loop');
  new MutationObserver(() => {
    if (window.__settle.settled === null && seen()) {
      window.__settle.settled = performance.now();
    }
  }).observe(document.querySelector('#jp-mlops-panel'), { subtree: true, childList: true });
}""".replace("FINISHED_JS", FINISHED_JS)


def _write(path) -> None:  # noqa: ANN001
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": source,
              "outputs": [], "execution_count": None} for i, source in enumerate(CELLS)]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": cells,
                                "metadata": {"kernelspec": kernel}}), encoding="utf-8")


@pytest.fixture(scope="module")
def ran(browser, lab, request):  # noqa: ANN001
    """The notebook run once with the panel open, the timing of its last cell recorded."""
    from .conftest import explained, new_page

    _write(lab.root / NOTEBOOK)
    with lab.own_kernels():
        page = new_page(browser, viewport={"width": 1400, "height": 900})
        with explained(request, page, lab):
            open_notebook(page, lab, NOTEBOOK, "churn_panel")
            panel = open_panel(page)
            page.evaluate(TIMING_JS)
            page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = 2")
            command(page, "notebook:run-all-above")  # the session and the warm-up
            page.wait_for_function(f"() => {FINISHED_JS}('warm-up')")
            command(page, "notebook:run-cell")
            page.wait_for_function("() => window.__settle.settled !== null")
            assert page.evaluate(ERRORS_JS) == []
            yield page, panel
        page.context.close()


def test_a_cell_run_settles_within_two_seconds_of_the_cell_end(ran) -> None:  # noqa: ANN001
    page, _ = ran
    timing = page.evaluate("window.__settle")
    assert timing["end"] is not None
    assert timing["settled"] - timing["end"] < SETTLE_MS, timing


def test_session_nests_its_cell_runs_and_details_show_what_matters(ran) -> None:  # noqa: ANN001
    page, panel = ran
    # The header's path is cut to one line when long; the whole path shows on hover.
    assert panel.locator(".jp-mlops-subtitle").get_attribute("title").endswith(NOTEBOOK)
    session = panel.locator("tr.jp-mlops-run", has_text=SESSION)
    parent = session.get_attribute("data-run")
    children = panel.locator(f"tr.jp-mlops-child[data-parent='{parent}']")
    assert sorted(children.locator(".jp-mlops-run-link").all_inner_texts()) == [
        "fit-loop", "warm-up"]
    # The children follow their session's row.
    names = page.evaluate(f"[...document.querySelectorAll('{PANEL} .jp-mlops-run-link')]"
                          ".map(a => a.textContent)")
    assert names.index(SESSION) < min(names.index("fit-loop"), names.index("warm-up"))

    panel.locator(".jp-mlops-run-link", has_text="fit-loop").click()
    details = panel.locator(".jp-mlops-details")
    details.locator(".jp-mlops-source").wait_for()
    assert details.locator(".jp-mlops-parent").inner_text() == SESSION
    tags = details.locator(".jp-mlops-tags").inner_text()
    assert "mlops.pid" not in tags and "mlops.run_key" not in tags and "mlops.kind" in tags
    details.locator("input.jp-mlops-internal-toggle").check()
    tags = details.locator(".jp-mlops-tags").inner_text()
    assert "mlops.pid" in tags and "mlops.run_key" in tags and "mlops.pid_start" in tags
    # loss logged at steps 0..3: a curve through four points.
    curve = details.locator("tr[data-metric='loss'] svg polyline")
    assert len(curve.get_attribute("points").split()) == 4

    cells = page.evaluate(f"{NOTEBOOK_JS}.content.widgets.length")
    details.locator("button", has_text="Insert into notebook").click()
    page.wait_for_function(f"() => {NOTEBOOK_JS}.content.widgets.length === {cells + 1}")
    inserted = page.evaluate(f"{NOTEBOOK_JS}.content.activeCell.model.sharedModel.getSource()")
    assert inserted.split("\n")[0] == FIT_LINE and "for epoch in range(epochs):" in inserted


def test_a_failed_runs_details_show_its_error_by_its_status(ran) -> None:  # noqa: ANN001
    page, panel = ran
    back = panel.locator(".jp-mlops-details button", has_text="← Runs")
    if back.count():
        back.click()
    cells = page.evaluate(f"{NOTEBOOK_JS}.content.widgets.length")
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = {cells - 1}")
    command(page, "notebook:insert-cell-below")
    page.wait_for_function(f"() => {NOTEBOOK_JS}.content.widgets.length === {cells + 1}")
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCell.model.sharedModel"
                  f".setSource({json.dumps(FAILING)})")
    command(page, "notebook:run-cell")
    failed = panel.locator("tr.jp-mlops-run.jp-mlops-status-failed", has_text="split-check")
    failed.locator(".jp-mlops-run-link").click()
    status = panel.locator(".jp-mlops-details .jp-mlops-run-status")
    assert status.locator(".jp-mlops-run-error").inner_text() == f"ValueError: {WHY}"
    assert status.inner_text().startswith("FAILED")
