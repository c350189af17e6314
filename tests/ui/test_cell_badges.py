"""Tagging you can see, in JupyterLab: the shipped pipeline notebook's cells show their step (a
bar and a badge in the step's DAG colour) and role; a step set with the cell toolbar's control
shows at once, unsaved, and a name the new step reads before anything binds it is a warning on
that cell."""

from __future__ import annotations

import json
import shutil

from .conftest import ROOT
from .jupyterlab import EXPORT_BUTTON, NOTEBOOK_JS, open_notebook

SHIPPED = ROOT / "notebooks" / "02_tagged_pipeline.ipynb"
UNTAGGED = ROOT / "notebooks" / "01_tracking_quickstart.ipynb"  # a `parameters` tag, no step
STEP_CONTROL = ".jp-Cell.jp-mod-active [data-command='jupyter-mlops:tag-step']"
# What each tagged cell of the shipped notebook shows: (step, roles), by cell index.
EXPECTED = {1: [None, ["parameters"]], 2: [None, ["setup"]], 4: ["load", []],
            5: [None, ["skip"]], 7: ["features", []], 9: ["train-forest", []],
            10: ["train-logreg", []], 12: ["evaluate", []], 13: ["evaluate", ["metrics"]]}
BADGES_JS = (f"Object.fromEntries({NOTEBOOK_JS}.content.widgets.map((c, i) => [i, ["
             " c.node.querySelector('.jp-mlops-cell-step')?.dataset.step ?? null,"
             " [...c.node.querySelectorAll('.jp-mlops-cell-role')].map(r => r.dataset.role)]])"
             ".filter(([, [step, roles]]) => step || roles.length))")
COLORS_JS = (f"Object.fromEntries({NOTEBOOK_JS}.content.widgets.map((c, i) => [i,"
             " c.node.style.getPropertyValue('--jp-mlops-step-color')])"
             ".filter(([, color]) => color))")
NEW_CELL = "report = f'{accuracy:.3f} above {threshold}'"


def _badges(page) -> dict[int, list]:  # noqa: ANN001
    return {int(i): v for i, v in page.evaluate(BADGES_JS).items()}


def test_cells_show_their_step_and_the_graph_follows_edits(page, lab, screenshots):  # noqa: ANN001
    shutil.copy(SHIPPED, lab.folder("cell_badges") / "Churn_Steps.ipynb")
    notebook = open_notebook(page, lab, "cell_badges/Churn_Steps.ipynb", "cell-badges")
    page.locator(f"{notebook} .jp-mlops-cell-step").first.wait_for()
    for index in EXPECTED:  # a windowed notebook renders a cell when it comes into view
        page.evaluate(f"{NOTEBOOK_JS}.content.scrollToItem({index})")
    page.wait_for_function(f"() => Object.keys({BADGES_JS}).length === {len(EXPECTED)}")
    assert _badges(page) == EXPECTED
    assert page.locator(f"{notebook} .jp-mlops-cell-warning").count() == 0

    # One colour per step, the same on the step's cells and on its node in the Export DAG.
    colors = {int(i): c for i, c in page.evaluate(COLORS_JS).items()}
    by_step = {EXPECTED[i][0]: c for i, c in colors.items()}
    assert colors[12] == colors[13] and len(set(by_step.values())) == len(by_step) == 5
    page.click(f"{notebook} .jp-NotebookPanel-toolbar {EXPORT_BUTTON}")
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mlops-dag-box[data-laid-out=true]").wait_for()  # ELK lays it out
    dag = dialog.locator(".jp-mlops-dag-node").evaluate_all(
        "ns => Object.fromEntries(ns.map(n => [n.dataset.step,"
        " n.querySelector('.jp-mlops-dag-node-color').getAttribute('fill')]))")
    assert dag == by_step
    dialog.locator("button", has_text="Close").click()
    dialog.wait_for(state="detached")

    # A new last cell made a step with the cell toolbar's control: its badge and its warning
    # (it reads `threshold`, which nothing binds) show without a save.
    cells = page.evaluate(f"{NOTEBOOK_JS}.content.widgets.length")
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = {cells - 1}")
    page.evaluate("window.jupyterapp.commands.execute('notebook:insert-cell-below')")
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCell.model.sharedModel"
                  f".setSource({json.dumps(NEW_CELL)})")
    page.locator(f"{notebook} {STEP_CONTROL}").click()
    page.locator(".jp-Dialog input").fill("report")
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    new = page.locator(f"{notebook} .jp-Cell").nth(cells)
    new.locator(".jp-mlops-cell-step[data-step='report']").wait_for(state="attached")
    warning = new.locator(".jp-mlops-cell-warning")
    warning.wait_for()
    assert "'threshold'" in warning.inner_text()
    assert page.locator(f"{notebook} .jp-mlops-cell-warning").count() == 1  # on that cell only
    assert page.locator(f"{notebook} {STEP_CONTROL}").inner_text() == "step: report"
    assert page.evaluate(f"{NOTEBOOK_JS}.context.model.dirty")
    assert "step:report" not in (lab.root / "cell_badges" / "Churn_Steps.ipynb").read_text()
    assert _badges(page)[13] == ["evaluate", ["metrics"]]  # the cell above kept its step
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = 1")  # its toolbar out of view
    new.scroll_into_view_if_needed()
    page.locator(notebook).screenshot(path=str(screenshots / "cell-badges.png"))

    # The tagging commands are in the cell's context menu.
    new.click(button="right")
    page.locator(".lm-Menu-item", has_text="Pipeline Tags").hover()
    page.locator(".lm-Menu-item", has_text="Skipped in pipelines").wait_for()
    page.keyboard.press("Escape")


def test_a_notebook_without_step_tags_shows_no_step_badge(page, lab):  # noqa: ANN001
    """It is one implicit step ("main" in the Export DAG): no cell carries a badge or a bar
    naming a step nobody wrote; the cell tagged `parameters` still shows its role."""
    shutil.copy(UNTAGGED, lab.folder("cell_badges") / "Churn_Quickstart.ipynb")
    notebook = open_notebook(page, lab, "cell_badges/Churn_Quickstart.ipynb", "untagged")
    page.locator(f"{notebook}[data-mlops-graph='ok']").wait_for(state="attached")
    page.evaluate(f"{NOTEBOOK_JS}.content.scrollToItem(2)")
    page.locator(f"{notebook} .jp-mlops-cell-role").wait_for()
    assert _badges(page) == {2: [None, ["parameters"]]}
    assert page.locator(f"{notebook} .jp-mlops-step-cell").count() == 0
