"""Hostile or odd input on the command line: one line naming the file, cell or field, a
non-zero exit, never a bare traceback; valid code however deeply nested gets its graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from .conftest import assert_clear_error, cli

PARAMETERS = "n_trees = 10\nlayer_sizes = [64, 32]\nlearning_rate = 0.1\n"


def write_notebook(folder: Path, name: str, cells: list[tuple[str, list[str]]],
                   metadata: dict | None = None) -> Path:
    notebook = new_notebook(metadata=metadata or {})
    for source, tags in cells:
        cell = new_code_cell(source)
        cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    path = folder / name
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def train_notebook(folder: Path, metadata: dict | None = None) -> Path:
    return write_notebook(folder, "Train_Forest.ipynb", [
        (PARAMETERS, ["parameters"]),
        ("forest_size = n_trees * len(layer_sizes)\nprint(forest_size)", ["step:train"]),
    ], metadata)


@pytest.mark.fault("traceback")
def test_deeply_nested_valid_code_gets_its_graph(tmp_path):
    chain = "cleaned = raw_frame" + ".copy()" * 300
    branches = "if n_trees == 0:\n    depth = 0\n" + "".join(
        f"elif n_trees == {i}:\n    depth = {i}\n" for i in range(1, 500))
    total = "score = " + " + ".join(f"w{i % 10}" for i in range(2500))
    weights = "".join(f"w{i} = 0.{i}\n" for i in range(10))
    path = write_notebook(tmp_path, "Deep_Code.ipynb", [
        (f"{PARAMETERS}raw_frame = 'x'\n{weights}", ["parameters"]),
        (chain, ["step:clean"]), (branches, ["step:branch"]), (total, ["step:score"]),
        ("print(cleaned, depth, score)", ["step:report"]),
    ])
    result = cli("graph", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for edge in ("clean -> report: cleaned", "branch -> report: depth", "score -> report: score"):
        assert edge in result.stdout


@pytest.mark.fault("traceback")
@pytest.mark.parametrize(("metadata", "field"), [
    ({"kubeflow_notebook": ["pipeline_name"]}, "kubeflow_notebook"),
    ({"kubeflow_notebook": "forest-pipeline"}, "kubeflow_notebook"),
    ({"kubeflow_notebook": {"pipeline_name": 5}}, "kubeflow_notebook.pipeline_name"),
    ({"kubeflow_notebook": {"docker_image": ["python:3.11"]}}, "kubeflow_notebook.docker_image"),
], ids=["list", "string", "name-number", "image-list"])
def test_kale_metadata_of_the_wrong_type_is_named(tmp_path, metadata, field):
    path = train_notebook(tmp_path, metadata)
    assert_clear_error(cli("graph", path, cwd=tmp_path), "Train_Forest.ipynb", f"'{field}'")


@pytest.mark.fault("traceback")
def test_a_parameter_default_too_deep_for_kfp_is_named_on_compile(tmp_path):
    deep = "[" * 150 + "1" + "]" * 150
    path = write_notebook(tmp_path, "Deep_Params.ipynb", [
        (f"n_trees = 10\nlayer_sizes = {deep}\n", ["parameters"]),
        ("print(n_trees, layer_sizes)", ["step:train"]),
    ])
    result = cli("compile", path, "--no-install", cwd=tmp_path)
    assert_clear_error(result, "Deep_Params.ipynb", "'layer_sizes'", "nested too deeply")


@pytest.mark.fault("traceback")
def test_an_nbformat_version_of_5000_digits_is_named(tmp_path):
    path = train_notebook(tmp_path)
    text = path.read_text().replace('"nbformat": 4', '"nbformat": ' + "4" * 5000)
    path.write_text(text)
    result = cli("graph", path, cwd=tmp_path)
    assert_clear_error(result, "Train_Forest.ipynb", "5000 digits")
    assert len((result.stdout + result.stderr).strip().splitlines()) == 1


@pytest.mark.fault("traceback")
@pytest.mark.parametrize(("name", "value"), [
    ("n_trees", "7" * 5000), ("layer_sizes", "[" * 5000 + "]" * 5000),
    ("layer_sizes", "[" * 900 + "]" * 900),
], ids=["int-5000-digits", "list-5000-deep", "list-900-deep"])
def test_a_huge_or_deep_p_value_is_refused_by_name(tmp_path, name, value):
    path = train_notebook(tmp_path)
    result = cli("run", path, "--no-track", "-q", "-p", name, value, cwd=tmp_path)
    assert_clear_error(result, "Train_Forest.ipynb", f"parameter {name!r}")
    assert len(result.stderr) < 1000  # the value is cut in the message


@pytest.mark.fault("traceback")
@pytest.mark.parametrize(("text", "named", "said"), [
    (b"n_trees: 5\nlayer_sizes: [1, \"\xff\xfe\"]\n", "forest_params.yaml", "not UTF-8"),
    (b"layer_sizes: &sizes [1, *sizes]\n", None, "itself"),
    (b"n_trees: " + b"7" * 5000 + b"\n", "forest_params.yaml", "5000 digits"),
    (b"learning_rate: 1" + b"0" * 4000 + b"\n", "'learning_rate'", "expected a float"),
], ids=["not-utf8", "self-referencing-anchor", "int-5000-digits", "float-4000-digits"])
def test_a_broken_params_file_is_named(tmp_path, text, named, said):
    path = train_notebook(tmp_path)
    params = tmp_path / "forest_params.yaml"
    params.write_bytes(text)
    result = cli("run", path, "--no-track", "-q", "-f", params, cwd=tmp_path)
    assert_clear_error(result, said, *([named] if named else []))
    if named is None:  # refused as the file is read (its aliases) or as the value is checked
        assert "forest_params.yaml" in result.stderr or "'layer_sizes'" in result.stderr


@pytest.mark.fault("traceback")
def test_a_symlink_loop_given_to_run_is_named(tmp_path):
    (tmp_path / "Loop_A.ipynb").symlink_to(tmp_path / "Loop_B.ipynb")
    (tmp_path / "Loop_B.ipynb").symlink_to(tmp_path / "Loop_A.ipynb")
    result = cli("run", "Loop_A.ipynb", "--no-track", "-q", cwd=tmp_path)
    assert_clear_error(result, "Loop_A.ipynb", "symbolic links")


@pytest.mark.fault("traceback")
def test_a_memory_error_from_the_parser_says_why(tmp_path):
    path = write_notebook(tmp_path, "Minus_Chain.ipynb", [
        (PARAMETERS, ["parameters"]), ("delta = " + "-" * 100_000 + "n_trees", ["step:train"]),
    ])
    result = cli("graph", path, cwd=tmp_path)
    assert_clear_error(result, "Minus_Chain.ipynb", "cell 2 (", "MemoryError", "nested")
    assert not result.stderr.rstrip().endswith(":")


@pytest.mark.fault("traceback")
def test_an_unknown_line_magic_shows_the_kernels_error_text(tmp_path):
    path = write_notebook(tmp_path, "Bad_Magic.ipynb", [
        (PARAMETERS, ["parameters"]), ("forest_size = n_trees\n%nosuchmagic 3", ["step:train"]),
    ])
    result = cli("run", path, "--no-track", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if "failed in cell 2 (" in line]
    assert failed, result.stderr
    assert "Line magic function `%nosuchmagic` not found" in failed[0]


@pytest.mark.fault("traceback")
@pytest.mark.parametrize(("pipeline", "config", "said"), [
    (b"root: {}\n# \xff\xfe\n", None, "not UTF-8"),
    (b"root: " + b"[" * 5000 + b"]" * 5000 + b"\n", None, "nested too deeply"),
    (b"root: {}\n", b"{\"host\": " + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b"root: {}\n", b"{\"host\": 5}", "'host' must be a string"),
], ids=["pipeline-not-utf8", "pipeline-5000-deep", "config-5000-deep", "config-host-number"])
def test_a_broken_pipeline_or_config_given_to_submit_is_named(tmp_path, pipeline, config, said):
    package = tmp_path / "Forest_Pipeline.yaml"
    package.write_bytes(pipeline)
    where = ["--host", "http://127.0.0.1:9"]
    if config is not None:
        (tmp_path / "kfp_config.json").write_bytes(config)
        where = ["--config", "kfp_config.json"]
    result = cli("submit", package, *where, "-p", "n_trees", "5", cwd=tmp_path)
    named = "kfp_config.json" if config is not None else "Forest_Pipeline.yaml"
    assert_clear_error(result, named, said)


@pytest.mark.fault("traceback")
def test_a_file_given_as_the_run_folder_is_named(tmp_path):
    path = train_notebook(tmp_path)
    (tmp_path / "results.txt").write_text("not a folder")
    result = cli("run", path, "--no-track", "-q", "--out", "results.txt", cwd=tmp_path)
    assert_clear_error(result, "results.txt", "Not a directory")


@pytest.mark.fault("traceback")
def test_a_folder_given_as_the_compile_output_is_named(tmp_path):
    path = train_notebook(tmp_path)
    (tmp_path / "pipelines").mkdir()
    result = cli("compile", path, "--no-install", "-o", "pipelines", cwd=tmp_path)
    assert_clear_error(result, "pipelines", "Is a directory")


@pytest.mark.fault("traceback")
def test_a_yaml_syntax_error_is_one_line_with_its_place(tmp_path):
    path = train_notebook(tmp_path)
    (tmp_path / "forest_params.yaml").write_text("n_trees: 5\nlayer_sizes: [64, 32\n")
    result = cli("run", path, "--no-track", "-q", "-f", "forest_params.yaml", cwd=tmp_path)
    assert_clear_error(result, "forest_params.yaml", "line 3, column 1")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.fault("traceback")
@pytest.mark.parametrize(("uri", "args", "named"), [
    ("htp://127.0.0.1:5000", ["run", "Train_Forest.ipynb", "-q"], "MLFLOW_TRACKING_URI="),
    ("sqlit:///mlflow.db", ["models", "list"], "MLFLOW_TRACKING_URI="),
    ("", ["models", "list", "--tracking-uri", "htp://127.0.0.1:5000"], "the store "),
])
def test_a_tracking_uri_mlflow_has_no_store_for_is_named_before_anything_runs(
        tmp_path, monkeypatch, uri, args, named):  # noqa: ANN001
    train_notebook(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = cli(*args, cwd=tmp_path)
    # run went on untracked after a warning; the sender retried it as a store that was down
    assert_clear_error(result, named, "MLflow has no store for the scheme", "did you mean ")
    assert result.returncode == 1 and not (tmp_path / ".mlops" / "runs").exists()


@pytest.mark.fault("traceback")
def test_a_folder_given_as_the_report_is_named_before_the_run(tmp_path):
    path = train_notebook(tmp_path)
    (tmp_path / "reports").mkdir()
    result = cli("run", path, "--no-track", "-q", "--report", "reports", cwd=tmp_path)
    # it was an IsADirectoryError traceback once the run had ended
    assert_clear_error(result, "the report reports is a folder", "reports/report.md")
    assert not (tmp_path / ".mlops" / "runs").exists()
