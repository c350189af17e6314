"""StepGraph building in our dialect: steps, inferred and explicit edges, parameters, metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import graph_of

from jupyter_mlops.errors import CellError, GraphError, NotebookError
from jupyter_mlops.notebook import read_graph

EXAMPLE = Path(__file__).parents[2] / "notebooks" / "02_tagged_pipeline.ipynb"


def edges(graph):
    return {(e.source, e.target): e.names for e in graph.edges}


def test_the_example_notebook_is_a_diamond_with_parallel_training():
    graph = read_graph(EXAMPLE)
    assert [s.name for s in graph.steps] == [
        "load", "features", "train-forest", "train-logreg", "evaluate"]
    assert set(edges(graph)) == {
        ("load", "features"), ("features", "train-forest"), ("features", "train-logreg"),
        ("features", "evaluate"), ("train-forest", "evaluate"), ("train-logreg", "evaluate")}
    assert edges(graph)[("load", "features")] == ("customers",)
    assert graph.metrics == {"accuracy": "evaluate", "f1": "evaluate"}
    assert graph.step("train-logreg").parameters == ["C"]
    assert [s.options.model for s in graph.steps] == [None, None, "forest", "logreg", None]
    assert "sklearn" in graph.step("load").imports
    assert graph.warnings == []


def test_no_step_tags_make_one_step_of_every_cell():
    graph = graph_of([("a = 1", []), "text", ("b = a + 1", [])])
    assert [s.name for s in graph.steps] == ["main"]
    assert [c.index for c in graph.steps[0].cells] == [0, 2]
    assert graph.edges == []


def test_setup_cells_come_first_in_every_step_and_bind_nothing_as_data():
    graph = graph_of([
        ("import math\ndef helper(x):\n    return math.sqrt(x)", ["setup"]),
        ("a = helper(4)", ["step:one"]),
        ("b = helper(a)", ["step:two"]),
    ])
    two = graph.step("two")
    assert [c.index for c in two.setup_cells] == [0]
    assert [c.index for c in two.own_cells] == [2]
    assert two.inputs == {"a": "one"}
    assert "math" in two.imports


def test_untagged_cells_join_the_step_before_them_and_skip_cells_are_left_out():
    graph = graph_of([
        ("x = 1", ["step:first"]),
        ("y = x * 2", []),
        ("plot(y)", ["skip"]),
        ("z = y", ["step:second"]),
    ])
    assert [c.index for c in graph.step("first").own_cells] == [0, 1]
    assert graph.step("second").inputs == {"y": "first"}
    assert all(c.index != 2 for s in graph.steps for c in s.cells)


def test_the_nearest_earlier_binding_step_is_the_upstream():
    graph = graph_of([
        ("v = 1", ["step:a"]),
        ("v = v + 1", ["step:b"]),
        ("w = v", ["step:c"]),
    ])
    assert graph.step("c").inputs == {"v": "b"}
    assert graph.step("b").inputs == {"v": "a"}
    assert graph.step("a").outputs == ["v"]


def test_needs_adds_an_edge_without_data():
    graph = graph_of([("a = 1", ["step:one"]), ("b = 2", ["step:two", "needs:one"])])
    assert edges(graph) == {("one", "two"): ()}


INFERENCE_CASES = [
    ("magics and shell escapes", "%matplotlib inline\n!pip install x\n%mlops log a=1\nr = d + 1",
     {"d"}, {"r"}),
    ("cell magic body", "%%time\nr = d * 2", {"d"}, {"r"}),
    ("line %time runs its statement here", "%time r = d * 2\n%timeit s = d", {"d"}, {"r"}),
    ("non-python cell magic", "%%bash\necho $d", set(), set()),
    ("comprehension locals", "r = [i * k for i in d]", {"d", "k"}, {"r"}),
    ("function parameters and locals", "def f(x):\n    y = x + d\n    return y\nr = f(1)",
     {"d"}, {"f", "r"}),
    ("names used only inside functions", "def f():\n    return d\n", {"d"}, {"f"}),
    ("class body", "class M(d):\n    k = 1\n    def g(self):\n        return k2\n",
     {"d", "k2"}, {"M"}),
    ("global in a function", "def f():\n    global r\n    r = d\nf()", {"d"}, {"f", "r"}),
    ("augmented assignment reads", "d += 1", {"d"}, {"d"}),
    ("del removes a binding", "r = 1\ndel r\ndel d", set(), set()),
    ("imports bind", "import numpy as np\nfrom os import path\nr = np.array(d)", {"d"},
     {"np", "path", "r"}),
    ("bound before read", "r = 1\ns = r", set(), {"r", "s"}),
    ("walrus", "if (r := len(d)):\n    pass", {"d"}, {"r"}),
    ("loop targets", "for i in d:\n    r = i", {"d"}, {"i", "r"}),
    ("with and except", "with open(d) as fh:\n    r = fh\ntry:\n    pass\nexcept E as err:\n"
     "    q = err", {"d", "E"}, {"fh", "r", "q"}),
    ("lambda", "r = lambda a: a + d", {"d"}, {"r"}),
]


@pytest.mark.parametrize(("case", "source", "reads", "binds"), INFERENCE_CASES,
                         ids=[c[0] for c in INFERENCE_CASES])
def test_reads_and_binds_are_inferred(case, source, reads, binds):
    graph = graph_of([("d = k = k2 = E = 1", ["step:up"]), (source, ["step:down"])])
    down = graph.step("down")
    assert set(down.inputs) == reads
    assert set(down.binds) == binds


def test_metrics_cell_names_its_bound_and_listed_names():
    graph = graph_of([
        ("acc = 0.9", ["step:train"]),
        ("loss = 0.1\nacc", ["metrics"]),
    ])
    assert graph.metrics == {"loss": "train", "acc": "train"}
    assert graph.step("train").metrics == ["acc", "loss"]


def test_parameters_are_typed_from_literals_and_read_by_the_steps_that_use_them():
    graph = graph_of([
        ("i = 1\nf = 0.5\ns = 'x'\nb = True\nl = [1, 2]\nd = {'k': 1}\nn = None\n"
         "neg = -3", ["parameters"]),
        ("r = i + f", ["step:one"]),
        ("q = [s, b, l, d, n]", ["step:two"]),
    ])
    types = {p.name: p.type for p in graph.parameters.values()}
    assert types == {"i": "int", "f": "float", "s": "str", "b": "bool", "l": "list",
                     "d": "dict", "n": "NoneType", "neg": "int"}
    assert graph.parameters["neg"].default == -3
    assert graph.step("one").parameters == ["f", "i"]
    assert graph.step("two").parameters == ["b", "d", "l", "n", "s"]
    assert graph.step("one").inputs == {}


def test_parameters_read_by_setup_cells_belong_to_every_step():
    graph = graph_of([
        ("seed = 1\nrate = 0.5", ["parameters"]),
        ("import random\nrandom.seed(seed)", ["setup"]),
        ("a = 1", ["step:one"]),
        ("b = a * rate", ["step:two"]),
    ])
    assert graph.step("one").parameters == ["seed"]
    assert graph.step("two").parameters == ["rate", "seed"]


@pytest.mark.parametrize(("source", "fault"), [
    ("x = compute()", "parameter 'x': its default is not a literal value"),
    ("x = (1, 2)", "type tuple is not one of"),
    ("print(1)", "a parameters cell holds only assignments"),
    ("a, b = 1, 2", "a parameters cell holds only assignments"),
])
def test_bad_parameters_cells_name_the_cell(source, fault):
    with pytest.raises(CellError) as caught:
        graph_of([(source, ["parameters"]), ("y = 1", [])])
    assert caught.value.cell_index == 0
    assert fault in str(caught.value)
    assert "test.ipynb: cell 1 (" in str(caught.value)


def test_soft_keywords_are_rejected_as_parameter_names():
    with pytest.raises(CellError, match="must not be a Python keyword"):
        graph_of([("match = 1", ["parameters"]), ("y = match", [])])


@pytest.mark.parametrize(("cells", "error", "fault"), [
    ([("a = 1", ["step:one", "needs:nowhere"])], CellError, "unknown step 'nowhere'"),
    ([("a = 1", ["step:one"]), ("b = 1", ["step:one"])], CellError,
     "duplicate step name 'one': cell 1 already starts it"),
    ([("a = 1", ["step:Train"])], CellError, "step name 'Train' is not DNS-safe"),
    ([("a = 1", ["step:" + "a" * 64])], CellError, "is not DNS-safe"),
    ([("a = 1", ["step:-x"])], CellError, "is not DNS-safe"),
    ([("a = 1", ["step:train_model"]), ("b = 1", ["step:train__model"])], GraphError,
     "step names 'train_model' (cell 1) and 'train__model' (cell 2) both become 'train-model'"),
    ([("a = 1", ["step:one", "needs:two"]), ("b = 1", ["step:two", "needs:one"])], GraphError,
     "dependency cycle one -> two -> one"),
    ([("a = b", ["step:one"]), ("b = a", ["step:two", "needs:two"])], GraphError,
     "dependency cycle two -> two"),
    ([("x = 1", []), ("a = 1", ["step:one"])], CellError,
     "comes before the first step tag and belongs to no step"),
    ([("a = 1", ["step:one", "retries:many"])], CellError,
     "malformed tag 'retries:many'; expected the form 'retries:3'"),
    ([("a = 1", ["step:one", "resources:cpu=lots"])], CellError, "not a Kubernetes quantity"),
    ([("a = 1", ["step:one", "timeout:0"])], CellError, "timeout must be a positive number"),
    ([("a = 1", ["setup", "step:one"])], CellError, "conflicting tags: setup, step:one"),
    ([("a = = 1", ["step:one"])], CellError, "line 1: syntax error"),
    ([("a = 1", ["step:train"]), ("b = 2", ["model:forest"])], CellError,
     "cell 2 ('b = 2'): model:forest: step 'train' never assigns nor uses 'forest'"),
    ([("forest = 1", ["step:train", "register:Churn_Forest"])], CellError,
     "register:Churn_Forest needs a model:VARIABLE tag on step 'train'"),
    ([("forest = 1", ["step:train", "model:2forest"])], CellError,
     "malformed tag 'model:2forest'; expected the form 'model:forest'"),
])
def test_invalid_notebooks_name_the_cell_and_the_reason(cells, error, fault):
    with pytest.raises(error) as caught:
        graph_of(cells)
    assert fault in str(caught.value)
    assert str(caught.value).startswith("test.ipynb: ")


@pytest.mark.parametrize("cells", [
    [], ["# Notes only"], [("", [])], [("n_estimators = 10", ["parameters"])],
    [("import math", ["setup"]), ("plot()", ["skip"])],
])
def test_a_notebook_with_no_code_to_run_is_refused_naming_it(cells):
    with pytest.raises(NotebookError) as caught:
        graph_of(cells, path="Churn_Model.ipynb")
    assert str(caught.value) == ("Churn_Model.ipynb: nothing to run: no code cell outside the "
                                 "parameters, setup and skip cells")


@pytest.mark.parametrize(("path", "name"), [
    ("Churn Model – Été.ipynb", "churn-model-ete"),
    ("Modèle_Prévision_V2.ipynb", "modele-prevision-v2"), ("модель.ipynb", "pipeline"),
])
def test_the_pipeline_is_named_after_the_notebook_with_its_accents_dropped(path, name):
    # the accented letters went too: "churn-model-t", "mod-le-pr-vision-v2"
    assert graph_of([("rows = 1", [])], path=path).name == name


def test_cycle_error_names_every_step_in_it():
    with pytest.raises(GraphError) as caught:
        graph_of([("a = c", ["step:one", "needs:three"]), ("b = a", ["step:two"]),
                  ("c = b", ["step:three"])])
    assert set(caught.value.steps) == {"one", "two", "three"}
    assert "'one' at cell 1" in str(caught.value)


def test_warnings_for_unknown_tags_unbound_names_and_rebound_parameters():
    graph = graph_of([
        ("lr = 0.1", ["parameters"]),
        ("a = undefined_thing", ["step:one", "hide-output"]),
        ("lr = 0.2\nb = lr", ["step:two"]),
    ])
    codes = {w.code: w for w in graph.warnings}
    assert set(codes) == {"unknown-tag", "unbound-name", "parameter-rebound"}
    assert "unknown tag 'hide-output' ignored" in codes["unknown-tag"].message
    assert codes["unknown-tag"].cell_index == 1
    assert "reads 'undefined_thing' before any step binds it" in codes["unbound-name"].message
    assert "step 'two' rebinds parameter 'lr'" in codes["parameter-rebound"].message


def test_name_bound_only_by_a_later_step_is_a_warning_not_an_edge():
    graph = graph_of([("a = later", ["step:one"]), ("later = 1", ["step:two"])])
    assert graph.edges == []
    assert [w.code for w in graph.warnings] == ["unbound-name"]


def test_step_options_from_tags(write_notebook):
    tags = ["step:one", "cache:off", "retries:2", "timeout:30", "image:python:3.11-slim",
            "resources:cpu=2,memory=4Gi", "resources:gpu=1"]
    graph = read_graph(write_notebook([("a = 1", tags)]))
    options = graph.step("one").options
    assert (options.cache, options.retries, options.timeout, options.image) == (
        False, 2, 30.0, "python:3.11-slim")
    assert (options.resources.cpu, options.resources.memory, options.resources.gpu) == (
        "2", "4Gi", "1")
    assert (options.model, options.register) == (None, None)


def test_model_and_register_tags_name_the_steps_model():
    graph = graph_of([("X = [[0.0]]", ["step:load"]),
                      ("forest = fit(X)", ["step:train", "model:forest"]),
                      ("score = 1.0", ["register:Churn_Forest"])])
    options = graph.step("train").options
    assert (options.model, options.register) == ("forest", "Churn_Forest")
    assert graph.step("load").options.model is None
    assert graph.to_dict()["steps"][1]["options"]["model"] == "forest"
    fitted_later = graph_of([("forest = make()", ["step:make"]),
                             ("forest.fit([[0.0]], [0])", ["step:fit", "model:forest"])])
    assert fitted_later.step("fit").options.model == "forest"


def test_order_respects_forward_needs():
    graph = graph_of([("a = 1", ["step:one", "needs:two"]), ("b = 2", ["step:two"])])
    assert [s.name for s in graph.order()] == ["two", "one"]
    assert graph.downstream("two") == {"one"}
    assert graph.upstream_of("one") == {"two"}


CHURN = [
    ("n_trees = 50", ["parameters"]),
    ("customers = load_customers()", ["step:load"]),
    ("features = encode(customers)", ["step:features"]),
    ("forest = fit(features, n_trees)", ["step:train"]),
]


def _retagged(tag: str) -> list:
    return [CHURN[0], CHURN[1], (CHURN[2][0], [tag]), CHURN[3]]


@pytest.mark.parametrize("typo", ["stpe:features", "step features"])
def test_a_misspelt_step_tag_is_refused_naming_the_cell_and_the_tag_meant(typo):
    # Ignored, the cell would silently fold into step 'load'
    with pytest.raises(CellError) as caught:
        graph_of(_retagged(typo), path="Churn_Pipeline.ipynb")
    assert str(caught.value) == (
        f"Churn_Pipeline.ipynb: cell 3 ('features = encode(customers)'): unknown tag "
        f"{typo!r}; did you mean 'step:features'?")


def test_a_tag_for_another_tool_or_in_a_kale_notebook_stays_a_warning():
    graph = graph_of(_retagged("hide-input") + [("report(forest)", ["step:report"])],
                     path="Churn_Pipeline.ipynb")
    assert [w.message for w in graph.warnings if w.code == "unknown-tag"] == [
        "cell 3 ('features = encode(customers)'): unknown tag 'hide-input' ignored"]
    kale = graph_of([("customers = load_customers()", ["block:load"]),
                     ("features = encode(customers)", ["stpe:features"])],
                    path="Churn_Kale.ipynb")
    assert "unknown tag 'stpe:features' ignored" in [w.message for w in kale.warnings][0]
