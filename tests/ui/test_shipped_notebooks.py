"""The shipped notebooks are the acceptance tests: notebooks/01-03, copied unchanged into the
server's root, opened in JupyterLab and run with Run All, as a new user would. The tests check
what that user sees: each run card FINISHED, with no problem and naming its model, `%mlops
end`'s truthful message, the MLOps panel listing the notebook's runs wherever they were logged,
and, in the store (mlflow.db in the root, as by default), every logged model READY.

The README's panel and Export dialog screenshots are taken here, from these notebooks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, UI_WAIT_MS, Lab, explained, new_page
from .jupyterlab import (
    EXPORT_BUTTON,
    PANEL,
    RUN_ALL_MS,
    open_notebook,
    open_panel,
    output_text,
    run_all,
    screenshot_panel,
    wait_panel_rows,
)

SHIPPED = ROOT / "notebooks"
QUICKSTART, PIPELINE, SWEEP = ("01_tracking_quickstart.ipynb", "02_tagged_pipeline.ipynb",
                               "03_sweep_and_compare.ipynb")
STORE_DEADLINE = 300.0  # seconds for records handed to the background sender to land
CARD = ".jp-OutputArea-output .mlops-run-card"
NOTEBOOK_TAG, LAUNCHED_FROM_TAG = "mlops.notebook", "mlops.launched_from"
TERMINAL = ("FINISHED", "FAILED", "KILLED")

# A whole notebook in the browser takes minutes on a loaded machine: the first test of a
# class also runs its notebook (a class fixture).
pytestmark = pytest.mark.timeout(1800)


# --- the notebooks as shipped ------------------------------------------------------------------
def _cells(name: str) -> list[dict[str, Any]]:
    return json.loads((SHIPPED / name).read_text(encoding="utf-8"))["cells"]


def _source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def _tags(cell: dict[str, Any]) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _tracked_models(name: str) -> dict[str, str]:
    """`%%mlops track RUN ... --model VARIABLE` cells: run name -> model variable."""
    found = {}
    for cell in _cells(name):
        words = _source(cell).split("\n", 1)[0].split()
        if words[:2] == ["%%mlops", "track"] and "--model" in words:
            found[words[2]] = words[words.index("--model") + 1]
    return found


def _steps(name: str) -> list[str]:
    return [t.split(":", 1)[1] for c in _cells(name) for t in _tags(c) if t.startswith("step:")]


def _step_models(name: str) -> int:
    """Models a pipeline run logs: one per `model:VARIABLE` step option."""
    return sum(t.startswith("model:") for c in _cells(name) for t in _tags(c))


# --- the store ---------------------------------------------------------------------------------
def _client(lab: Lab) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{lab.root / 'mlflow.db'}")


def _runs_tagged(client: Any, tag: str, path: Path) -> list[Any]:
    """Runs of every experiment whose `tag` names the notebook at `path` (as runs record it)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    value = os.path.realpath(path)
    return client.search_runs(experiments, filter_string=f"tags.`{tag}` = '{value}'")


def _until(check: Any, what: str, deadline: float = STORE_DEADLINE) -> Any:
    """Poll the store (it has no events to wait on) until `check()` returns a value."""
    end = time.monotonic() + deadline
    while (found := check()) is None:
        assert time.monotonic() < end, f"not within {deadline:.0f} s: {what}"
        time.sleep(1.0)
    return found


def _models_by_run(client: Any, runs: list[Any]) -> dict[str, list[str]]:
    """Run name -> the statuses of the models logged on it, once none is PENDING any more
    (a model stored by the background sender is PENDING until its files are written)."""
    names = {r.info.run_id: r.info.run_name for r in runs}
    experiments = sorted({r.info.experiment_id for r in runs})

    def settled() -> dict[str, list[str]] | None:
        found: dict[str, list[str]] = {}
        for model in client.search_logged_models(experiments) if experiments else []:
            if model.source_run_id in names:
                found.setdefault(names[model.source_run_id], []).append(str(model.status))
        pending = any(s == "PENDING" for statuses in found.values() for s in statuses)
        return None if pending else found

    return _until(settled, f"the models of {sorted(names.values())} leave PENDING")


# --- running a notebook in the browser ---------------------------------------------------------
@dataclass
class Ran:
    """A shipped notebook, run top to bottom in its own page."""

    page: Any
    notebook: str  # CSS selector of its panel
    path: Path  # the copy in the server's root


@pytest.fixture(scope="module")
def shipped(lab: Lab) -> Lab:
    """The three notebooks, copied unchanged (same names) into the root."""
    for name in (QUICKSTART, PIPELINE, SWEEP):
        shutil.copy(SHIPPED / name, lab.root / name)
        assert (lab.root / name).read_bytes() == (SHIPPED / name).read_bytes()
    return lab


