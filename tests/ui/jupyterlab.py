"""Driving a JupyterLab page as a user does, waiting on the page's own state (a kernel's status,
execution counts, a DOM attribute) rather than on fixed delays."""

from __future__ import annotations

import json

from .conftest import TOKEN, Lab

NOTEBOOK_JS = "window.jupyterapp.shell.currentWidget"
COMMANDS_JS = "window.jupyterapp.commands"
PANEL = "#jp-mlops-panel"
EXPORT_BUTTON = "[data-command='jupyter-mlops:export-pipeline']"
RUN_ALL_MS = 1_200_000  # an upper bound for a whole notebook (03 runs six sweeps) under load
CODE_CELLS_JS = f"{NOTEBOOK_JS}.content.widgets.filter(c => c.model.type === 'code')"
ERRORS_JS = (f"{CODE_CELLS_JS}.flatMap(c => c.model.outputs.toJSON())"
             ".filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)")
KERNEL_IDLE_JS = (f"(() => {{ const w = {NOTEBOOK_JS};"
                  " return !!(w && w.sessionContext && w.sessionContext.session"
                  " && w.sessionContext.session.kernel"
                  " && w.sessionContext.session.kernel.status === 'idle'); })()")


def open_notebook(page, lab: Lab, path: str, workspace: str) -> str:  # noqa: ANN001
    """Open `path` (relative to the root) in a workspace of its own, so no notebook of another
    test is restored; wait for its kernel. Returns a CSS selector of the notebook's panel."""
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{path}?token={TOKEN}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    page.wait_for_function(f"() => {KERNEL_IDLE_JS}")
    return "#" + page.evaluate(f"{NOTEBOOK_JS}.id")


def command(page, name: str) -> None:  # noqa: ANN001
    """Start a command without waiting for it (a dialog it opens would block the wait)."""
    page.evaluate(f"() => {{ void {COMMANDS_JS}.execute({json.dumps(name)}); }}")


def run_all(page, timeout_ms: float = RUN_ALL_MS) -> list[str]:  # noqa: ANN001
    """Run All, then wait until every code cell ran and the kernel is idle again, or a cell
    failed (Run All stops there). Returns the errors' texts, `ename: evalue`."""
    command(page, "notebook:run-all-cells")
    page.wait_for_function(
        f"() => {ERRORS_JS}.length > 0 || ({CODE_CELLS_JS}.every(c => c.model.executionCount"
        f" !== null) && {KERNEL_IDLE_JS})", timeout=timeout_ms)
    return page.evaluate(ERRORS_JS)


def output_text(page, source_start: str) -> str:  # noqa: ANN001
    """The text the cells whose code starts with `source_start` printed or displayed."""
    return page.evaluate(
        f"{CODE_CELLS_JS}.filter(c => c.model.sharedModel.getSource()"
        f".startsWith({json.dumps(source_start)}))"
        ".flatMap(c => c.model.outputs.toJSON())"
        ".map(o => o.text || (o.data && o.data['text/plain']) || '').join('')")


def open_panel(page, widen: int = 260) -> object:  # noqa: ANN001
    """Open the MLOps sidebar, widened by `widen` pixels so the metric columns show."""
    page.click("li.lm-TabBar-tab[data-id='jp-mlops-panel']")
    panel = page.locator(PANEL)
    panel.locator(".jp-mlops-header").wait_for()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    if widen and box:
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
        page.mouse.down()
        page.mouse.move(box["x"] + widen, box["y"] + 200, steps=5)
        page.mouse.up()
    return panel


PANEL_ROWS_JS = (f"[...document.querySelectorAll('{PANEL} tr.jp-mlops-run')].map(r => ({{"
                 " id: r.dataset.run,"
                 " name: r.querySelector('.jp-mlops-run-link').textContent,"
                 " status: [...r.classList].find(c => c.startsWith('jp-mlops-status-'))"
                 ".slice('jp-mlops-status-'.length) }))")


def wait_panel_rows(page, run_ids: dict[str, str]) -> dict[str, dict]:  # noqa: ANN001
    """Wait until the panel lists every run of `run_ids` (id -> status, lower case) with that
    status; the panel polls the server on its own. Returns the panel's rows by run id."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    wanted = json.dumps(run_ids)
    try:
        page.wait_for_function(
            f"() => {{ const rows = {PANEL_ROWS_JS}; const want = {wanted};"
            " return Object.keys(want).every(id => rows.some(r => r.id === id"
            " && r.status === want[id])); }")
    except PlaywrightTimeout:
        raise AssertionError(f"the panel does not list {run_ids}; it shows"
                             f" {page.evaluate(PANEL_ROWS_JS)} and says"
                             f" {page.locator(PANEL).inner_text()!r}") from None
    return {row["id"]: row for row in page.evaluate(PANEL_ROWS_JS)}


def screenshot_panel(page, path: str) -> None:  # noqa: ANN001
    """The panel down to its last line (not the empty sidebar below it)."""
    box = page.locator(PANEL).bounding_box()
    bottom = page.evaluate(f"Math.max(...[...document.querySelector('{PANEL}').children]"
                           ".map(c => c.getBoundingClientRect().bottom))")
    page.screenshot(path=path, clip={"x": box["x"], "y": box["y"], "width": box["width"],
                                     "height": min(box["height"], bottom - box["y"] + 12)})
