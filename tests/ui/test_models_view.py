"""JupyterLab in Chromium: the MLOps panel's Models view on a real registry (two scikit-learn
versions in the notebook folder's mlflow.db) shows the alias badges, the gated metrics (not the
runner's bookkeeping) and a version's lineage,
lists the drift reports logged against a version (its monitor runs, coloured by band, each
opening its report), promotes version 2 to champion after a confirmation that compares it with
version 1, and shows @champion moved; MLflow then has the alias on version 2 and version 1 as
its previous holder. All at the sidebar's default width, where the table must fit the panel."""

from __future__ import annotations

import nbformat
import pytest
from server.registry_store import MODEL, NOTEBOOK, log_drift, make_registry

from jupyter_mlops.steps.mlflow_vocabulary import STEP_METRICS, previous_holder_tag

from .jupyterlab import PANEL, open_notebook, open_panel, screenshot_panel

MODEL_ROW = f"{PANEL} .jp-mlops-model[data-model='{MODEL}']"
ALIASES_JS = ("Object.fromEntries([...document.querySelectorAll("
              f"\"{MODEL_ROW} tr.jp-mlops-version\")]"
              ".map(r => [r.dataset.version, [...r.querySelectorAll('.jp-mlops-badge')]"
              ".map(b => b.dataset.alias)]))")


def _wait_aliases(page, wanted: dict[str, list[str]]) -> None:  # noqa: ANN001
    """Wait until the versions table shows exactly these aliases per version."""
    page.wait_for_function(f"want => JSON.stringify({ALIASES_JS}) === JSON.stringify(want)",
                           arg=wanted)


def test_models_view_promotes_the_challenger_after_the_comparison(page, lab, screenshots):  # noqa: ANN001
    folder = lab.folder("models_view")
    store = make_registry(folder)
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")],
                                            metadata={"kernelspec": kernel}), folder / NOTEBOOK)
    open_notebook(page, lab, f"models_view/{NOTEBOOK}", "models-view")
    panel = open_panel(page, widen=0)  # JupyterLab's default sidebar width
    panel.locator(".jp-mlops-tab[data-tab='models']").click()
    page.locator(f"{MODEL_ROW} .jp-mlops-model-header").click()
    _wait_aliases(page, {"2": ["challenger"], "1": ["champion"]})
    assert page.locator(f"{MODEL_ROW} .jp-mlops-model-header .jp-mlops-badge").all_inner_texts() \
        == ["@challenger v2", "@champion v1"]
    # The highest version number, said as such: not a count ("1 versions" for v1 alone).
    assert page.locator(f"{MODEL_ROW} .jp-mlops-model-header .jp-mlops-subtitle").inner_text()\
        .strip() == "· latest v2"
    _a_refused_condition_leaves_no_verdict(page)
    _table_fits_the_panel(page)
    # The metric columns: the gated ones (accuracy, f1), not v2's runner bookkeeping.
    headers = page.locator(f"{MODEL_ROW} table.jp-mlops-versions th").all_inner_texts()
    assert headers[2:4] == ["accuracy", "f1"] and not set(STEP_METRICS) & set(headers), headers
    assert NOTEBOOK in page.locator(f"{MODEL_ROW} tr[data-version='2'] .jp-mlops-lineage") \
        .inner_text()
    assert page.locator(f"{MODEL_ROW} tr[data-version='1'] .jp-mlops-promote").count() == 0
    _monitor_runs_are_listed(page, store)
    page.locator(f"{MODEL_ROW} tr[data-version='2'] .jp-mlops-version-link").click()
    origin = page.locator(f"{MODEL_ROW} .jp-mlops-lineage-row")
    assert "n_estimators=30" in origin.locator(".jp-mlops-params").inner_text()
    assert "Gradient_Boosting" in origin.inner_text()

    page.locator(f"{MODEL_ROW} tr[data-version='2'] .jp-mlops-promote").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mlops-compare-table").wait_for()
    headers = dialog.locator(".jp-mlops-compare-table th").all_inner_texts()
    assert headers == ["metric", "candidate v2", "champion v1", "Δ"]
    accuracy = dialog.locator("tr[data-metric='accuracy'] td").all_inner_texts()
    metrics = store["metrics"]
    assert [float(x) for x in accuracy[1:3]] == pytest.approx(
        [metrics[2]["accuracy"], metrics[1]["accuracy"]], rel=1e-3)
    dialog.screenshot(path=str(screenshots / "models_promotion_dialog.png"))
    dialog.get_by_role("button", name="Promote").click()
    _wait_aliases(page, {"2": ["challenger", "champion"], "1": []})
    screenshot_panel(page, str(screenshots / "models_view.png"))

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=str(store["uri"]), registry_uri=str(store["uri"]))
    assert int(client.get_registered_model(MODEL).aliases["champion"]) == 2
    assert client.get_model_version(MODEL, "2").tags[previous_holder_tag("champion")] == "1"


