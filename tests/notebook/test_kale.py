"""Kubeflow Kale's dialect: the graph Kale would build, from Kale's tags and metadata."""

from __future__ import annotations

import pytest
from conftest import graph_of

from jupyter_mlops.errors import CellError, GraphError

KALE_METADATA = {"kubeflow_notebook": {
    "pipeline_name": "Titanic ML", "experiment": {"id": "new", "name": "titanic"},
    "docker_image": "gcr.io/arrikto/jupyter-kale:latest", "pipeline_description": "demo"}}

KALE_NOTEBOOK = [
    ("import pandas as pd\nimport numpy as np", ["imports"]),
    ("def clean(df):\n    return df.dropna()", ["functions"]),
    ("rows = 100\nratio = 0.3", ["pipeline-parameters"]),
    ("raw = pd.DataFrame({'a': np.arange(rows)})", ["block:load_data"]),
    ("raw.head()", ["skip"]),
    ("data = clean(raw)", ["block:prepare", "prev:load_data"]),
    ("cut = int(len(data) * ratio)", []),
    ("train = data[:cut]", ["step:", "limit:nvidia.com/gpu:1"]),
    ("model_a = train.a.mean()", ["block:fit_a", "prev:prepare", "annotation:team:ml"]),
    ("model_b = train.a.max()", ["block:fit_b", "prev:prepare", "label:tier:gold",
                                 "cache:disabled"]),
    ("score = model_a + model_b", ["block:evaluate", "prev:fit_a", "prev:fit_b"]),
    ("score", ["pipeline-metrics"]),
]


def test_kale_notebook_builds_kales_graph():
    graph = graph_of(KALE_NOTEBOOK, KALE_METADATA)
    assert graph.dialect == "kale"
    assert [s.name for s in graph.steps] == [
        "load-data", "prepare", "fit-a", "fit-b", "evaluate"]
    assert [s.tagged_name for s in graph.steps][0] == "load_data"
    assert {(e.source, e.target) for e in graph.edges} == {
        ("load-data", "prepare"), ("prepare", "fit-a"), ("prepare", "fit-b"),
        ("fit-a", "evaluate"), ("fit-b", "evaluate")}
    assert graph.name == "titanic-ml"
    assert graph.experiment == "titanic"
    assert graph.base_image == "gcr.io/arrikto/jupyter-kale:latest"
    assert graph.metrics == {"score": "evaluate"}


def test_kale_cells_options_and_parameters():
    graph = graph_of(KALE_NOTEBOOK, KALE_METADATA)
    prepare = graph.step("prepare")
    assert [c.index for c in prepare.own_cells] == [5, 6, 7]  # bare step: continues prepare
    assert [c.index for c in prepare.setup_cells] == [0, 1]  # imports and functions
    assert prepare.options.limits == {"nvidia.com/gpu": "1"}
    assert prepare.parameters == ["ratio"]
    assert graph.step("fit-a").options.annotations == {"team": "ml"}
    assert graph.step("fit-b").options.labels == {"tier": "gold"}
    assert graph.step("fit-b").options.cache is False
    assert set(graph.parameters) == {"rows", "ratio"}


def test_kale_values_flow_from_ancestors_only_along_prev_edges():
    graph = graph_of(KALE_NOTEBOOK, KALE_METADATA)
    assert graph.step("fit-a").inputs == {"train": "prepare"}
    assert graph.step("evaluate").inputs == {"model_a": "fit-a", "model_b": "fit-b"}
    # prepare is no parent of evaluate, so no edge, and none is inferred
    assert ("prepare", "evaluate") not in {(e.source, e.target) for e in graph.edges}


def test_kale_step_without_prev_is_a_root_even_when_it_reads_an_earlier_name():
    graph = graph_of([("a = 1", ["block:one"]), ("b = a", ["block:two"])])
    assert graph.dialect == "kale"
    assert graph.edges == []
    assert graph.step("two").inputs == {}
    assert [w.code for w in graph.warnings] == ["unbound-name"]


def test_kale_merges_blocks_of_the_same_name():
    graph = graph_of([("a = 1", ["block:one"]), ("b = 2", ["block:two", "prev:one"]),
                      ("c = a", ["block:one"])])
    assert [c.index for c in graph.step("one").own_cells] == [0, 2]


def test_kale_metadata_alone_selects_the_kale_dialect():
    graph = graph_of([("a = 1", ["step:one"]), ("b = a", ["step:two"])], KALE_METADATA)
    assert graph.dialect == "kale"
    assert graph.edges == []


def test_kale_underscore_names_colliding_after_mapping_are_an_error():
    with pytest.raises(GraphError, match="both become 'train-model'"):
        graph_of([("a = 1", ["block:train_model"]), ("b = 1", ["block:train-model"])])


def test_kale_prev_naming_an_unknown_block_names_the_cell():
    with pytest.raises(CellError, match="cell 1 .*unknown step 'missing'"):
        graph_of([("a = 1", ["block:one"]), ("b = 1", ["block:two", "prev:missing"])])


def test_kale_prev_cycle_is_an_error():
    with pytest.raises(GraphError, match="dependency cycle"):
        graph_of([("a = 1", ["block:one", "prev:two"]), ("b = 1", ["block:two", "prev:one"])])
