"""Sweeps with real papermill runs (and real runner pipelines) into a real SQLite store."""

from __future__ import annotations

import nbformat
import pytest

from jupyter_mlops.errors import SweepError
from jupyter_mlops.steps.mlflow_vocabulary import ERROR_TAG, SWEEP_TAG
from jupyter_mlops.widgets import step_graph, sweep, sweep_form

from .conftest import DATA


def _store_runs(client, experiment, sweep_id):
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], f"tags.`{SWEEP_TAG}` = '{sweep_id}'")


def _most_at_once(runs) -> int:
    """The largest number of runs that were executing at the same moment."""
    edges = sorted([(r.started, 1) for r in runs] + [(r.ended, -1) for r in runs])
    running = most = 0
    for _, change in edges:
        running += change
        most = max(most, running)
    return most


def test_whole_notebook_sweep_logs_every_run_and_survives_failures(recorder, store, workdir):
    view = sweep("sweep_tiny.ipynb", {"x": [1, 2], "fail": [False, True]}, jobs=2,
                 tracking_uri=store.uri, experiment="tiny-sweep")
    runs = view.wait(timeout=240)

    assert [r.status for r in runs] == ["FINISHED", "FAILED", "FINISHED", "FAILED"]
    assert [r.metrics.get("score") for r in runs] == [2.0, None, 4.0, None]
    assert runs[2].metrics == {"score": 4.0, "steps": 3.0}  # the metrics cell's names
    assert "ValueError: boom at x=2" in runs[3].error
    assert _most_at_once(runs) == 2  # parallel, and never more than `jobs`
    for run in runs:  # every run leaves its executed notebook, in the sweep's folder
        executed = nbformat.read(run.output, as_version=4)
        assert executed.metadata.papermill.parameters == run.params
        assert run.output.parent.parent == workdir / ".mlops" / "sweeps"

    stored = {r.info.run_id: r for r in _store_runs(store.client, "tiny-sweep",
                                                    view.executor.plan.sweep_id)}
    assert len(stored) == 4
    for run in runs:
        record = stored[run.run_id]
        assert record.info.status == run.status
        assert record.data.params["x"] == str(run.params["x"])
        if run.status == "FAILED":
            assert "boom" in record.data.tags[ERROR_TAG]
        else:
            assert record.data.metrics["score"] == 2.0 * run.params["x"]
        # artifacts (the executed notebook) beside the store, not in the working directory
        assert record.info.artifact_uri.startswith(str(store.folder))
    assert not (workdir / "mlruns").exists() and not (workdir / "mlflow.db").exists()

    # the browser below the sweep was redrawn as each run ended, before the last one did
    tables = recorder.updates(view.browser.table.model_id, "value")
    assert any('data-status="SCHEDULED"' in t and ('data-status="FINISHED"' in t
                                                   or 'data-status="FAILED"' in t)
               for t in tables)
    assert sorted(r.status for r in view.browser.rows) == ["FAILED", "FAILED", "FINISHED",
                                                           "FINISHED"]
    assert "boom at x=1" in view.table.value
    assert "4/4 done, 2 failed" in view.header.value
    assert view.progress.value == 4 and view.progress.bar_style == "danger"
    bundle = view._repr_mimebundle_()
    assert "boom at x=2" in bundle["text/html"]


def test_pipeline_sweep_goes_through_the_runner(recorder, store, workdir):
    view = sweep("sweep_pipeline.ipynb", {"x": [3], "fail": [False, True]}, jobs=2,
                 pipeline=True, tracking_uri=store.uri, experiment="pipeline-sweep",
                 browse=False)
    ok, failed = view.wait(timeout=240)

    assert ok.status == "FINISHED" and ok.metrics == {"score": 7.0}
    assert failed.status == "FAILED" and "score" in failed.error
    assert "no score today" in failed.error
    # the step graph reads the runner's run folder: each step coloured by its status
    graph = step_graph("sweep_pipeline.ipynb", out=ok.output.parent.parent)
    assert graph.statuses == {"double": "FINISHED", "score": "FINISHED"}
    broken = step_graph("sweep_pipeline.ipynb", out=failed.output)
    assert broken.statuses == {"double": "FINISHED", "score": "FAILED"}
    assert 'data-step="score" data-status="FAILED"' in broken.picture.value
    assert 'data-source="double" data-target="score"' in broken.picture.value
    assert broken._repr_mimebundle_()["text/html"] == broken.picture.value


def test_step_graph_before_any_run(recorder, workdir):
    view = step_graph("sweep_pipeline.ipynb")
    assert view.run_id is None and view.statuses == {}
    assert "not run yet" in view.picture.value
    assert view.picture.value.count('class="mlops-step"') == 2


def test_grid_names_are_checked_before_anything_runs(recorder, store, workdir):
    with pytest.raises(SweepError, match="parameter .nope.: unknown parameter .known: x, fail"):
        sweep("sweep_tiny.ipynb", {"nope": [1]}, tracking_uri=store.uri)
    with pytest.raises(SweepError, match="no values"):
        sweep("sweep_tiny.ipynb", {"x": []}, tracking_uri=store.uri)
    with pytest.raises(SweepError, match="missing.ipynb: no such notebook"):
        sweep("missing.ipynb", {}, tracking_uri=store.uri)
    assert not (workdir / ".mlops").exists()


def test_form_has_a_control_per_parameter_type(recorder):
    form = sweep_form(DATA / "typed_params.ipynb", choices={"model": ["rf", "lr"]})
    kinds = {name: type(c).__name__ for name, c in form.controls.items()}
    assert kinds == {"n": "IntSlider", "rate": "FloatSlider", "model": "Dropdown",
                     "label": "Text", "verbose": "Checkbox", "layers": "Text"}
    assert form.controls["n"].value == 10 and form.controls["n"].max == 20
    assert form.controls["layers"].value == "[8, 4]"

    form.controls["n"].value = 12
    form.values["rate"].value = "0.1, 0.2"
    form.values["model"].value = "rf, lr"
    grid = form.grid()
    assert grid["n"] == [12] and grid["rate"] == [0.1, 0.2] and grid["model"] == ["rf", "lr"]
    assert grid["layers"] == [[8, 4]] and grid["verbose"] == [False]

    form.values["n"].value = "1, (2"
    with pytest.raises(SweepError, match="'n'"):
        form.grid()


def test_the_forms_run_button_starts_the_sweep(recorder, store, workdir):
    form = sweep_form("sweep_tiny.ipynb", tracking_uri=store.uri, experiment="form-sweep")
    form.values["x"].value = "nope"  # not an int: the form says so, nothing starts
    recorder.click(form.run_button.model_id)
    assert form.sweep is None and "'x'" in form.message.value

    form.values["x"].value = "3, 5"
    form.controls["fail"].value = False
    recorder.click(form.run_button.model_id)  # as the frontend sends a click
    runs = form.sweep.wait(timeout=240)
    assert [(r.params, r.status, r.metrics["score"]) for r in runs] == [
        ({"x": 3, "fail": False}, "FINISHED", 6.0), ({"x": 5, "fail": False}, "FINISHED", 10.0)]
    assert form.message.value == ""
    assert [r.name for r in runs] == ["0:x=3", "1:x=5"]  # named by what differs
