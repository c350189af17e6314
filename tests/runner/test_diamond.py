"""A diamond run end to end: parameters of every type reach the kernels as data, values travel
through their serializers, every step leaves its executed notebook, MLflow holds the runs."""

from __future__ import annotations

import json

import nbformat
import pytest

from jupyter_mlops.steps import serializers

from .conftest import copy_notebook, run, sqlite_uri, statuses

# Text a careless translator would paste into code: it must arrive as this very string.
CRAFTED = '"; import os; os._exit(1) #\n\'\'\'\\ {x}'


@pytest.fixture(scope="module")
def diamond(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diamond")
    notebook = copy_notebook("diamond", folder)
    uri = sqlite_uri(folder)
    cli = [("n", "4"), ("rate", "1"), ("flag", "false"), ("items", "[5, 6, 7]"),
           ("opts", '{"deep": {"list": [1.5]}}'), ("nothing", "[]")]
    first = run(notebook, folder / "out", parameters={"name": CRAFTED}, cli_parameters=cli,
                tracking_uri=uri)
    second = run(notebook, folder / "out", parameters={"name": CRAFTED}, cli_parameters=cli,
                 tracking_uri=uri)
    return folder, first, second, uri


def test_the_run_succeeds_and_reports_the_metric(diamond):
    _, first, _, _ = diamond
    assert first.ok and first.exit_code == 0, first.failures
    assert statuses(first) == {"source": "ok", "left": "ok", "right": "ok", "join": "ok"}
    # left = 0+1+2+3 + 3 items; right = (0+1+2+3) * 1.0
    assert first.metrics == {"total": 15.0}


def test_parameters_of_every_type_arrive_as_data(diamond):
    _, first, _, _ = diamond
    seen = serializers.load(first.run_dir / "data" / "source", "seen")
    assert seen == {"n": 4, "rate": 1.0, "name": CRAFTED, "flag": False, "items": [5, 6, 7],
                    "opts": {"deep": {"list": [1.5]}}, "nothing": []}
    assert type(seen["rate"]) is float


def test_each_step_notebook_is_kept_executed_in_the_run_folder(diamond):
    folder, first, _, _ = diamond
    assert first.run_dir == folder / "out" / "runs" / first.run_id
    for step in ("source", "left", "right", "join"):
        executed = nbformat.read(first.run_dir / f"{step}.ipynb", as_version=4)
        assert executed.metadata["mlops"]["step"] == step
        tags = [cell.metadata.get("tags", []) for cell in executed.cells]
        assert ["injected-parameters"] in tags  # papermill's cell, after the parameters cell
        assert all(cell.execution_count for cell in executed.cells if cell.cell_type == "code")
    join = nbformat.read(first.run_dir / "join.ipynb", as_version=4)
    assert join.cells[1].metadata["tags"] == ["injected-parameters"]


def test_values_travel_through_the_serializer_for_their_type(diamond):
    _, first, _, _ = diamond
    data = first.run_dir / "data"
    assert (data / "source" / "frame.parquet").is_file()
    assert (data / "source" / "array.npy").is_file()
    assert (data / "source" / "seen.pkl").is_file()
    assert serializers.load(data / "right", "right") == 6.0


def test_the_run_summary_names_every_step(diamond):
    _, first, _, _ = diamond
    summary = json.loads((first.run_dir / "run.json").read_text())
    assert summary["status"] == "ok" and summary["run_id"] == first.run_id
    assert {name: step["status"] for name, step in summary["steps"].items()} == statuses(first)
    assert summary["parameters"]["name"] == CRAFTED


def test_an_unchanged_rerun_is_all_cached_in_its_own_folder(diamond):
    _, first, second, _ = diamond
    assert set(statuses(second).values()) == {"cached"}
    assert second.run_dir != first.run_dir
    assert second.metrics == first.metrics
    for step in ("source", "left", "right", "join"):
        assert second.steps[step].cache_key == first.steps[step].cache_key
        assert (second.run_dir / f"{step}.ipynb").is_file()  # what ran, for the reader
    assert serializers.load(second.run_dir / "data" / "left", "left") == 9


def test_parameter_values_never_steer_paths(diamond):
    folder, first, _, _ = diamond
    written = {p.relative_to(folder).parts[0] for p in folder.rglob("*")}
    assert written <= {"diamond.ipynb", "out", "mlflow.db", "mlflow.db.lock", "mlruns",
                       ".jupyter_mlops"}
    names = {p.name for p in first.run_dir.rglob("*")}
    assert not any("os._exit" in name or "{x}" in name for name in names)


def test_mlflow_holds_a_parent_run_and_a_child_per_step(diamond, mlflow_client_for):
    _, first, second, uri = diamond
    client = mlflow_client_for(uri)
    parent = client.get_run(first.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlops.run_id"] == first.run_id
    assert parent.data.params["n"] == "4" and parent.data.metrics["total"] == 15.0
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_step = {run.data.tags["mlops.step"]: run for run in children}
    assert set(by_step) == {"source", "left", "right", "join"}
    join = by_step["join"]
    assert join.info.status == "FINISHED"
    assert join.data.metrics["total"] == 15.0 and "duration_s" in join.data.metrics
    assert join.data.metrics["cache_hit"] == 0.0 and join.data.tags["mlops.cache_hit"] == "false"
    assert by_step["left"].data.params == {"items": "[5, 6, 7]"}
    artifacts = [f.path for f in client.list_artifacts(join.info.run_id)]
    assert "join.ipynb" in artifacts


def test_cache_hits_are_tracked(diamond, mlflow_client_for):
    _, _, second, uri = diamond
    client = mlflow_client_for(uri)
    parent = client.get_run(second.mlflow_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlops.cache_hit"] == "true"
        assert child.data.metrics["cache_hit"] == 1.0
