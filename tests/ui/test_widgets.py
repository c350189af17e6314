"""The notebook views in Chromium: run cards under tracked cells (HTML outputs redrawn in
place), the runs browser (filter, sort, compare) and the step graph (live ipywidgets) render in
JupyterLab 4, and the run card and the runs browser in Notebook 7.

The quickstart example runs once (a module fixture) in a folder of the server's root, into an
MLflow store of its own; the tests then look at, and play with, its outputs.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import ROOT, TOKEN, UI_WAIT_MS, explained, new_page
from .jupyterlab import NOTEBOOK_JS, open_notebook, run_all

WAIT_MS = UI_WAIT_MS  # an upper bound for waits on the UI, not a measured timing
FOLDER = "widgets"  # the quickstart copy's folder: its own store, apart from the shipped tests'
QUICKSTART = ROOT / "notebooks" / "01_tracking_quickstart.ipynb"
PIPELINE = ROOT / "notebooks" / "02_tagged_pipeline.ipynb"
TRACKED = ["logreg", "forest", "boosting"]  # the quickstart's `%%mlops track` cells
CARD = ".jp-OutputArea-output .mlops-run-card"  # an HTML output the kernel redraws in place
BROWSER = ".jupyter-widgets.mlops-runs-browser"
ERROR_TEXT = "Error displaying widget"
# Appended to the copy: the step graph of the pipeline example, a live widget too.
GRAPH_CELL = ("from jupyter_mlops.widgets import step_graph\n"
              f"step_graph({PIPELINE.name!r})")


def _cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
            "execution_count": None}


def _write_quickstart(root: Path) -> str:
    notebook = json.loads(QUICKSTART.read_text(encoding="utf-8"))
    notebook["cells"].append(_cell(GRAPH_CELL))
    for i, cell in enumerate(notebook["cells"]):
        cell["id"] = f"c{i}"
    (root / QUICKSTART.name).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    shutil.copy(PIPELINE, root / PIPELINE.name)
    return QUICKSTART.name


@pytest.fixture(scope="module")
def quickstart(browser, lab, request) -> Iterator[object]:  # noqa: ANN001
    """A page on the quickstart copy, run top to bottom once in JupyterLab."""
    name = _write_quickstart(lab.folder(FOLDER))
    with lab.own_kernels():
        page = new_page(browser, viewport={"width": 1400, "height": 1400})
        with explained(request, page, lab):
            open_notebook(page, lab, f"{FOLDER}/{name}", workspace="widgets")
            # The screenshots get the whole width: no file browser beside the notebook.
            page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
            assert run_all(page) == []
            yield page
        page.context.close()


def _scroll_to(locator) -> None:  # noqa: ANN001
    """JupyterLab renders cells lazily (windowing): bring the output into view first."""
    locator.scroll_into_view_if_needed(timeout=WAIT_MS)


def test_run_cards_render_live_with_status_metrics_and_link(quickstart, screenshots):  # noqa: ANN001
    page = quickstart
    cards = page.locator(CARD)
    for i, name in enumerate(TRACKED):
        card = cards.nth(i)
        _scroll_to(card)
        card.locator(".mlops-status[data-status=FINISHED]").wait_for(timeout=WAIT_MS)
        # The card learns its run id from the background writer: wait for the link.
        card.locator("a[href*='/runs/']").wait_for(timeout=WAIT_MS)
        assert card.locator("b").first.inner_text() == name
        metrics = card.locator(".mlops-metrics").inner_text()
        assert "accuracy=" in metrics and "f1=" in metrics
        run_id = card.locator("code").inner_text().strip()
        href = card.locator("a[href*='/runs/']").get_attribute("href")
        assert re.search(rf"#/(experiments/\d+/)?runs/{run_id}$", href), href
    assert cards.count() == len(TRACKED)
    assert _card_names_by_cell(page) == TRACKED  # each card sits under its own tracked cell
    # The HTML card, not its text/plain stand-in.
    assert page.get_by_text("run card: ").count() == 0
    assert page.get_by_text(ERROR_TEXT).count() == 0
    cards.nth(0).screenshot(path=str(screenshots / "run-card.png"))


def _card_names_by_cell(page) -> list[str]:  # noqa: ANN001
    """For each `%%mlops track NAME` cell, in order: the name on the live card in its output."""
    return page.evaluate(
        f"{NOTEBOOK_JS}.content.widgets"
        ".filter(c => c.model.sharedModel.getSource().startsWith('%%mlops track'))"
        f".map(c => {{ const card = c.node.querySelector({json.dumps(CARD)});"
        " return card ? card.querySelector('b').textContent : null; })")


def _browser(page) -> object:  # noqa: ANN001
    browser = page.locator(BROWSER).first
    _scroll_to(browser)
    browser.locator("table.mlops-runs").wait_for(timeout=WAIT_MS)
    return browser


def _filter(page, browser, text: str, shown: str) -> None:  # noqa: ANN001
    """Type a filter and press Enter (which sends it to the kernel); wait for the count."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    field = browser.locator(".widget-text input").first
    field.fill(text)
    field.press("Enter")
    try:
        page.wait_for_function(
            f"() => document.querySelector('{BROWSER}').textContent.includes({shown!r})",
            timeout=WAIT_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"filtered on {text!r}, the runs browser does not say {shown!r}:"
                             f" {browser.inner_text()!r}") from None


def _count(browser) -> tuple[int, int]:  # noqa: ANN001
    text = browser.get_by_text(re.compile(r"^\d+ of \d+ runs$")).inner_text()
    shown, total = re.match(r"(\d+) of (\d+) runs", text).groups()
    return int(shown), int(total)