def _run(request: pytest.FixtureRequest, browser: Any, lab: Lab, name: str) -> Iterator[Ran]:
    with lab.own_kernels():
        page = new_page(browser, viewport={"width": 1400, "height": 1000})
        with explained(request, page, lab):
            notebook = open_notebook(page, lab, name, workspace=f"shipped-{name[:2]}")
            errors = run_all(page)
            if errors:
                pytest.fail(f"{name}: Run All stopped at an error: {errors}")
            yield Ran(page, notebook, lab.root / name)
        page.context.close()


# --- 01: tracked cells -------------------------------------------------------------------------
class TestQuickstart:
    @pytest.fixture(scope="class")
    def ran(self, request: pytest.FixtureRequest, browser: Any, shipped: Lab
            ) -> Iterator[Ran]:
        yield from _run(request, browser, shipped, QUICKSTART)

    def _cards(self, ran: Ran) -> dict[str, Any]:
        """Run name -> its card, each under its own tracked cell, in the notebook's order."""
        tracked = _tracked_models(QUICKSTART)
        cards = ran.page.locator(CARD)
        assert cards.count() == len(tracked) == 3
        found = {}
        for i, name in enumerate(tracked):
            card = cards.nth(i)
            card.scroll_into_view_if_needed()  # JupyterLab renders cells lazily
            card.locator(".mlops-status[data-status=FINISHED]").wait_for()
            expect(card.locator("b").first).to_have_text(name, timeout=UI_WAIT_MS)
            found[name] = card
        return found

    def test_every_run_card_is_finished_with_no_problem(self, ran: Ran, shipped: Lab) -> None:
        client = _client(shipped)
        stored = {r.info.run_name: r.info.run_id
                  for r in _runs_tagged(client, NOTEBOOK_TAG, ran.path)}
        for name, card in self._cards(ran).items():
            # The card learns its run id from the background writer, after the cell.
            expect(card.locator("code")).to_have_text(stored[name], timeout=UI_WAIT_MS)
            assert card.locator(".mlops-problems").count() == 0, card.inner_text()

    def test_every_run_card_names_its_model(self, ran: Ran) -> None:
        for name, card in self._cards(ran).items():
            variable = _tracked_models(QUICKSTART)[name]
            # Named by its variable; "stored, not registered" once the background sender's
            # store answered. A retrying expectation: the card is redrawn in place, and is
            # empty for a moment.
            expect(card.locator(".mlops-model")).to_have_text(
                re.compile(rf"^model:\s*{variable}\s*→ stored, not registered$"),
                timeout=UI_WAIT_MS)

    def test_every_model_is_ready_in_the_store(self, ran: Ran, shipped: Lab) -> None:
        client = _client(shipped)
        runs = _runs_tagged(client, NOTEBOOK_TAG, ran.path)
        statuses = _models_by_run(client, runs)
        assert statuses == {name: ["READY"] for name in _tracked_models(QUICKSTART)}

    def test_mlops_end_tells_the_truth(self, ran: Ran, shipped: Lab) -> None:
        said = output_text(ran.page, "%mlops end")
        assert said.startswith("mlops: ended"), said
        assert "unreachable" not in said, f"SQLite answered, yet `%mlops end` said: {said!r}"
        client = _client(shipped)
        statuses = _models_by_run(client, _runs_tagged(client, NOTEBOOK_TAG, ran.path))
        all_ready = statuses == {name: ["READY"] for name in _tracked_models(QUICKSTART)}
        assert ("all records stored" in said) == all_ready, (
            f"`%mlops end` said {said!r} while the store's models are {statuses}")

    def test_the_panel_lists_the_notebooks_runs(self, ran: Ran, shipped: Lab,
                                                screenshots: Path) -> None:
        client = _client(shipped)
        runs = [r for r in _runs_tagged(client, NOTEBOOK_TAG, ran.path)
                if r.data.tags.get("mlops.kind") == "cell"]
        assert sorted(r.info.run_name for r in runs) == sorted(_tracked_models(QUICKSTART))
        open_panel(ran.page, widen=360)  # wide enough for the metric columns
        rows = wait_panel_rows(ran.page, {r.info.run_id: r.info.status.lower() for r in runs})
        assert {rows[r.info.run_id]["name"] for r in runs} == set(_tracked_models(QUICKSTART))
        ran.page.locator(f"{PANEL} th", has_text="accuracy").first.wait_for()
        screenshot_panel(ran.page, str(screenshots / "panel.png"))


