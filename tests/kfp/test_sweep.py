"""Sweeps on KFP: the grid fanned out with dsl.ParallelFor, the steps reading no swept parameter
once before it; the grid file's grammar and errors; submission; a run under kfp.local."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from kfp_api_standin import KfpApiStandIn
from kfp_helpers import DATA, kfp_metrics, run_local

from jupyter_mlops.cli import main
from jupyter_mlops.kfp import compile_notebook
from jupyter_mlops.runner.grid import read_grid
from jupyter_mlops.runner.sweep import plan_sweep

RIDGE = DATA / "Sweep_Ridge.ipynb"
GRID = "alpha: [0.1, 100.0]\nfit_intercept: true\n"
COMBINATIONS = [{"alpha": 0.1, "fit_intercept": True}, {"alpha": 100.0, "fit_intercept": True}]


@pytest.fixture
def grid_file(tmp_path) -> Path:
    path = tmp_path / "ridge_grid.yaml"
    path.write_text(GRID)
    return path


def _loop(spec: dict) -> tuple[str, dict]:
    """The root's one ParallelFor task and the component it runs."""
    (name,) = [n for n, t in spec["root"]["dag"]["tasks"].items() if "parameterIterator" in t]
    task = spec["root"]["dag"]["tasks"][name]
    return name, task


def test_compile_sweep_puts_only_the_steps_downstream_of_swept_parameters_in_the_loop(
        grid_file, tmp_path, capsys):
    output = tmp_path / "Sweep_Ridge.yaml"
    assert main(["compile", str(RIDGE), "--sweep", str(grid_file), "-o", str(output)]) == 0
    assert ("sweeping alpha, fit_intercept over 2 combinations (per combination: score, train)"
            in capsys.readouterr().out)
    spec = yaml.safe_load(output.read_text())
    name, loop = _loop(spec)
    assert set(spec["root"]["dag"]["tasks"]) == {"load", "describe", name}
    assert json.loads(loop["parameterIterator"]["items"]["raw"]) == COMBINATIONS
    assert loop["dependentTasks"] == ["load"]
    inside = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inside) == {"train", "score"}
    assert inside["train"]["inputs"]["parameters"]["alpha"]["parameterExpressionSelector"] \
        == 'parseJson(string_value)["alpha"]'
    # the swept parameters come from the loop, the others stay pipeline inputs
    assert set(spec["root"]["inputDefinitions"]["parameters"]) == {
        "rows", "seed", "MLFLOW_TRACKING_URI"}
    again = tmp_path / "again.yaml"
    assert main(["compile", str(RIDGE), "--sweep", str(grid_file), "-o", str(again)]) == 0
    assert again.read_text() == output.read_text()


def test_the_local_sweep_reads_the_same_grid_file(grid_file):
    assert plan_sweep(RIDGE, grid_file).combos == COMBINATIONS
    assert compile_notebook(RIDGE, sweep=read_grid(grid_file)).sweep.items == COMBINATIONS


@pytest.mark.parametrize(("text", "expected"), [
    ("alpha: [0.1, strong]\n", "parameter 'alpha': expected a float"),
    ("alhpa: [0.1]\n", "parameter 'alhpa': unknown parameter (known: rows, alpha"),
    ("alpha: []\n", "parameter 'alpha': the grid lists no values"),
    ("- 0.1\n- 1.0\n", "a grid file holds a mapping of name: value"),
    ("alpha: [0.1\n", "ridge_grid.yaml: cannot read it"),
    ("", "the grid file is empty"),
    ("# alpha: [0.1]\n", "the grid file names no parameter"),
])
def test_a_bad_grid_file_is_named_with_the_field_at_fault(tmp_path, capsys, text, expected):
    grid = tmp_path / "ridge_grid.yaml"
    grid.write_text(text)
    assert main(["compile", str(RIDGE), "--sweep", str(grid), "-o", str(tmp_path / "o.yaml")]) \
        == 1
    err = capsys.readouterr().err
    assert f"{grid}: " in err and expected in err
    assert "Traceback" not in err and not (tmp_path / "o.yaml").exists()


