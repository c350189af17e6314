"""JupyterLab in Chromium: tracked cells of the example appear as runs in the MLOps panel while
they run; the panel sorts, filters, compares and shows a run's code; Export to pipeline shows
the DAG (or the error naming a cell) and saves the YAML; the tagging commands set cell tags."""

from __future__ import annotations

import json
import shutil

from .conftest import MLFLOW_UI, ROOT, TOKEN, UI_WAIT_MS
from .notebook import EDGES, RUNS, STEPS, write_notebook

WAIT_MS = UI_WAIT_MS  # an upper bound for waits on the UI, not a measured timing
PANEL = "#jp-mlops-panel"
NAMES_JS = f"[...document.querySelectorAll('{PANEL} .jp-mlops-run-link')].map(a => a.textContent)"
NOTEBOOK_JS = "window.jupyterapp.shell.currentWidget"
EXPORT_BUTTON = "[data-command='jupyter-mlops:export-pipeline']"
SHIPPED_PIPELINE = ROOT / "notebooks" / "02_tagged_pipeline.ipynb"
# The Runs list's headers as shown: each one whole inside the panel (not cut by its cell or by
# the panel's edge) and on one line (its text's line boxes share one top).
HEADERS_JS = f"""() => {{
  const panel = document.querySelector('{PANEL}');
  const edge = panel.getBoundingClientRect();
  const shown = [...panel.querySelectorAll('table.jp-mlops-runs thead th')]
    .filter(th => th.getClientRects().length);
  return {{
    panelScrolls: panel.scrollWidth > panel.clientWidth,
    wide: [...panel.querySelectorAll('*')]
      .filter(e => !e.closest('td')  // a cell's content is clipped by the cell
        && e.getBoundingClientRect().right > edge.left + panel.clientWidth)
      .map(e => e.tagName + '.' + e.className).slice(0, 8),
    headers: shown.map(th => {{
      const box = th.getBoundingClientRect();
      const text = document.createRange();
      text.selectNodeContents(th);
      const tops = new Set([...text.getClientRects()].map(r => Math.round(r.top)));
      return {{ text: th.textContent, cut: th.scrollWidth > th.clientWidth
        || box.left < edge.left || box.right > edge.left + panel.clientWidth,
        lines: tops.size }};
    }})
  }};
}}"""
EXPLORE = ("import jupyter_mlops\n"
           "with jupyter_mlops.track('explore', experiment='Churn Explore') as run:\n"
           "    run.log_metrics({'accuracy': 0.91})")


