"""`gate:`, `register:` and `promote:` tags, checked as the graph is built: errors name the cell."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.errors import CellError
from jupyter_mlops.models.release import ReleasePlan
from jupyter_mlops.notebook import build_graph

TRAIN = ("from sklearn.ensemble import RandomForestClassifier\n"
         "forest = RandomForestClassifier(n_estimators=20).fit(X, y)")


def _graph(*cells: tuple[str, list[str]]):
    notebook = new_notebook(cells=[new_code_cell(source, metadata={"tags": tags})
                                   for source, tags in cells])
    return build_graph(notebook, "Train_Churn.ipynb")


def _pipeline(train_tags: list[str], metrics_tags: list[str]):
    return _graph(
        ("from sklearn.datasets import make_classification\nX, y = make_classification()",
         ["step:load"]),
        (TRAIN, ["step:train", *train_tags]),
        ("accuracy = forest.score(X, y)\nf1 = 0.5", ["metrics", *metrics_tags]))


def test_gates_on_a_metrics_cell_become_the_graphs_and_its_release_plan():
    graph = _pipeline(["model:forest", "register:Churn_Model", "promote:champion"],
                      ["gate:accuracy>=0.8", "gate:f1>=champion+0.01"])
    assert [(str(g.gate), g.step, g.cell_index) for g in graph.gates] == [
        ("accuracy>=0.8", "train", 2), ("f1>=champion+0.01", "train", 2)]
    assert graph.to_dict()["gates"][1] == {"gate": "f1>=champion+0.01", "step": "train",
                                           "cell": 2}
    plan = ReleasePlan.of(graph)
    assert plan is not None and ReleasePlan.from_dict(plan.to_dict()) == plan
    assert [r.model for r in plan.registrations] == ["Churn_Model"]
    assert [plan.blocks(g) for g in plan.parsed] == [True, False]  # the champion's decides


def test_a_gate_on_a_steps_first_cell_judges_that_steps_metrics():
    graph = _pipeline(["gate:accuracy>0.5"], [])
    assert [(g.gate.metric, g.step, g.cell_index) for g in graph.gates] == [
        ("accuracy", "train", 1)]
    assert ReleasePlan.of(_pipeline([], [])) is None


@pytest.mark.parametrize("train_tags, metrics_tags, cell, reason", [
    ([], ["gate:acc=>0.8"], 2, "tag 'gate:acc=>0.8': 'acc=>0.8' is not a gate"),
    ([], ["gate:recall>=0.8"], 2, "gate:recall>=0.8: no metrics cell or step reports 'recall' "
                                  "(metrics: accuracy, f1)"),
    (["model:forest"], ["gate:f1>=champion"], 2, "gate:f1>=champion compares with the champion "
                                                 "of the model the pipeline registers, but no "
                                                 "step is tagged register:MODEL"),
    (["model:forest", "promote:champion"], [], 1, "promote:champion needs a register:MODEL tag "
                                                  "on step 'train'"),
    (["promote:Not a@lias"], [], 1, "unknown tag"),
])
def test_a_bad_gate_or_promotion_names_the_cell(train_tags, metrics_tags, cell, reason):
    if reason == "unknown tag":  # a tag the grammar cannot read is malformed, not ignored
        with pytest.raises(CellError, match="malformed tag 'promote:Not a@lias'"):
            _pipeline(train_tags, metrics_tags)
        return
    with pytest.raises(CellError) as caught:
        _pipeline(train_tags, metrics_tags)
    assert caught.value.cell_index == cell
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"Train_Churn.ipynb: cell {cell + 1} (")


def test_the_graph_command_shows_each_steps_gates_and_model_tags():
    from jupyter_mlops.notebook.render import as_text

    text = as_text(_pipeline(["model:forest", "register:Churn_Model", "promote:champion"],
                             ["gate:accuracy>=0.8", "gate:f1>=champion+0.01"]))
    assert "    gates: accuracy>=0.8, f1>=champion+0.01\n" in text
    assert "    model: model:forest register:Churn_Model promote:champion\n" in text