def test_an_empty_grid_device_is_called_empty(tmp_path, capsys):
    assert main(["compile", str(RIDGE), "--sweep", os.devnull, "-o", str(tmp_path / "o.yaml")]) \
        == 1
    assert f"{os.devnull}: the grid file is empty" in capsys.readouterr().err


def test_a_grid_no_step_reads_is_refused(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    notebook = tmp_path / "Unused_Parameter.ipynb"
    notebook.write_text(RIDGE.read_text().replace("rows = 40", "rows = 40\\nunused = 3"))
    grid.write_text("unused: [1, 2]\n")
    assert main(["compile", str(notebook), "--sweep", str(grid)]) == 1
    assert f"no step reads the swept parameters unused of {grid}" in capsys.readouterr().err


def test_a_when_on_a_swept_parameter_is_refused_naming_the_step(tmp_path, capsys):
    notebook = tmp_path / "Ridge_When.ipynb"
    notebook.write_text(RIDGE.read_text().replace('"step:score"', '"step:score", "when:alpha>1"'))
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    assert main(["compile", str(notebook), "--sweep", str(grid)]) == 1
    assert "step 'score': its when: tests the swept parameter 'alpha'" \
        in capsys.readouterr().err


def test_sweep_with_the_kfp_backend_submits_one_run_that_fans_out(
        grid_file, no_ambient_kfp, monkeypatch, tmp_path):
    import jupyter_mlops

    monkeypatch.setenv("HOME", str(tmp_path))
    with KfpApiStandIn() as api:
        monkeypatch.setenv("KFP_HOST", api.url)
        view = jupyter_mlops.sweep(RIDGE, grid_file, backend="kfp", jobs=3,
                                   experiment="ridge sweeps", tracking_uri="http://mlflow:5000")
        with pytest.raises(jupyter_mlops.MlopsError, match="wait apply to local sweeps only"):
            jupyter_mlops.sweep(RIDGE, grid_file, backend="kfp", wait=True)
    (run,) = api.posted("/apis/v2beta1/runs")
    name, loop = _loop(run.body["pipeline_spec"])
    assert json.loads(loop["parameterIterator"]["items"]["raw"]) == COMBINATIONS
    assert loop["iteratorPolicy"] == {"parallelismLimit": 3}
    assert run.body["runtime_config"]["parameters"] == {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
    assert run.body["display_name"].startswith("Sweep_Ridge ")
    (experiment,) = api.posted("/apis/v2beta1/experiments")
    assert experiment.body["display_name"] == "ridge sweeps"
    html = view.static_html()
    assert f'href="{api.url}/#/runs/details/run-1"' in html
    assert "2 combinations of alpha, fit_intercept" in html


def test_the_compiled_sweep_runs_under_kfp_local_once_per_combination(grid_file, tmp_path,
                                                                       monkeypatch):
    """kfp 2.17's local runner executes ParallelFor: load and describe once, train and score
    per combination, each with its alpha."""
    from sklearn.linear_model import Ridge

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    compiled = compile_notebook(RIDGE, sweep=read_grid(grid_file), install_packages=False)
    run = run_local(compiled.pipeline, tmp_path / "kfp", rows=30)
    assert {p.name for p in run.iterdir() if p.is_dir() and "iteration" not in p.name} == {
        "load", "describe"}
    iterations = sorted(p for p in run.iterdir() if "iteration" in p.name)
    assert [{p.name for p in i.iterdir()} for i in iterations] == [{"train", "score"}] * 2
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=30)
    for iteration, combination in zip(iterations, COMBINATIONS, strict=True):
        model = Ridge(alpha=combination["alpha"]).fit(X, y)
        assert kfp_metrics(iteration, "score") == pytest.approx(
            {"r2": model.score(X, y), "norm": np.abs(model.coef_).sum()})