def _open_notebook(page, lab, name: str) -> str:  # noqa: ANN001
    """Open `name` in a workspace of its own (no notebook of an earlier test restored);
    returns a CSS selector of its panel."""
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    page.goto(f"{lab.url}/lab/workspaces/{stem}/tree/{name}?token={TOKEN}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=WAIT_MS)
    page.wait_for_function(
        f"() => {{ const w = {NOTEBOOK_JS};"
        " return w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle'; }", timeout=WAIT_MS)
    return "#" + page.evaluate(f"{NOTEBOOK_JS}.id")


def _command(page, command: str) -> None:  # noqa: ANN001
    """Start a command without waiting for it (a dialog it opens would block the wait)."""
    page.evaluate(f"() => {{ void window.jupyterapp.commands.execute({command!r}); }}")


def _open_panel(page) -> object:  # noqa: ANN001
    page.click("li.lm-TabBar-tab[data-id='jp-mlops-panel']")
    panel = page.locator(PANEL)
    panel.locator(".jp-mlops-header").wait_for(timeout=WAIT_MS)
    # Widen the sidebar so the screenshots show the metric columns.
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    if box:
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
        page.mouse.down()
        page.mouse.move(box["x"] + 260, box["y"] + 200, steps=5)
        page.mouse.up()
    return panel


def _column(page, index: int) -> list[str]:  # noqa: ANN001
    return page.evaluate(f"[...document.querySelectorAll('{PANEL} tr.jp-mlops-run')]"
                         f".map(r => r.children[{index}].textContent)")


def _assert_headers_fit(page) -> None:  # noqa: ANN001
    """Every header the Runs list shows is whole and on one line at the panel's width (the
    panel drops the least important columns to make room), and the panel does not scroll
    sideways; status, run and duration are always among them."""
    shown = page.evaluate(HEADERS_JS)
    headers = shown["headers"]
    assert {"status", "run", "duration"} <= {h["text"] for h in headers}, headers
    assert [h for h in headers if h["cut"] or h["lines"] > 1] == [], headers
    assert not shown["panelScrolls"], shown


def _tags(page, cell: int) -> list[str]:  # noqa: ANN001
    return page.evaluate(f"{NOTEBOOK_JS}.content.widgets[{cell}].model.getMetadata('tags') || []")


def test_runs_appear_live_then_sort_filter_compare_and_details(page, lab, screenshots):  # noqa: ANN001
    write_notebook(lab.root / "churn.ipynb")
    _open_notebook(page, lab, "churn.ipynb")
    panel = _open_panel(page)
    assert panel.locator("a.jp-mlops-link", has_text="MLflow UI").get_attribute("href") == MLFLOW_UI

    # The panel is open before the cells run: runs must come without a refresh click.
    _command(page, "notebook:run-all-cells")
    page.wait_for_function(f"() => {json.dumps(RUNS)}.every(n => {NAMES_JS}.includes(n))",
                           timeout=WAIT_MS)
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{PANEL} tr.jp-mlops-status-finished')]"
        f".filter(r => {json.dumps(RUNS)}.includes(r.querySelector('.jp-mlops-run-link')"
        ".textContent)).length === 2", timeout=WAIT_MS)
    page.locator(f"{PANEL} th", has_text="accuracy").first.wait_for(timeout=WAIT_MS)

    # Filter on the client; sort on the server (MLflow's order: missing values last).
    panel.locator(".jp-mlops-filter").fill("forest")
    assert page.evaluate(NAMES_JS) == ["train-forest"]
    panel.locator(".jp-mlops-filter").fill("")
    column = 5 + page.evaluate(f"[...document.querySelectorAll('{PANEL} thead th')].slice(5)"
                               ".map(th => th.textContent.replace(/[ ▲▼]/g, ''))"
                               ".indexOf('accuracy')")
    for arrow, descending in (("▼", True), ("▲", False)):
        panel.locator("th.jp-mlops-sortable", has_text="accuracy").first.click()
        page.locator(f"{PANEL} th", has_text=f"accuracy {arrow}").wait_for(timeout=WAIT_MS)
        cells = _column(page, column)
        values = [v for v in cells if v.strip()]
        assert len(values) == 2 and cells[:2] == values  # runs without the metric go last
        assert [float(v) for v in values] == sorted(map(float, values), reverse=descending)

    # Compare the two tracked runs: a metric table and a chart of the shared metric.
    for name in RUNS:
        page.check(f"{PANEL} input[aria-label='select {name}']")
    panel.locator(".jp-mlops-compare-button").click()
    table = panel.locator(".jp-mlops-compare-table")
    table.wait_for(timeout=WAIT_MS)
    assert {"accuracy", "forest_accuracy", "logreg_accuracy"} <= set(
        table.locator("th").all_inner_texts())
    panel.locator(".jp-mlops-metric-picker").select_option("accuracy")
    assert panel.locator(".jp-mlops-chart rect").count() == 2
    panel.screenshot(path=str(screenshots / "compare.png"))

    # A run's details: metrics, params, the cell's code, and inserting that code.
    panel.locator("button", has_text="← Runs").click()
    panel.locator(".jp-mlops-run-link", has_text="train-forest").click()
    source = panel.locator(".jp-mlops-source")
    source.wait_for(timeout=WAIT_MS)
    assert "RandomForestClassifier(" in source.inner_text()
    details = panel.locator(".jp-mlops-details").inner_text()
    assert "forest_accuracy" in details and "n_estimators" in details
    datasets = panel.locator(".jp-mlops-datasets").inner_text()  # lineage: data, digest, rows
    assert "X_train" in datasets and "training" in datasets
    panel.screenshot(path=str(screenshots / "details.png"))
    cells = page.evaluate(f"{NOTEBOOK_JS}.content.widgets.length")
    panel.locator("button", has_text="Insert into notebook").click()
    page.wait_for_function(f"() => {NOTEBOOK_JS}.content.widgets.length === {cells + 1}")
    inserted = page.evaluate(f"{NOTEBOOK_JS}.content.activeCell.model.sharedModel.getSource()")
    assert "forest.fit(X_train, y_train)" in inserted
    page.screenshot(path=str(screenshots / "lab.png"))


def test_export_to_pipeline_shows_the_dag_and_saves_the_yaml(page, lab):  # noqa: ANN001
    write_notebook(lab.root / "export.ipynb")
    notebook = _open_notebook(page, lab, "export.ipynb")
    assert page.evaluate("window.jupyterapp.commands.label('jupyter-mlops:export-pipeline')") \
        == "Export to pipeline"

    page.click(f"{notebook} .jp-NotebookPanel-toolbar {EXPORT_BUTTON}")
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mlops-dag-box[data-laid-out=true]").wait_for(timeout=WAIT_MS)
    steps = dialog.locator(".jp-mlops-dag-node").evaluate_all("ns => ns.map(n => n.dataset.step)")
    assert steps == STEPS
    assert dialog.locator(".jp-mlops-dag-edge").count() == EDGES
    assert "n_estimators=120" in dialog.locator(".jp-mlops-params").inner_text()
    # The README's screenshot of this dialog is taken on the shipped notebook
    # (test_shipped_notebooks); here: the YAML is saved once the contents API answers.
    with page.expect_response(lambda r: r.request.method == "PUT"
                              and "/api/contents/export.pipeline.yaml" in r.url) as saved:
        dialog.locator("button", has_text="Save YAML").click()
    assert saved.value.ok
    text = (lab.root / "export.pipeline.yaml").read_text()
    assert "pipelineInfo" in text and all(step in text for step in STEPS)


