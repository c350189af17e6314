"""The runs browser on a real SQLite store: sorting, filtering, selection and comparison."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import pytest

from jupyter_mlops.steps.mlflow_vocabulary import RunRow
from jupyter_mlops.widgets import runs
from jupyter_mlops.widgets.data import differing_params, filter_rows, sort_rows

from .conftest import log_run


@pytest.fixture(scope="module")
def experiment(store):
    client = store.client
    experiment_id = store.experiment("browse")
    ids = {
        "forest": log_run(client, experiment_id, "forest", {"model": "rf", "seed": 1},
                          {"accuracy": [0.7, 0.8, 0.9]}),
        "logreg": log_run(client, experiment_id, "logreg", {"model": "lr", "seed": 1},
                          {"accuracy": [0.85]}),
        "broken": log_run(client, experiment_id, "broken", {"model": "nn", "seed": 1},
                          {}, status="FAILED"),
    }
    return store.uri, ids


def test_table_lists_the_experiments_runs_and_sorts_by_a_metric(recorder, experiment):
    uri, ids = experiment
    browser = runs("browse", uri)
    assert {r.name for r in browser.rows} == {"forest", "logreg", "broken"}
    assert "metrics.accuracy" in browser.sort.options

    browser.sort.value = "metrics.accuracy"
    browser.descending.value = True
    assert [r.name for r in browser.shown] == ["forest", "logreg", "broken"]  # none last
    browser.descending.value = False
    assert [r.name for r in browser.shown] == ["logreg", "forest", "broken"]
    table = browser.table.value
    assert table.index("logreg") < table.index("forest")


def test_the_frontends_sort_and_filter_edits_redraw_the_table(recorder, experiment):
    uri, _ = experiment
    browser = runs("browse", uri)
    column = list(browser.sort.options).index("metrics.accuracy")
    recorder.receive(browser.sort.model_id, {"index": column})  # the user picks a column
    recorder.receive(browser.descending.model_id, {"value": False})
    table = recorder.updates(browser.table.model_id, "value")[-1]
    assert table.index(">logreg<") < table.index(">forest<") < table.index(">broken<")

    recorder.receive(browser.filter.model_id, {"value": "model=rf"})  # typed, then Enter
    table = recorder.updates(browser.table.model_id, "value")[-1]
    assert "1 of 3 runs" in table and ">forest<" in table and ">logreg<" not in table


def test_filter_by_words_and_by_mlflow_syntax(recorder, experiment):
    uri, _ = experiment
    browser = runs("browse", uri)
    browser.filter.value = "failed"
    assert [r.name for r in browser.shown] == ["broken"]
    browser.filter.value = "model=lr"
    assert [r.name for r in browser.shown] == ["logreg"]
    browser.filter.value = "metrics.accuracy > 0.86"
    assert [r.name for r in browser.shown] == ["forest"]
    browser.filter.value = "metrics.accuracy >>> 1"
    assert browser.shown == [] and "filter" in browser.message.value.lower()


def test_selecting_runs_in_the_frontend_shows_their_comparison(recorder, experiment):
    uri, ids = experiment
    browser = runs("browse", uri)
    recorder.receive(browser.selector.model_id, {"index": [
        i for i, (_, run_id) in enumerate(browser.selector.options)
        if run_id in (ids["forest"], ids["logreg"])]})

    assert {r.name for r in browser.selected} == {"forest", "logreg"}
    sent = recorder.updates(browser.comparison.model_id, "value")
    compared = sent[-1]
    assert "Params that differ" in compared and ">rf<" in compared and ">lr<" in compared
    assert ">seed<" not in compared  # the same in both
    # forest logged 3 steps: a line chart; its last value is in the metrics table
    assert 'data-metric="accuracy"' in compared and "<polyline" in compared
    assert "0.9" in compared and "0.85" in compared
    assert "mlops-compare" in browser._repr_mimebundle_()["text/html"]


def test_row_helpers():
    rows = [RunRow("a", "one", "FINISHED", 1, params={"x": "1", "y": "2"}, metrics={"m": 2.0}),
            RunRow("b", "two", "FAILED", 2, params={"x": "1", "y": "3"}, metrics={"m": 10.0}),
            RunRow("c", "three", "FINISHED", 3, params={"x": "1"})]
    assert differing_params(rows) == {"y": ["2", "3", None]}
    assert [r.run_id for r in sort_rows(rows, "metrics.m")] == ["a", "b", "c"]  # 2 < 10
    assert [r.run_id for r in filter_rows(rows, "finished y=2")] == ["a"]


def test_in_a_fresh_kernel_the_browser_shows_at_once_then_fills_its_table(experiment):
    """The first read in a kernel imports MLflow (seconds): the cell does not wait for it."""
    from jupyter_client import KernelManager

    uri, _ = experiment
    sockets = tempfile.mkdtemp(prefix="mlk")  # short: unix socket paths are bounded
    km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "k"),
                       connection_file=os.path.join(sockets, "kernel.json"))
    km.start_kernel(env=dict(os.environ))
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        shown: list[dict[str, Any]] = []
        code = (f"import jupyter_mlops\nbrowser = jupyter_mlops.runs('browse', {uri!r})\n"
                "display(browser)\nprint(sorted(r.name for r in browser.shown))")
        reply = kc.execute_interactive(code, timeout=120, output_hook=shown.append)
        assert reply["content"]["status"] == "ok"
        first = next(m for m in shown if m["msg_type"] == "display_data")
        assert "Reading runs from" in first["content"]["data"]["text/html"]
        assert ">forest<" not in first["content"]["data"]["text/html"]
        # code reading the browser waits for the read
        printed = "".join(m["content"]["text"] for m in shown if m["msg_type"] == "stream")
        assert "['broken', 'forest', 'logreg']" in printed
        def updated(msg: dict[str, Any]) -> str:
            html = msg["content"].get("data", {}).get("text/html", "")
            return html if msg["msg_type"] == "update_display_data" and ">forest<" in html else ""

        # the same output, rewritten in place once the runs are read (during the cell or after)
        html = next(filter(None, map(updated, shown)), "")
        while not html:
            html = updated(kc.get_iopub_msg(timeout=120))
        assert "3 of 3 runs" in html and ">logreg<" in html and "Reading runs" not in html
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)


def test_a_store_the_browser_cannot_read_is_said_in_it(recorder, tmp_path):
    from jupyter_mlops.widgets.runs_browser import RunsBrowser

    (tmp_path / "mlflow.db").write_text("my notes, not a store")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    browser = RunsBrowser("Churn_Model", uri, background=True)  # a new kernel's first read
    assert browser.rows == []
    said = browser.message.value
    assert "Cannot read the runs" in said and "not an SQLite database" in said
    assert "Cannot read the runs" in browser.static_html()  # in the saved notebook too
    with pytest.raises(Exception, match="not an SQLite database"):  # read in the call: raised
        RunsBrowser("Churn_Model", uri)
