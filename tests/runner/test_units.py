"""Pieces of the runner that need no kernel: step notebooks, parameters, plans, cache keys."""

from __future__ import annotations

import nbformat
import pytest

from jupyter_mlops.errors import ParameterError, RunnerError
from jupyter_mlops.notebook import read_graph
from jupyter_mlops.runner import cache, options
from jupyter_mlops.runner.cache import CACHE, FORCE, REUSE, make_plan
from jupyter_mlops.steps.step_notebook import build_step_notebook

from .conftest import DATA


@pytest.fixture(scope="module")
def diamond():
    return read_graph(str(DATA / "diamond.ipynb"))


@pytest.fixture(scope="module")
def cached():
    return read_graph(str(DATA / "cached.ipynb"))


# --- step notebooks -------------------------------------------------------------------------

def test_a_step_notebook_has_parameters_inputs_setup_own_cells_outputs(diamond):
    notebook = build_step_notebook(diamond, diamond.step("join"))
    roles = [cell.metadata["mlops"]["role"] for cell in notebook.cells]
    assert roles == ["parameters", "inputs", "setup", "step", "step", "outputs"]
    assert notebook.cells[0].metadata["tags"] == ["parameters"]  # papermill injects after it
    inputs = notebook.cells[1].source
    assert "left = _mlops_serializers.load" in inputs and "seen = " in inputs
    assert notebook.cells[2].source == "import numpy as np\nimport pandas as pd"
    assert "total = left + right" in notebook.cells[3].source
    assert "write_metrics(_mlops_metrics_path, {'total': globals().get('total')})" \
        in notebook.cells[-1].source


def test_tags_with_commas_stay_out_of_the_cell_tags(diamond):
    notebook = build_step_notebook(diamond, diamond.step("join"))
    nbformat.validate(notebook)  # `needs:left,right` would fail the tag pattern
    own = notebook.cells[3]
    assert "tags" not in own.metadata
    assert own.metadata["mlops"] == {"role": "step", "cell_index": 6,
                                     "tags": ["step:join", "needs:left,right"]}


def test_the_same_step_always_gives_the_same_notebook(diamond):
    first = build_step_notebook(diamond, diamond.step("source"))
    again = build_step_notebook(diamond, diamond.step("source"))
    assert nbformat.writes(first) == nbformat.writes(again)


def test_parameters_read_by_setup_cells_reach_every_step():
    graph = read_graph(str(DATA / "meet.ipynb"))
    step = graph.step("branch-a")
    assert step.parameters == ["meet_dir", "wait_s"]
    source = build_step_notebook(graph, step).cells[0].source
    assert "meet_dir = ''" in source and "wait_s = 20.0" in source


# --- parameters -----------------------------------------------------------------------------

def test_values_are_typed_from_the_cell_and_the_command_line(diamond):
    values = options.resolve(diamond, {"rate": 2}, [
        ("n", "5"), ("name", "7"), ("flag", "false"), ("items", "[3, 4]"),
        ("opts", "{'a': 1}"), ("nothing", "text")])
    assert values == {"n": 5, "rate": 2.0, "name": "7", "flag": False, "items": [3, 4],
                      "opts": {"a": 1}, "nothing": "text"}
    assert type(values["rate"]) is float


@pytest.mark.parametrize(("given", "fragment"), [
    ({"epochs": 3}, "'epochs': unknown parameter (known: n, rate"),
    ({"n": "three"}, "'n': expected an int (a whole number such as 3), got 'three' "
                     "(the default is 3)"),
    ({"n": 2.5}, "'n': expected an int"),
    ({"flag": 1}, "'flag': expected a bool"),
    ({"rate": True}, "'rate': expected a float"),
    ({"items": "a"}, "'items': expected a list"),
    ({"opts": {1: "x"}}, "dictionary keys must be strings"),
    ({"items": [object()]}, "values of type object are not accepted"),
    ({"nothing": b"raw"}, "values of type bytes are not accepted"),
])
def test_unknown_names_and_wrong_types_are_errors_naming_them(diamond, given, fragment):
    with pytest.raises(ParameterError) as caught:
        options.resolve(diamond, given)
    assert str(caught.value).startswith(f"{diamond.path}: parameter ")
    assert fragment in str(caught.value)