def test_export_of_a_broken_notebook_names_the_cell(page, lab):  # noqa: ANN001
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags}, "source": src,
              "outputs": [], "execution_count": None}
             for i, (tags, src) in enumerate([(["step:a"], "x = 1"),
                                              (["step:b", "needs:nowhere"], "y = x + 1")])]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
                "metadata": {"kernelspec": kernel}}
    (lab.root / "broken.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    notebook = _open_notebook(page, lab, "broken.ipynb")
    page.click(f"{notebook} .jp-NotebookPanel-toolbar {EXPORT_BUTTON}")
    error = page.locator(".jp-Dialog .jp-mlops-error")
    error.wait_for(timeout=WAIT_MS)
    message = error.inner_text()
    assert "cell 2 (" in message and "nowhere" in message
    assert str(lab.root) not in message


def test_tagging_commands_set_the_cell_tags(page, lab):  # noqa: ANN001
    write_notebook(lab.root / "tags.ipynb")
    _open_notebook(page, lab, "tags.ipynb")
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = 0")
    page.evaluate("window.jupyterapp.commands.execute('notebook:insert-cell-above')")
    assert _tags(page, 0) == []
    for command, expected in (("tag-skip", ["skip"]), ("tag-setup", ["setup"]),
                              ("tag-parameters", ["parameters"]), ("tag-parameters", [])):
        _command(page, f"jupyter-mlops:{command}")
        tags = f"JSON.stringify({NOTEBOOK_JS}.content.widgets[0].model.getMetadata('tags') || [])"
        page.wait_for_function(f"() => {tags} === {json.dumps(json.dumps(expected))}")
    for name, expected in (("Not A Name", []), ("score", ["step:score"])):
        _command(page, "jupyter-mlops:tag-step")
        field = page.locator(".jp-Dialog input")
        field.fill(name)
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        page.locator(".jp-Dialog").wait_for(state="detached", timeout=WAIT_MS)
        assert _tags(page, 0) == expected
    # The refusal is a notification; the status bar's bell opens the list of them.
    page.locator(".jp-Notification-Status").click()
    page.get_by_text('"Not A Name" is not a step name').wait_for(timeout=WAIT_MS)


def test_notebook_7_shows_the_export_button(page, lab):  # noqa: ANN001
    write_notebook(lab.root / "nb7.ipynb")
    page.goto(f"{lab.url}/notebooks/nb7.ipynb?token={TOKEN}")
    button = page.locator(f".jp-NotebookPanel-toolbar {EXPORT_BUTTON}")
    button.wait_for(timeout=WAIT_MS)
    button.click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mlops-dag-box[data-laid-out=true]").wait_for(timeout=WAIT_MS)
    steps = dialog.locator(".jp-mlops-dag-node").evaluate_all("ns => ns.map(n => n.dataset.step)")
    assert steps == STEPS


def _run_locally(page, notebook: str) -> None:  # noqa: ANN001
    """Export to pipeline, Run locally; wait until the panel shows the run succeeded."""
    page.click(f"{notebook} .jp-NotebookPanel-toolbar {EXPORT_BUTTON}")
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mlops-dag-box[data-laid-out=true]").wait_for(timeout=WAIT_MS)
    dialog.locator("button", has_text="Run locally").click()
    page.locator(f"{PANEL} .jp-mlops-job").wait_for(timeout=WAIT_MS)  # the panel opens on it
    page.locator(f"{PANEL} .jp-mlops-job-succeeded, {PANEL} .jp-mlops-job-failed").wait_for(
        timeout=WAIT_MS)
    log = page.locator(f"{PANEL} .jp-mlops-log").inner_text()
    assert page.locator(f"{PANEL} .jp-mlops-job-succeeded").count() == 1, log
    assert "local run finished" in log
    dialog.locator("button.jp-mod-reject", has_text="Close").click()  # it shows the run too
    dialog.wait_for(state="detached")


def _wait_names(page, expected: list[str], pipelines: int = 0) -> None:  # noqa: ANN001
    """Wait until the panel lists exactly the runs named `expected` (in any order) and
    `pipelines` pipeline runs (`pipeline-<run id>`)."""
    wanted = json.dumps(sorted(expected))
    page.wait_for_function(
        f"() => {{ const names = {NAMES_JS};"
        " const rest = names.filter(n => !n.startsWith('pipeline-')).sort();"
        f" return names.length - rest.length === {pipelines}"
        f" && JSON.stringify(rest) === JSON.stringify({wanted}); }}",
        timeout=WAIT_MS)


def _pipeline_metrics_and_details(page) -> None:  # noqa: ANN001
    """The metric columns are the pipeline's own (its `metrics` cell), not the runner's
    bookkeeping (a step's cache hit, duration), and the pipeline's row shows them; its details
    say where its work is and a step's link its executed notebook, neither 'not recorded'."""
    pipeline = f"{PANEL} tr.jp-mlops-run:has(.jp-mlops-run-link[title^='pipeline-'])"
    page.wait_for_function(  # its metrics may land after its row
        f"() => [...document.querySelectorAll(\"{pipeline} td.jp-mlops-col-metric\")]"
        ".map(td => td.textContent).filter(Boolean).length === 2", timeout=WAIT_MS)
    headers = page.locator(f"{PANEL} th.jp-mlops-col-metric").all_text_contents()
    assert sorted(headers) == ["accuracy", "f1"], headers
    page.locator(f"{pipeline} .jp-mlops-run-link").click()
    details = page.locator(f"{PANEL} .jp-mlops-details")
    details.get_by_text("pipeline run: see its steps").wait_for()
    assert "not recorded" not in details.inner_text()
    details.locator("button", has_text="← Runs").click()
    page.locator(f"{PANEL} .jp-mlops-run-link", has_text="evaluate").click()
    details.locator("a.jp-mlops-artifact", has_text="evaluate.ipynb").first.wait_for()
    assert "not recorded" not in details.inner_text()
    assert "duration_s" in details.locator(".jp-mlops-metrics").inner_text()  # all of them here
    details.locator("button", has_text="← Runs").click()


def test_the_panel_lists_the_notebooks_runs_of_every_experiment(page, lab):  # noqa: ANN001
    # Named as shipped: its pipeline runs go to the experiment `02-tagged-pipeline`, not to one
    # named after the file; the panel finds them by the notebook's path all the same.
    path = lab.root / "panel_runs" / "02_tagged_pipeline.ipynb"
    path.parent.mkdir(exist_ok=True)
    shutil.copy(SHIPPED_PIPELINE, path)
    notebook = _open_notebook(page, lab, "panel_runs/02_tagged_pipeline.ipynb")
    _run_locally(page, notebook)
    _wait_names(page, STEPS, pipelines=1)  # the pipeline's run and one run per step
    _assert_headers_fit(page)  # the panel opened on the run: JupyterLab's default width
    _pipeline_metrics_and_details(page)

    # A run of this notebook in an experiment of the user's choosing, from a new cell.
    cells = page.evaluate(f"{NOTEBOOK_JS}.content.widgets.length")
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = {cells - 1}")
    page.evaluate("window.jupyterapp.commands.execute('notebook:insert-cell-below')")
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCell.model.sharedModel"
                  f".setSource({json.dumps(EXPLORE)})")
    _command(page, "notebook:run-cell")
    _wait_names(page, [*STEPS, "explore"], pipelines=1)

    picker = f"{PANEL} .jp-mlops-experiment-picker"  # redrawn on each refresh: found anew
    options = page.locator(picker).locator("option").all_inner_texts()
    assert options == ["all experiments (7)", "02-tagged-pipeline (6)", "Churn Explore (1)"]
    page.locator(picker).select_option(label="Churn Explore (1)")
    _wait_names(page, ["explore"])
    assert page.locator(f"{PANEL} .jp-mlops-count").inner_text() == "1 of 1 runs"
    page.locator(picker).select_option(label="02-tagged-pipeline (6)")
    _wait_names(page, STEPS, pipelines=1)
    page.locator(picker).select_option(index=0)
    _wait_names(page, [*STEPS, "explore"], pipelines=1)


def test_notebook_7_has_the_panel_in_its_left_area(page, lab, screenshots):  # noqa: ANN001
    path = lab.folder("nb7_panel") / "02_tagged_pipeline.ipynb"  # as shipped (the screenshot)
    shutil.copy(SHIPPED_PIPELINE, path)
    page.goto(f"{lab.url}/notebooks/nb7_panel/02_tagged_pipeline.ipynb?token={TOKEN}")
    page.locator(f".jp-NotebookPanel-toolbar {EXPORT_BUTTON}").wait_for(timeout=WAIT_MS)
    assert not page.locator(PANEL).is_visible()  # the left area starts collapsed
    _run_locally(page, ".jp-NotebookPanel")  # opens the panel there, following the run
    assert page.locator(f"#jp-left-stack {PANEL}").is_visible()
    _wait_names(page, STEPS, pipelines=1)
    _assert_headers_fit(page)  # Notebook 7's narrower left area
    page.screenshot(path=str(screenshots / "notebook7-panel.png"))