def _column(browser, header: str) -> list[str]:  # noqa: ANN001
    return browser.locator("table.mlops-runs").evaluate(
        "(t, h) => { const i = [...t.querySelectorAll('thead th')].map(th => th.textContent)"
        ".indexOf(h); return [...t.querySelectorAll('tbody tr')]"
        ".map(r => r.children[i].textContent); }", header)


def test_runs_browser_filters_sorts_and_compares(quickstart, screenshots):  # noqa: ANN001
    page = quickstart
    browser = _browser(page)
    assert _count(browser) == (3, 3)
    assert sorted(_column(browser, "name")) == sorted(TRACKED)

    # Filter on a param (`key=value`, on the client); Enter sends the text to the kernel.
    _filter(page, browser, "n_estimators=100", "1 of 3 runs")
    assert _column(browser, "name") == ["forest"]
    _filter(page, browser, "", "3 of 3 runs")

    # Sort by name, then by a metric: the table's rows follow (descending by default).
    sort = browser.locator(".widget-dropdown select").first
    orders = []
    for column in ("name", "metrics.f1"):
        sort.select_option(label=column)
        page.wait_for_function(
            "([sel, h]) => { const t = document.querySelector(sel + ' table.mlops-runs');"
            " const i = [...t.querySelectorAll('thead th')].map(th => th.textContent).indexOf(h);"
            " const v = [...t.querySelectorAll('tbody tr')].map(r => r.children[i].textContent);"
            " const k = v.map(x => isNaN(Number(x)) ? x : Number(x));"
            " return k.every((x, j) => j === 0 || k[j - 1] >= x); }",
            arg=[BROWSER, column], timeout=WAIT_MS)
        orders.append(_column(browser, "name"))
    assert orders[0] == sorted(TRACKED, reverse=True) and orders[1] != orders[0]
    values = [float(v) for v in _column(browser, "metrics.f1")]
    assert values == sorted(values, reverse=True) and len(values) == 3

    # Compare two runs: the params that differ, and one chart per metric.
    browser.locator(".widget-select-multiple select").first.select_option(
        label=[o for o in _options(browser) if o.startswith(("logreg", "forest"))])
    compare = browser.locator(".mlops-compare")
    compare.locator("table.mlops-params-differ").wait_for(timeout=WAIT_MS)
    # Two runs: the metric table has a column per run besides the metric's name.
    compare.locator("table.mlops-metrics thead th").nth(2).wait_for(timeout=WAIT_MS)
    assert compare.locator("table.mlops-metrics thead th").count() == 3
    differ = compare.locator("table.mlops-params-differ").inner_text()
    assert "C" in differ and "n_estimators" in differ
    metrics = compare.locator("table.mlops-metrics tbody tr td:first-child").all_inner_texts()
    charts = compare.locator(".mlops-chart[data-metric]")
    assert sorted(charts.evaluate_all("cs => cs.map(c => c.dataset.metric)")) == sorted(metrics)
    assert compare.locator(".mlops-chart[data-metric] svg").count() == len(metrics) >= 2
    assert page.get_by_text(ERROR_TEXT).count() == 0
    browser.screenshot(path=str(screenshots / "runs-browser.png"))


def _options(browser) -> list[str]:  # noqa: ANN001
    return browser.locator(".widget-select-multiple select option").all_inner_texts()


def test_step_graph_draws_the_pipeline_steps(quickstart):  # noqa: ANN001
    page = quickstart
    graph = page.locator(".jupyter-widgets.mlops-step-graph").first
    _scroll_to(graph)
    steps = graph.locator("svg g.mlops-step")
    steps.first.wait_for(timeout=WAIT_MS)
    names = steps.evaluate_all("gs => gs.map(g => g.dataset.step)")
    assert names == ["load", "features", "train-forest", "train-logreg", "evaluate"]
    assert graph.locator("svg path.mlops-edge").count() >= len(names) - 1
    assert page.get_by_text(ERROR_TEXT).count() == 0


NB7_CELLS = [
    "%load_ext jupyter_mlops",
    "%mlops start --experiment nb7",
    "%%mlops track first --params model --metrics score\nmodel = 'tree'\nscore = 0.5",
    "%%mlops track second --params model --metrics score\nmodel = 'linear'\nscore = 0.7",
    "%mlops end",
    "%mlops runs",
]


def _run_all_from_the_menu(page) -> None:  # noqa: ANN001
    """Run > Run All Cells, as a user does; again when the click found the command not enabled
    yet (a loaded machine's page still settling): then no cell's prompt shows it queued."""
    queued = page.locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(3):
        page.get_by_role("menuitem", name="Run").click()
        page.locator("li[data-command='runmenu:run-all']").click()
        try:
            queued.first.wait_for(timeout=30_000)  # the page marks queued cells at once
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError("Run > Run All Cells queued no cell")


def test_notebook_7_renders_the_run_card_and_the_runs_browser(page, lab):  # noqa: ANN001
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [dict(_cell(src), id=f"c{i}") for i, src in enumerate(NB7_CELLS)]
    (lab.root / "nb7-widgets.ipynb").write_text(json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "cells": cells, "metadata": {"kernelspec": kernel}}),
        encoding="utf-8")
    page.goto(f"{lab.url}/notebooks/nb7-widgets.ipynb?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=WAIT_MS)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
        timeout=WAIT_MS)
    _run_all_from_the_menu(page)
    cards = page.locator(CARD)
    for name in ("first", "second"):
        card = cards.filter(has_text=name).first
        card.locator(".mlops-status[data-status=FINISHED]").wait_for(timeout=WAIT_MS)
    browser = page.locator(BROWSER).first
    browser.locator("table.mlops-runs").wait_for(timeout=WAIT_MS)
    _filter(page, browser, "model=tree", "1 of ")
    assert _column(browser, "name") == ["first"]
    assert page.get_by_text(ERROR_TEXT).count() == 0
