"""Kubeflow Kale's dialect: the graph Kale would build, from Kale's tags and metadata.

Kale's semantics are read from its source (kubeflow/kale, Kale 2.x):
kale/processors/nbprocessor.py (NotebookProcessor.parse_notebook, NotebookConfig) and the
compiled DSL of its test assets (kale/tests/assets/kfp_dsl/).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import graph_of
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

from jupyter_mlops.errors import CellError, GraphError, NotebookError
from jupyter_mlops.kfp import compile_notebook
from jupyter_mlops.notebook import Edge, read_graph
from jupyter_mlops.notebook.model import SecretEnv, VolumeMount

DATA = Path(__file__).resolve().parents[1] / "data" / "kale"

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


def test_kale_step_without_prev_runs_after_the_step_above_but_receives_no_values():
    """Kale passes values along prev: edges only; the notebook-order edge just orders."""
    graph = graph_of([("a = 1", ["block:one"]), ("b = a", ["block:two"])])
    assert graph.dialect == "kale"
    assert graph.edges == [Edge("one", "two", ())]
    assert graph.step("two").inputs == {}
    assert [w.code for w in graph.warnings] == ["unbound-name"]


def test_kale_merges_blocks_of_the_same_name():
    graph = graph_of([("a = 1", ["block:one"]), ("b = 2", ["block:two", "prev:one"]),
                      ("c = a", ["block:one"])])
    assert [c.index for c in graph.step("one").own_cells] == [0, 2]


def test_kale_metadata_alone_selects_the_kale_dialect():
    graph = graph_of([("a = 1", ["step:one"]), ("b = a", ["step:two"])], KALE_METADATA)
    assert graph.dialect == "kale"
    assert graph.edges == [Edge("one", "two", ())]  # Kale's order, no value passed


def test_kale_underscore_names_colliding_after_mapping_are_an_error():
    with pytest.raises(GraphError, match="both become 'train-model'"):
        graph_of([("a = 1", ["block:train_model"]), ("b = 1", ["block:train-model"])])


def test_kale_prev_naming_an_unknown_block_names_the_cell():
    with pytest.raises(CellError, match="cell 2 .*unknown step 'missing'"):
        graph_of([("a = 1", ["block:one"]), ("b = 1", ["block:two", "prev:missing"])])


def test_kale_prev_cycle_is_an_error():
    with pytest.raises(GraphError, match="dependency cycle"):
        graph_of([("a = 1", ["block:one", "prev:two"]), ("b = 1", ["block:two", "prev:one"])])


def _compiled(name: str) -> tuple[str, dict]:
    """The YAML and its pipeline spec; a PlatformSpec, when there is one, is the second
    document."""
    compiled = compile_notebook(DATA / name, install_packages=False)
    return compiled.yaml, next(yaml.safe_load_all(compiled.yaml))


def test_untagged_cells_before_the_first_step_are_left_out_and_said():
    """Kale's parse_notebook merges an untagged cell into the block before it and drops it
    when there is none ("current_block might be None in case the first cells of the
    notebooks have not been tagged")."""
    graph = read_graph(DATA / "Untagged_Preamble.ipynb")
    assert [(s.name, [c.index for c in s.cells]) for s in graph.steps] == [
        ("load-customers", [3, 4]), ("score", [3, 5])]
    left_out = [w for w in graph.warnings if w.code == "left-out-cell"]
    assert [w.cell_index for w in left_out] == [1, 2]
    assert "cell 3 ('raw_preview.describe()  # exploring_only') comes before the first step" \
        in left_out[1].message and "left out of the pipeline" in left_out[1].message
    text, spec = _compiled("Untagged_Preamble.ipynb")
    assert sorted(spec["root"]["dag"]["tasks"]) == ["load-customers", "score"]
    assert "exploring_only" not in text and "raw_preview" not in text


def test_our_dialect_still_refuses_a_cell_before_the_first_step_and_says_how_to_tag_it():
    with pytest.raises(CellError) as caught:
        graph_of([("import pandas as pd", []), ("a = 1", ["step:one"])])
    message = str(caught.value)
    assert "cell 1 ('import pandas as pd')" in message
    assert "tag it skip to leave it out of the pipeline, setup to run it" in message


def test_untagged_cells_continue_the_imports_functions_and_parameters_blocks():
    """In Kale an untagged cell after `imports`, `functions` or `pipeline-parameters` joins
    that block, even after a step; every step starts with the imports, then the functions."""
    graph = read_graph(DATA / "Block_Continuation.ipynb")
    assert [c.index for c in graph.setup_cells] == [0, 1, 9, 10, 2, 3]
    for step in graph.steps:
        assert [c.index for c in step.setup_cells] == [0, 1, 9, 10, 2, 3]
    assert {n: p.default for n, p in graph.parameters.items()} == {"rate": 0.5, "epochs": 3}
    assert [[c.index for c in s.own_cells] for s in graph.steps] == [[6], [7, 8], [11]]
    assert graph.step("load").parameters == ["epochs"]
    assert graph.step("report").inputs == {"mean": "summarise", "spread": "summarise"}
    assert graph.warnings == []
    _, spec = _compiled("Block_Continuation.ipynb")
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["epochs"]["defaultValue"] == 3 and inputs["rate"]["defaultValue"] == 0.5
    assert "epochs" in spec["root"]["dag"]["tasks"]["load"]["inputs"]["parameters"]


def test_steps_without_prev_follow_the_step_above_them_as_kale_2_chains_them():
    """Kale 2.x's compiled DSL orders a step with no prev: after the step above it
    (kale/tests/assets/kfp_dsl/mount_pvc_env_var.py: `train_task.after(load_task)`), so
    `clean` reads the file `fetch` wrote to the shared volume; a step with prev: follows only
    its prev: steps."""
    graph = read_graph(DATA / "Notebook_Order.ipynb")
    assert graph.edges == [Edge("fetch", "clean", ()), Edge("fetch", "train", ("fetched",)),
                           Edge("train", "report", ())]
    assert graph.warnings == []
    _, spec = _compiled("Notebook_Order.ipynb")
    tasks = spec["root"]["dag"]["tasks"]
    assert "dependentTasks" not in tasks["fetch"]
    assert tasks["clean"]["dependentTasks"] == ["fetch"]
    assert "artifacts" not in tasks["clean"].get("inputs", {})  # ordering only
    assert tasks["report"]["dependentTasks"] == ["train"]


def test_our_dialect_runs_steps_with_no_edge_in_parallel():
    graph = graph_of([("rows = [3, 1]", ["step:fetch"]), ("print('clean')", ["step:clean"])])
    assert graph.dialect == "mlops"
    assert graph.edges == []


def test_a_notebook_reference_is_refused_naming_the_cell():
    """Kale 2.3's `notebook:NAME` cell composes another notebook's pipeline into this one
    (kale/tests/unit_tests/test_composition.py); we cannot, so we say so, not ignore it."""
    with pytest.raises(CellError) as caught:
        read_graph(DATA / "Composed_Notebook.ipynb")
    message = str(caught.value)
    assert "cell 2 ('# references the training notebook'): tag 'notebook:train_model'" in message
    assert "compile that notebook on its own" in message


def test_kale_secret_tags_and_metrics_printed_from_parameters_are_honoured(tmp_path):
    """Kale's `secret:NAME:KEY:ENV` (kubeflow/kale#891, kfp.kubernetes.use_secret_as_env) is
    our own secret: tag. A pipeline-metrics cell's print(PARAMETER) is reported from the last
    step reading the parameter, or the last step (Kale's assign_metrics would drop it)."""
    from jupyter_mlops.runner import RunOptions, run_pipeline

    path = DATA / "Secret_And_Metrics.ipynb"
    graph = read_graph(path)
    assert graph.warnings == []
    assert graph.step("train").options.secrets == (
        SecretEnv("db-credentials", "password", "DB_PASSWORD"),)
    assert graph.metrics == {"accuracy": "evaluate", "learning_rate": "train",
                             "n_trees": "evaluate"}
    assert graph.step("evaluate").parameters == ["n_trees"]
    text, spec = _compiled("Secret_And_Metrics.ipynb")
    platform = list(yaml.safe_load_all(text))[1]["platforms"]["kubernetes"]
    (secret,) = platform["deploymentSpec"]["executors"]["exec-train"]["secretAsEnv"]
    assert secret["secretName"] == "db-credentials"
    assert secret["keyToEnv"] == [{"envVar": "DB_PASSWORD", "secretKey": "password"}]
    assert "n_trees" in spec["root"]["dag"]["tasks"]["evaluate"]["inputs"]["parameters"]
    result = run_pipeline(path, RunOptions(parameters={"n_trees": 80}, out=tmp_path,
                                           track=False, cache=False, quiet=True))
    assert result.ok, [str(error) for error in result.failures]
    assert result.steps["train"].metrics == {"learning_rate": 0.1}
    assert result.steps["evaluate"].metrics == {"accuracy": 0.81, "n_trees": 80}


def test_kale_volumes_steps_defaults_and_caching_reach_every_step():
    """Kale's metadata (kale/pipeline.py PipelineConfig; kale/tests/assets/kfp_dsl/
    mount_pvc_env_var.py): each `pvc` volume is mounted in every step, KALE_VOLUME_<NAME> set
    to its mount point when exposed; steps_defaults are step tags every step takes, its own
    tags winning; enable_caching false turns caching off where a step does not ask for it."""
    graph = read_graph(DATA / "Volumes_Defaults.ipynb")
    assert graph.warnings == []
    load, train = graph.step("load").options, graph.step("train").options
    for options in (load, train):
        assert options.volumes == (VolumeMount("raw-data", "/data"),
                                   VolumeMount("model-store", "/models"))
        assert options.env == {"KALE_VOLUME_RAW_DATA": "/data"}
        assert options.secrets == (SecretEnv("db-credentials", "password", "DB_PASSWORD"),)
        assert options.annotations == {"owner": "data-team"}
        assert options.limits == {"memory": "2Gi"}
    assert load.labels == {"team": "ml"} and train.labels == {"team": "ml", "tier": "gold"}
    assert load.cache is False and train.cache is True  # train's cache:enabled wins

    first = compile_notebook(DATA / "Volumes_Defaults.ipynb", install_packages=False).yaml
    again = compile_notebook(DATA / "Volumes_Defaults.ipynb", install_packages=False).yaml
    assert first == again
    spec, platform = yaml.safe_load_all(first)
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["load"]["cachingOptions"].get("enableCache", False) is False
    assert tasks["train"]["cachingOptions"] == {"enableCache": True}
    container = spec["deploymentSpec"]["executors"]["exec-load"]["container"]
    assert {"name": "KALE_VOLUME_RAW_DATA", "value": "/data"} in container["env"]
    assert container["resources"]["resourceMemoryLimit"] == "2Gi"
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    config = json_format.ParseDict(executors["exec-train"], k8s.KubernetesExecutorConfig())
    assert [(m.constant, m.mount_path) for m in config.pvc_mount] == [
        ("raw-data", "/data"), ("model-store", "/models")]
    assert [s.secret_name for s in config.secret_as_env] == ["db-credentials"]
    assert dict(config.pod_metadata.labels) == {"team": "ml", "tier": "gold"}


@pytest.mark.parametrize(("kale", "message"), [
    ({"volumes": [{"name": "scratch", "type": "new_pvc", "mount_point": "/scratch"}]},
     "'kubeflow_notebook.volumes[0]': a volume of type 'new_pvc' is one Kale creates"),
    ({"volumes": [{"name": "my-data", "type": "pvc", "mount_point": "/a",
                   "expose_as_env_var": True},
                  {"name": "my.data", "type": "pvc", "mount_point": "/b",
                   "expose_as_env_var": True}]},
     "volumes 'my-data' and 'my.data' would both set KALE_VOLUME_MY_DATA"),
    ({"volumes": [{"name": "data", "type": "pvc", "mount_point": "relative"}]},
     "'kubeflow_notebook.volumes[0]': tag 'volume:data:relative': the mount path"),
    ({"steps_defaults": ["step:train"]},
     "'kubeflow_notebook.steps_defaults[0]': 'step:train' is not a step setting"),
    ({"steps_defaults": {"labels": {"team": "Data Team"}}},
     "'kubeflow_notebook.steps_defaults.labels': tag 'label:team:Data Team'"),
    ({"enable_caching": "no"}, "'kubeflow_notebook.enable_caching' must be true or false"),
], ids=["new-pvc", "env-clash", "relative-path", "step-tag", "bad-label", "caching-text"])
def test_kale_metadata_a_step_cannot_take_is_refused_naming_the_field(kale, message):
    with pytest.raises(NotebookError, match=re.escape(message)):
        graph_of([("a = 1", ["step:one"])], {"kubeflow_notebook": kale})
