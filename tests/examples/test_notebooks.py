"""The example notebooks run top to bottom (small data), and leave what they promise."""

from __future__ import annotations

from pathlib import Path

from .conftest import WIDGET_VIEW, outputs, text

ROOT = Path(__file__).resolve().parents[2]


def _runs(client, experiment: str):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    return client.search_runs([found.experiment_id])


def test_01_tracking_quickstart(quickstart):
    examples, nb = quickstart
    runs = {r.info.run_name: r for r in _runs(examples.client(), "quickstart")}
    cells = {name: run for name, run in runs.items() if run.data.tags["mlops.kind"] == "cell"}
    assert sorted(cells) == ["boosting", "forest", "logreg"]
    for run in cells.values():
        assert run.info.status == "FINISHED"
        assert {"accuracy", "f1"} <= set(run.data.metrics)
    # `--model` in every cell: the forest and the boosting model too, READY in the store
    models = examples.client().search_logged_models([cells["logreg"].info.experiment_id])
    ready = {m.source_run_id for m in models if str(m.status).endswith("READY")}
    assert {name for name, run in cells.items() if run.info.run_id in ready} == set(cells)
    assert cells["logreg"].data.params["C"] == "0.5"
    assert cells["forest"].data.params["max_depth"] == "6"
    history = examples.client().get_metric_history(cells["boosting"].info.run_id,
                                                   "staged_accuracy")
    assert [m.step for m in history] == list(range(8))

    # the comparison: a live widget, and its HTML copy for viewers without a kernel
    browsers = [h for h in outputs(nb) if "mlops-runs-browser" in h]
    assert len(browsers) == 1 and len(outputs(nb, WIDGET_VIEW)) >= 1
    compared = browsers[0]
    assert "Params that differ" in compared
    assert 'data-metric="staged_accuracy"' in compared and "<polyline" in compared
    assert all(name in compared for name in cells)
    assert "session" not in compared  # only the cell runs, as the filter asks
    best = max(cells.values(), key=lambda r: r.data.metrics["accuracy"])
    assert f"best: {best.info.run_name}" in text(nb)


def test_01_has_a_run_card_under_each_tracked_cell(quickstart):
    examples, nb = quickstart
    runs = {r.info.run_name: r.info.run_id for r in _runs(examples.client(), "quickstart")}
    tracked = [c for c in nb.cells if c.cell_type == "code"
               and c.source.startswith("%%mlops track")]
    assert len(tracked) == 3
    for cell in tracked:
        name = cell.source.split()[2]
        [card] = [o.data["text/html"] for o in cell.outputs
                  if "mlops-run-card" in o.get("data", {}).get("text/html", "")]
        # the final state, saved for viewers without a kernel: status, values, link
        assert 'data-status="FINISHED"' in card and "accuracy=<b>" in card
        assert f"#/runs/{runs[name]}" in card or f"/runs/{runs[name]}" in card


def test_02_tagged_pipeline_runs_whole_and_compiles(examples, tmp_path):
    nb = examples.execute("02_tagged_pipeline.ipynb", n_customers=600, n_estimators=40)
    assert "chose " in text(nb)

    from jupyter_mlops.kfp import compile_notebook

    compiled = compile_notebook(examples.folder / "02_tagged_pipeline.ipynb",
                                tmp_path / "pipeline.yaml")
    spec = (tmp_path / "pipeline.yaml").read_text()
    for step in ("load", "features", "train-forest", "train-logreg", "evaluate"):
        assert f"comp-{step}" in spec
    assert compiled is not None


def test_03_sweep_and_compare(examples):
    nb = examples.execute("03_sweep_and_compare.ipynb", n_customers=400)
    client = examples.client()

    whole = _runs(client, "03-sweep")
    assert len(whole) == 4 and {r.info.status for r in whole} == {"FINISHED"}
    assert {(r.data.params["max_depth"], r.data.params["C"]) for r in whole} == {
        ("3", "0.1"), ("3", "1.0"), ("8", "0.1"), ("8", "1.0")}
    assert all(0 < r.data.metrics["accuracy"] <= 1 for r in whole)

    piped = {r.data.params["test_size"]: r for r in _runs(client, "03-sweep-pipeline")}
    assert piped["0.3"].info.status == "FINISHED" and "accuracy" in piped["0.3"].data.metrics
    assert piped["1.5"].info.status == "FAILED"
    assert "test_size" in piped["1.5"].data.tags["mlops.error"]

    assert "without encryption" not in text(nb)  # the run kernels' start-up noise stays out
    html = outputs(nb)
    assert any("mlops-compare" in h and "Params that differ" in h for h in html)
    assert any("4/4 done, 0 failed" in h for h in html)
    assert any("2/2 done, 1 failed" in h and "test_size" in h for h in html)
    [graph] = [h for h in html if "mlops-step-graph" in h]
    assert 'data-step="load" data-status="FINISHED"' in graph
    assert 'data-step="features" data-status="FAILED"' in graph
    assert any("mlops-sweep-form" in h or "IntSlider" in h for h in outputs(nb, "text/plain"))
