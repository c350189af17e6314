"""The compiled YAML: kfp's own spec, one component per step, typed parameters, options, bytes."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
import yaml
from kfp_helpers import DATA, EXAMPLE, KALE, SMALL
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.cli import main
from jupyter_mlops.kfp import compile_notebook
from jupyter_mlops.kfp.options import DEFAULT_IMAGE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example():
    compiled = compile_notebook(EXAMPLE)
    return compiled, yaml.safe_load(compiled.yaml)


def _tasks(spec: dict) -> dict:
    return spec["root"]["dag"]["tasks"]


def _command(spec: dict, step: str) -> str:
    return " ".join(spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]["command"])


def test_one_component_and_task_per_step_named_as_the_step(example):
    compiled, spec = example
    steps = [s.name for s in compiled.graph.steps]
    assert sorted(_tasks(spec)) == sorted(steps)
    assert sorted(spec["components"]) == sorted(f"comp-{s}" for s in steps)
    assert spec["pipelineInfo"]["name"] == "02-tagged-pipeline"
    assert _tasks(spec)["evaluate"]["dependentTasks"] == ["features", "train-forest",
                                                          "train-logreg"]


def test_parameters_are_typed_and_reach_only_the_steps_that_read_them(example):
    _, spec = example
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["C"] == {"defaultValue": 1.0, "isOptional": True,
                           "parameterType": "NUMBER_DOUBLE"}
    assert inputs["n_customers"]["parameterType"] == "NUMBER_INTEGER"
    assert inputs["MLFLOW_TRACKING_URI"]["defaultValue"] == ""
    reads = {name: set(task["inputs"].get("parameters", {})) - {"MLFLOW_TRACKING_URI",
                                                                 "mlops_kfp_run"}
             for name, task in _tasks(spec).items()}
    assert reads == {"load": {"n_customers", "seed"}, "features": {"seed", "test_size"},
                     "train-forest": {"max_depth", "n_estimators", "seed"},
                     "train-logreg": {"C"}, "evaluate": set()}


def test_values_travel_as_dataset_artifacts_and_metrics_as_a_metrics_artifact(example):
    _, spec = example
    evaluate = _tasks(spec)["evaluate"]["inputs"]["artifacts"]
    assert evaluate["mlops_from_train_forest"]["taskOutputArtifact"] == {
        "outputArtifactKey": "mlops_values", "producerTask": "train-forest"}
    outputs = spec["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]
    assert outputs["mlops_metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["mlops_notebook_html"]["artifactType"]["schemaTitle"] == "system.HTML"
    load = spec["components"]["comp-load"]["outputDefinitions"]["artifacts"]
    assert "mlops_metrics" not in load
    assert load["mlops_values"]["artifactType"]["schemaTitle"] == "system.Dataset"


def test_the_component_runs_the_runners_step_notebook_with_papermill(example):
    compiled, spec = example
    command = _command(spec, "train-logreg")
    # the runtime (papermill) from the steps package, which the component carries
    assert "from jupyter_mlops.steps.runtime import decode_json_parameter, run_step_notebook" \
        in command
    assert "_mlops_serializers.load" in command  # the runner's inputs cell, embedded
    assert "logreg = LogisticRegression(C=C, max_iter=500)" in command


def _installs(spec: dict, step: str) -> set[str]:
    """The pinned requirements a step's container pip-installs before it runs."""
    script = spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]["command"][2]
    return set(re.findall(r"'([A-Za-z0-9_.-]+==[^']+)'", script))


def _pins(*names: str) -> set[str]:
    return {f"{name}=={metadata.version(name)}" for name in names}


RUNTIME = ("papermill", "ipykernel", "nbconvert", "kfp")


def test_each_step_installs_the_pinned_distributions_its_own_code_imports():
    spec = yaml.safe_load(compile_notebook(SMALL).yaml)
    # setup imports math (standard library: nothing to install) and numpy
    assert _installs(spec, "make") == _pins(*RUNTIME, "numpy", "cloudpickle")