def _a_refused_condition_leaves_no_verdict(page) -> None:  # noqa: ANN001
    """A condition judged, then one refused: the error shows and the first one's verdicts go
    (they judged conditions no longer in the field); the versions stay listed."""
    gates = page.locator(f"{PANEL} .jp-mlops-gates-input")
    judged = f"{MODEL_ROW} tr[data-version='2'] .jp-mlops-gates > :not(.jp-mlops-recorded)"
    gates.fill("f1>=0.999")
    gates.press("Enter")
    page.locator(judged, has_text="f1>=0.999").wait_for()
    gates.fill("f1>=banana")
    gates.press("Enter")
    page.locator(f"{MODEL_ROW} .jp-mlops-error", has_text="f1>=banana").wait_for()
    assert page.locator(judged).count() == 0
    assert page.locator(f"{MODEL_ROW} tr.jp-mlops-version").count() == 2
    gates.fill("")
    gates.press("Enter")
    page.locator(f"{MODEL_ROW} .jp-mlops-error").wait_for(state="detached")


def _table_fits_the_panel(page) -> None:  # noqa: ANN001
    """Nothing is cut off at the right: the versions table is no wider than its container, the
    panel does not scroll sideways, and the promote button lies inside the panel."""
    widths = page.locator(f"{MODEL_ROW} table.jp-mlops-versions").evaluate(
        "t => [t.scrollWidth, t.parentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    panel = page.locator(PANEL)
    assert panel.evaluate("p => p.scrollWidth <= p.clientWidth")
    outer = panel.bounding_box()
    button = page.locator(f"{MODEL_ROW} tr[data-version='2'] .jp-mlops-promote").bounding_box()
    assert outer["x"] <= button["x"] and \
        button["x"] + button["width"] <= outer["x"] + outer["width"], (button, outer)


def _monitor_runs_are_listed(page, store) -> None:  # noqa: ANN001
    """Drift reports logged against v1 show in its row once the view refreshes, newest first,
    coloured by band; one opens its report."""
    stable, drifted = log_drift(store, 1, 0.0), log_drift(store, 1, 1.5)
    page.locator(f"{PANEL} .jp-mlops-models button[title='Refresh now']").click()
    monitors = page.locator(f"{MODEL_ROW} tr[data-version='1'] .jp-mlops-monitor")
    page.locator(f"{MODEL_ROW} .jp-mlops-monitor[data-run-id='{drifted}']").wait_for()
    assert [m.get_attribute("data-run-id") for m in monitors.all()] == [drifted, stable]
    assert [m.get_attribute("data-band") for m in monitors.all()] == ["significant", "stable"]
    texts = monitors.all_inner_texts()
    assert texts[0].endswith("drifted") and texts[1].endswith("PSI 0 · no drift")  # same rows
    assert monitors.first.evaluate("e => getComputedStyle(e).backgroundColor") == \
        "rgb(250, 219, 216)"  # the report's own colour of the significant band
    assert page.locator(f"{MODEL_ROW} tr[data-version='2'] .jp-mlops-monitor").count() == 0
    report = page.request.get(monitors.first.get_attribute("href"))
    assert report.ok and "DRIFTED" in report.text()