@pytest.mark.parametrize("name", ["x=1;import os", "n\nimport os", "__import__('os')", "1n",
                                  "class", "nämé"])
def test_names_that_are_not_identifiers_are_rejected(diamond, name):
    with pytest.raises(ParameterError, match="identifier|keyword"):
        options.resolve(diamond, {name: 1})
    with pytest.raises(ParameterError):
        options.resolve(diamond, {}, [(name, "1")])


def test_a_params_file_is_a_mapping(tmp_path, diamond):
    good = tmp_path / "good.yaml"
    good.write_text("n: 9\nname: from-file\n")
    assert options.read_params_file(good) == {"n": 9, "name": "from-file"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ParameterError, match="bad.yaml"):
        options.read_params_file(bad)
    with pytest.raises(ParameterError, match="missing.yaml"):
        options.read_params_file(tmp_path / "missing.yaml")


# --- plans ----------------------------------------------------------------------------------

def test_plans_for_a_whole_run_from_and_only(cached):
    assert make_plan(cached) == {"first": CACHE, "second": CACHE, "third": CACHE,
                                 "always": FORCE}
    assert set(make_plan(cached, cache=False).values()) == {FORCE}
    assert make_plan(cached, from_step="second") == {"first": CACHE, "second": FORCE,
                                                     "third": FORCE}
    assert make_plan(cached, only="third") == {"first": REUSE, "second": REUSE, "third": FORCE}


def test_an_unknown_step_is_named(cached):
    with pytest.raises(RunnerError, match="no step named 'fourth' .*first, second"):
        make_plan(cached, from_step="fourth")


# --- cache keys -----------------------------------------------------------------------------

def _key(code="x = 1", params=None, inputs=None, modules=None):
    env = cache.Environment("cpython-3.11.7", modules or {"numpy": "numpy==2.0"})
    return cache.step_key([code], params or {"a": 1}, inputs or {"v": "abc"}, env)


def test_every_part_of_the_key_changes_it():
    base = _key()
    assert _key() == base
    assert _key(code="x = 2") != base
    assert _key(params={"a": 2}) != base
    assert _key(params={"a": 1.0}) != base  # 1 and 1.0 differ as parameter values
    assert _key(inputs={"v": "abd"}) != base
    assert _key(modules={"numpy": "numpy==2.1"}) != base


def test_the_environment_names_versions_and_hashes_local_modules(tmp_path):
    (tmp_path / "helpers.py").write_text("K = 1\n")
    env = cache.environment(["numpy", "os", "helpers", "nowhere"], [str(tmp_path)])
    assert env.modules["numpy"].startswith("numpy==")
    assert "os" not in env.modules  # the Python version covers the standard library
    assert env.modules["nowhere"] == "missing"
    before = env.modules["helpers"]
    (tmp_path / "helpers.py").write_text("K = 2\n")
    assert cache.environment(["helpers"], [str(tmp_path)]).modules["helpers"] != before


def test_runs_writing_the_distribution_index_together_do_not_collide(tmp_path, monkeypatch):
    """Two runs in one process (the server's, or threads) may both build the module index."""
    import json
    import threading

    # The real map takes ~0.5 s to build; a small one makes many rounds of the race cheap.
    monkeypatch.setattr(cache.metadata, "packages_distributions",
                        lambda: {"nbformat": ["nbformat"]})
    errors: list[BaseException] = []
    for round_ in range(100):
        index = tmp_path / str(round_) / "distributions.json"
        start = threading.Barrier(8)

        def build(index=index, start=start) -> None:  # noqa: ANN001
            start.wait()
            try:
                assert cache.Versions(index).distributions("nbformat") == ["nbformat"]
            except BaseException as error:  # noqa: BLE001 - collected for the assertion below
                errors.append(error)

        threads = [threading.Thread(target=build) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert json.loads(index.read_text())["distributions"] == {"nbformat": ["nbformat"]}
        assert [p.name for p in index.parent.iterdir()] == ["distributions.json"]  # no staging