# --- 02: the tagged pipeline -------------------------------------------------------------------
class TestPipeline:
    @pytest.fixture(scope="class")
    def ran(self, request: pytest.FixtureRequest, browser: Any, shipped: Lab
            ) -> Iterator[Ran]:
        yield from _run(request, browser, shipped, PIPELINE)

    def _export_dialog(self, ran: Ran) -> Any:
        ran.page.click(f"{ran.notebook} .jp-NotebookPanel-toolbar {EXPORT_BUTTON}")
        dialog = ran.page.locator(".jp-Dialog")
        dialog.locator(".jp-mlops-dag-box[data-laid-out=true]").wait_for()
        return dialog

    def test_the_export_dialog_draws_the_steps(self, ran: Ran, screenshots: Path) -> None:
        assert "chose " in output_text(ran.page, "candidates = ")
        dialog = self._export_dialog(ran)
        nodes = dialog.locator(".jp-mlops-dag-node")
        assert nodes.evaluate_all("ns => ns.map(n => n.dataset.step)") == _steps(PIPELINE)
        assert "n_estimators=120" in dialog.locator(".jp-mlops-params").inner_text()
        # Fitted: every step inside the box, the last one too (the README's screenshot).
        box = dialog.locator(".jp-mlops-dag-box").bounding_box()
        for node in nodes.all():
            step = node.locator("rect").first.bounding_box()
            assert box["y"] <= step["y"] and step["y"] + step["height"] <= box["y"] + box["height"]
            assert box["x"] <= step["x"] and step["x"] + step["width"] <= box["x"] + box["width"]
        dialog.screenshot(path=str(screenshots / "export-dialog.png"))
        dialog.locator("button.jp-mod-reject", has_text="Close").click()
        dialog.wait_for(state="detached")

    def test_run_locally_lists_the_pipeline_run_in_the_panel(self, ran: Ran, shipped: Lab,
                                                             screenshots: Path) -> None:
        dialog = self._export_dialog(ran)
        dialog.locator("button", has_text="Run locally").click()
        ran.page.locator(f"{PANEL} .jp-mlops-job").wait_for()  # the panel opens on its progress
        job = ran.page.locator(f"{PANEL} .jp-mlops-job-succeeded, {PANEL} .jp-mlops-job-failed")
        job.first.wait_for(timeout=RUN_ALL_MS)
        log = ran.page.locator(f"{PANEL} .jp-mlops-log").inner_text()
        assert ran.page.locator(f"{PANEL} .jp-mlops-job-succeeded").count() == 1, log
        # The dialog's DAG shows every step green (done, or served from the cache).
        dialog.locator(".jp-mlops-local-status[data-status=succeeded]").wait_for()
        states = dialog.locator(".jp-mlops-dag-node").evaluate_all(
            "ns => ns.map(n => n.dataset.status)")
        assert set(states) <= {"ok", "cached"} and len(states) == len(_steps(PIPELINE)), states
        dialog.screenshot(path=str(screenshots / "export-local-run.png"))
        dialog.locator("button.jp-mod-reject", has_text="Close").click()
        dialog.wait_for(state="detached")
        client = _client(shipped)

        def pipeline_runs() -> list[Any] | None:
            return [r for r in _runs_tagged(client, NOTEBOOK_TAG, ran.path)
                    if r.data.tags.get("mlops.kind") == "pipeline"
                    and r.info.status in TERMINAL] or None

        [run] = _until(pipeline_runs, f"a finished pipeline run of {PIPELINE} in the store")
        assert run.info.status == "FINISHED"
        rows = wait_panel_rows(ran.page, {run.info.run_id: "finished"})
        assert rows[run.info.run_id]["name"] == run.info.run_name

    def test_every_model_is_ready_in_the_store(self, ran: Ran, shipped: Lab) -> None:
        client = _client(shipped)
        runs = _runs_tagged(client, NOTEBOOK_TAG, ran.path)
        statuses = [s for found in _models_by_run(client, runs).values() for s in found]
        expected = _step_models(PIPELINE) * sum(
            r.data.tags.get("mlops.kind") == "pipeline" for r in runs)
        assert statuses == ["READY"] * expected


# --- 03: sweeps of 02, launched from 03 --------------------------------------------------------
class TestSweep:
    @pytest.fixture(scope="class")
    def ran(self, request: pytest.FixtureRequest, browser: Any, shipped: Lab
            ) -> Iterator[Ran]:
        yield from _run(request, browser, shipped, SWEEP)

    def test_the_panel_lists_the_sweeps_runs(self, ran: Ran, shipped: Lab) -> None:
        client = _client(shipped)
        runs = _runs_tagged(client, LAUNCHED_FROM_TAG, ran.path)
        statuses = sorted((r.data.tags.get("mlops.mode"), r.info.status) for r in runs)
        # a 2x2 grid run whole, and two pipeline runs of which one fails by design
        assert statuses == sorted([("notebook", "FINISHED")] * 4
                                  + [("pipeline", "FINISHED"), ("pipeline", "FAILED")])
        open_panel(ran.page)
        rows = wait_panel_rows(ran.page, {r.info.run_id: r.info.status.lower() for r in runs})
        assert {rows[r.info.run_id]["name"] for r in runs} == {r.info.run_name for r in runs}

    def test_every_model_is_ready_in_the_store(self, ran: Ran, shipped: Lab) -> None:
        client = _client(shipped)
        runs = _runs_tagged(client, LAUNCHED_FROM_TAG, ran.path)
        found = _models_by_run(client, runs)
        assert all(s == "READY" for statuses in found.values() for s in statuses), found