def _options_notebook(path: Path) -> Path:
    cells = [
        new_code_cell("rows = 3", metadata={"tags": ["parameters"]}),
        new_code_cell("import pandas as pd\nimport yaml\n"
                      "frame = pd.DataFrame({'a': list(range(rows))})\n"
                      "conf = yaml.safe_dump({'a': 1})", metadata={"tags": ["step:prep"]}),
        new_code_cell("total = int(frame.a.sum())", metadata={"tags": ["step:use"]}),
        new_code_cell("import my_helpers\nfitted = my_helpers.fit(total)",
                      metadata={"tags": ["step:fit", "resources:gpu=1", "image:python:3.12-slim",
                                         "timeout:30"]}),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def options_pipeline(tmp_path_factory):
    path = _options_notebook(tmp_path_factory.mktemp("options") / "options.ipynb")
    compiled = compile_notebook(path, accelerator="nvidia.com/a100")
    return compiled, yaml.safe_load(compiled.yaml)


def test_a_step_installs_only_its_own_imports_and_what_reading_its_inputs_needs(
        options_pipeline):
    compiled, spec = options_pipeline
    values = ("cloudpickle",)  # how any value is pickled and read back
    assert _installs(spec, "prep") == _pins(*RUNTIME, *values, "pandas", "pyarrow", "PyYAML")
    # `use` reads prep's DataFrame: pandas and pyarrow to load the Parquet, no PyYAML
    assert _installs(spec, "use") == _pins(*RUNTIME, *values, "pandas", "pyarrow")
    # `fit` imports a local module: it is not guessed into a pip package, but reported
    assert _installs(spec, "fit") == _pins(*RUNTIME, *values)
    assert any("my_helpers" in note and "not pip-installed" in note
               for note in compiled.warnings)


def test_per_step_image_gpu_and_timeout(options_pipeline):
    compiled, spec = options_pipeline
    executors = spec["deploymentSpec"]["executors"]
    assert executors["exec-fit"]["container"]["image"] == "python:3.12-slim"
    assert executors["exec-prep"]["container"]["image"] == DEFAULT_IMAGE
    accelerator = executors["exec-fit"]["container"]["resources"]["accelerator"]
    assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("nvidia.com/a100", "1")
    assert "resources" not in executors["exec-use"]["container"]
    assert "'timeout': 30.0" in _command(spec, "fit")  # enforced by the component itself
    assert "'timeout': None" in _command(spec, "use")


def test_no_install_leaves_pip_out_of_every_component():
    spec = yaml.safe_load(compile_notebook(SMALL, install_packages=False).yaml)
    for executor in spec["deploymentSpec"]["executors"].values():
        assert "pip install" not in " ".join(executor["container"]["command"])


def test_step_options_become_task_options():
    spec = yaml.safe_load(compile_notebook(SMALL, image="python:3.12-slim").yaml)
    tasks, executors = _tasks(spec), spec["deploymentSpec"]["executors"]
    assert tasks["square"]["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["side"]["cachingOptions"] == {}  # cache:off
    assert tasks["make"]["cachingOptions"] == {"enableCache": True}
    resources = executors["exec-square"]["container"]["resources"]
    assert resources["cpuRequest"] == 0.5
    assert resources["memoryRequest"] == pytest.approx(256 * 2**20 / 1e9)
    # needs:make,square: ordering-only edges, no values passed
    assert tasks["side"]["dependentTasks"] == ["make", "square"]
    assert "artifacts" not in tasks["side"].get("inputs", {})
    assert {e["container"]["image"] for e in executors.values()} == {"python:3.12-slim"}


def test_kale_limits_names_and_image_carry_over():
    compiled = compile_notebook(KALE)
    spec = yaml.safe_load(compiled.yaml)
    assert [s.name for s in compiled.graph.steps] == ["load-data", "train-model",
                                                      "evaluate-model"]
    assert _tasks(spec)["train-model"]["taskInfo"]["name"] == "train_model"
    container = spec["deploymentSpec"]["executors"]["exec-train-model"]["container"]
    assert container["resources"]["memoryLimit"] == pytest.approx(512 * 2**20 / 1e9)
    assert container["image"] == "python:3.11"  # the notebook's Kale docker_image
    reads = {n: set(t["inputs"]["parameters"]) for n, t in _tasks(spec).items()}
    assert "offset" not in reads["load-data"] and "offset" in reads["train-model"]


def test_a_none_default_travels_as_json_text():
    compiled = compile_notebook(SMALL)
    spec = yaml.safe_load(compiled.yaml)
    assert spec["root"]["inputDefinitions"]["parameters"]["note"]["defaultValue"] == "null"
    assert "'note': decode_json_parameter(note)" in _command(spec, "report")


def test_the_same_notebook_compiles_to_the_same_bytes_in_fresh_processes(tmp_path):
    """Other hash seeds, another working directory, a relative path: the same bytes."""
    outputs = []
    for seed, cwd, notebook in (("1", ROOT, str(EXAMPLE)),
                                ("2", EXAMPLE.parent, EXAMPLE.name)):
        target = tmp_path / f"p{seed}.yaml"
        subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "compile", notebook,
                        "-o", str(target)], check=True, cwd=cwd, capture_output=True,
                       env={**_env(), "PYTHONHASHSEED": seed})
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] == compile_notebook(EXAMPLE).yaml.encode()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_the_cli_writes_the_yaml_and_reports_warnings(tmp_path, capsys):
    target = tmp_path / "out" / "pipeline.yaml"
    assert main(["compile", str(SMALL), "-o", str(target), "--name", "nightly-small",
                 "--env", "MLFLOW_TRACKING_URI=http://mlflow:5000", "--packages",
                 "extra-lib==1.0"]) == 0
    spec = yaml.safe_load(target.read_text())
    assert spec["pipelineInfo"]["name"] == "nightly-small"
    assert "pipeline nightly-small: 4 steps" in capsys.readouterr().out
    container = spec["deploymentSpec"]["executors"]["exec-make"]["container"]
    assert container["env"] == [{"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"}]
    assert "'extra-lib==1.0'" in container["command"][2]


def test_the_yaml_holds_exactly_what_kfps_own_compiler_writes(tmp_path):
    from kfp import compiler

    compiled = compile_notebook(EXAMPLE)
    target = tmp_path / "kfp.yaml"
    compiler.Compiler().compile(compiled.pipeline, str(target))
    written = target.read_text()
    assert list(yaml.safe_load_all(compiled.yaml)) == list(yaml.safe_load_all(written))
    header = [line for line in written.splitlines() if line.startswith("#")]
    assert compiled.yaml.splitlines()[:len(header)] == header


def test_the_yaml_is_the_text_pyyamls_own_representer_writes():
    """The compiler represents MessageToDict's plain documents itself (faster): the text must
    be PyYAML's, byte for byte (strings, numbers, booleans, empty mappings, a PlatformSpec)."""
    text = compile_notebook(DATA / "Pod_Metadata.ipynb").yaml
    documents = list(yaml.safe_load_all(text))
    assert len(documents) == 2  # the pipeline spec and its PlatformSpec
    assert text.endswith(yaml.dump_all(documents, sort_keys=True, Dumper=yaml.CDumper))
