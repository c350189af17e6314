"""The Runs tab of a notebook with 1,200 runs, in Chromium: the list draws only the rows in view
(and loads more as it is scrolled to its end), the last run shows at the end, each drawn row
is the run at its place; the panel reopens where it was after a reload, and while it is hidden
it asks the server nothing, however busy the kernel."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from .conftest import TOKEN
from .jupyterlab import KERNEL_IDLE_JS, NOTEBOOK_JS, PANEL, command, open_notebook, open_panel

FOLDER = "many_runs"
NOTEBOOK = f"{FOLDER}/Churn_Sweep.ipynb"
RUNS = 1200
BUSY_S = 6  # the busy cell: six of the panel's fast (1 s) poll intervals
BUSY_CELL = f"import time\ntime.sleep({BUSY_S})"
RUNS_URL = "/mlops/api/runs?"  # the list; a run's details are /runs/<id>
COUNT = f"{PANEL} .jp-mlops-count"
# Each drawn row with its name and its place in the list, from its offset below the list's top
# (the spacer above stands for the rows not drawn).
DRAWN_JS = f"""() => {{
  const panel = document.querySelector('{PANEL}');
  const body = panel.querySelector('table.jp-mlops-runs tbody');
  const rows = [...body.querySelectorAll('tr.jp-mlops-run')];
  const height = (rows[rows.length - 1].getBoundingClientRect().bottom
                  - rows[0].getBoundingClientRect().top) / rows.length;
  const view = panel.getBoundingClientRect();
  return rows.map(r => {{
    const box = r.getBoundingClientRect();
    return {{ name: r.querySelector('.jp-mlops-run-link').textContent,
             place: Math.round((box.top - body.getBoundingClientRect().top) / height),
             visible: box.bottom > view.top && box.top < view.bottom }};
  }});
}}"""


def _name(i: int) -> str:
    return f"sweep-{i:04d}"


def _write(lab) -> None:  # noqa: ANN001
    """The notebook (one cell that keeps the kernel busy) and its RUNS finished runs, written
    straight into its folder's store (seconds, where 1,200 client calls take minutes)."""
    from mlflow import MlflowClient

    from benchmarks.bench_server import FinishedRun, insert_runs
    from jupyter_mlops.steps.mlflow_vocabulary import NOTEBOOK_TAG
    from jupyter_mlops.tracking.notebook_info import tag_value

    folder = lab.folder(FOLDER)
    path = lab.root / NOTEBOOK
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = {"cell_type": "code", "id": "busy", "metadata": {}, "source": BUSY_CELL,
            "outputs": [], "execution_count": None}
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [cell],
                                "metadata": {"kernelspec": kernel}}), encoding="utf-8")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    experiment = MlflowClient(tracking_uri=uri).create_experiment("Churn Sweep")
    start = int(time.time() * 1000) - RUNS * 1000
    runs = [FinishedRun(uuid.uuid4().hex, _name(i), start + i * 1000,
                        {"accuracy": round(0.5 + i / (4 * RUNS), 4)}, {"n_estimators": str(i)},
                        {"mlflow.runName": _name(i), NOTEBOOK_TAG: tag_value(path)})
            for i in range(RUNS)]
    insert_runs(uri, experiment, runs)


@pytest.fixture(scope="module")
def notebook(lab):  # noqa: ANN001
    _write(lab)
    return NOTEBOOK


def _check_drawn(page, first_place: int | None = None) -> list[dict]:  # noqa: ANN001
    """Every drawn row is the run at its place (newest first); far fewer rows than runs."""
    drawn = page.evaluate(DRAWN_JS)
    assert 0 < len(drawn) < 150, len(drawn)
    wrong = [row for row in drawn if row["name"] != _name(RUNS - 1 - row["place"])]
    assert wrong == [], (len(drawn), drawn[0], wrong)
    places = [row["place"] for row in drawn]
    assert places == list(range(places[0], places[0] + len(drawn)))
    if first_place is not None:
        assert places[0] == first_place
    return [row for row in drawn if row["visible"]]


