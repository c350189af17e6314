"""Checks made before kfp sees the graph, for what KFP would mangle, merge or not detect."""

from __future__ import annotations

import copy
import re

import nbformat
import pytest
from kfp_helpers import SMALL
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.cli import main
from jupyter_mlops.errors import MlopsError
from jupyter_mlops.kfp import KfpCompileError, compile_notebook
from jupyter_mlops.kfp.validate import validate
from jupyter_mlops.notebook import read_graph


@pytest.fixture
def graph():
    return read_graph(SMALL)


def test_a_pipeline_name_kfp_would_rename_is_refused(graph):
    with pytest.raises(KfpCompileError, match="KFP would rename it to 'nightly-run'"):
        validate(graph, "Nightly_Run")


def test_a_step_name_kfp_would_rename_is_refused(graph):
    bad = copy.deepcopy(graph)
    bad.steps[0].name = "Make_Data"
    with pytest.raises(KfpCompileError, match="KFP would rename this step to 'make-data'"):
        validate(bad, "small")


def test_two_steps_kfp_would_merge_are_refused(graph):
    bad = copy.deepcopy(graph)
    bad.steps[1].name = bad.steps[0].name
    with pytest.raises(KfpCompileError, match="KFP would merge it with step 'make'"):
        validate(bad, "small")


def test_a_cycle_is_refused_though_kfp_would_not_see_it(graph):
    bad = copy.deepcopy(graph)
    bad.step("make").upstream = ["report"]
    with pytest.raises(KfpCompileError, match="form a cycle"):
        validate(bad, "small")


def test_reserved_parameter_names_are_refused(tmp_path):
    notebook = nbformat.read(SMALL, as_version=4)
    notebook.cells[1].source += "\nmlops_values = 1"
    path = tmp_path / "reserved.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(KfpCompileError, match="'mlops_values': names starting with 'mlops_'"):
        compile_notebook(path)


def test_the_notebook_models_own_checks_apply_and_the_cli_reports_them(tmp_path, capsys):
    notebook = nbformat.read(SMALL, as_version=4)
    notebook.cells[3].metadata["tags"] = ["step:make", "needs:nowhere"]
    path = tmp_path / "bad.ipynb"
    nbformat.write(notebook, path)
    assert main(["compile", str(path), "-o", str(tmp_path / "bad.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and "Traceback" not in err
    assert not (tmp_path / "bad.yaml").exists()


def test_a_resource_kfp_refuses_names_the_step(graph):
    bad = copy.deepcopy(graph)
    bad.step("square").options.limits = {"cpu": "lots"}
    with pytest.raises(KfpCompileError, match="step 'square'"):
        compile_notebook(bad)


def _notebook(path, cells):
    notebook = new_notebook(cells=[new_code_cell(source, metadata={"tags": tags})
                                   for source, tags in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize(("cells", "expected"), [
    ([("a = 1", ["step:train_model"]), ("b = a", ["step:train__model"])],
     "'train_model' (cell 1) and 'train__model' (cell 2) both become 'train-model'"),
    ([("a = 1", ["step:one", "needs:two"]), ("b = 2", ["step:two", "needs:one"])],
     "dependency cycle one -> two -> one"),
])
def test_collisions_and_cycles_in_a_notebook_stop_the_compile_before_kfp(tmp_path, cells,
                                                                       expected):
    path = _notebook(tmp_path / "bad.ipynb", cells)
    with pytest.raises(MlopsError, match=re.escape(expected)):
        compile_notebook(path, tmp_path / "bad.yaml")
    assert not (tmp_path / "bad.yaml").exists()