def test_a_thousand_runs_scroll_to_the_last(page, lab, notebook, screenshots):  # noqa: ANN001
    open_notebook(page, lab, notebook, "churn_sweep_list")
    panel = open_panel(page)
    page.locator(COUNT, has_text=f"50 of {RUNS} runs").wait_for()
    visible = _check_drawn(page, first_place=0)
    assert visible[0]["name"] == _name(RUNS - 1)

    # Scrolled to its end again and again, the list loads the rest and ends on the oldest run.
    page.wait_for_function(f"""() => {{
      const panel = document.querySelector('{PANEL}');
      panel.scrollTop = panel.scrollHeight;
      const count = panel.querySelector('.jp-mlops-count');
      const rows = [...panel.querySelectorAll('tr.jp-mlops-run')];
      const last = rows[rows.length - 1];
      return count && count.textContent === '{RUNS} of {RUNS} runs'
        && last && last.querySelector('.jp-mlops-run-link').textContent === '{_name(0)}'
        && last.getBoundingClientRect().bottom <= panel.getBoundingClientRect().bottom + 1;
    }}""")
    visible = _check_drawn(page)
    assert visible[-1]["name"] == _name(0) and len(visible) > 5
    panel.screenshot(path=str(screenshots / "panel-many-runs.png"))

    # Halfway down: the rows there, drawn anew when the scroll settles.
    middle = page.evaluate(f"(() => {{ const p = document.querySelector('{PANEL}');"
                           " p.scrollTop = p.scrollHeight / 2; return p.scrollTop; })()")
    page.wait_for_function(f"() => ({DRAWN_JS})().some(r => r.visible && r.place > 400)")
    visible = _check_drawn(page)
    assert all(400 < row["place"] < 800 for row in visible), (middle, visible)


def _runs_requests(page) -> list[str]:  # noqa: ANN001
    """The URLs of the run-list requests the page makes from now on."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if RUNS_URL in r.url else None)
    return seen


def test_reopens_after_reload_and_stands_by_when_hidden(page, lab, notebook):  # noqa: ANN001
    open_notebook(page, lab, notebook, "churn_sweep_restore")
    # The workspace saved with the panel as the sidebar's open tab, the page reloaded: the
    # layout restorer opens the panel again, with its runs.
    with page.expect_request(lambda r: r.method == "PUT" and "/lab/api/workspaces/" in r.url
                             and '"current":"jp-mlops-panel"' in (r.post_data or "")):
        open_panel(page, widen=0)
    page.goto(f"{lab.url}/lab/workspaces/churn_sweep_restore?token={TOKEN}")
    page.wait_for_function(f"() => {KERNEL_IDLE_JS}")
    page.locator(COUNT, has_text=f"of {RUNS} runs").wait_for()
    assert page.locator(PANEL).is_visible()

    # Hidden (its tab clicked again, the sidebar collapses): a busy kernel would make the
    # panel poll every second, yet no run list is asked for until the cell has ended.
    page.click("li.lm-TabBar-tab[data-id='jp-mlops-panel']")
    page.locator(PANEL).wait_for(state="hidden")
    seen = _runs_requests(page)
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = 0")
    command(page, "notebook:run-cell")
    page.wait_for_function(f"() => {NOTEBOOK_JS}.content.widgets[0].model.executionCount"
                           " !== null", timeout=BUSY_S * 1000 * 20)
    assert seen == []

    # Shown again: the list is fetched at once, and the poll goes on.
    with page.expect_request(lambda r: RUNS_URL in r.url):
        page.click("li.lm-TabBar-tab[data-id='jp-mlops-panel']")
    page.locator(PANEL).wait_for(state="visible")
    with page.expect_request(lambda r: RUNS_URL in r.url):
        pass
