"""`jupyter-mlops graph` and the console script, as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "notebooks" / "02_tagged_pipeline.ipynb"
BIN = Path(sys.executable).parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "jupyter-mlops"), *args], capture_output=True, text=True,
                          timeout=60)


def test_version_and_help():
    assert cli("--version").stdout.startswith("jupyter-mlops ")
    helped = cli("--help")
    assert helped.returncode == 0 and "graph" in helped.stdout


def test_reachable_as_jupyter_subcommand():
    result = subprocess.run([str(BIN / "jupyter"), "mlops", "--version"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "jupyter-mlops" in result.stdout


def test_graph_text_lists_steps_edges_and_parameters():
    result = cli("graph", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "load -> features: customers" in result.stdout
    assert "n_customers: int = 3000" in result.stdout


def test_graph_json_mermaid_and_dot():
    data = json.loads(cli("graph", str(EXAMPLE), "--format", "json").stdout)
    assert [s["name"] for s in data["steps"]][:2] == ["load", "features"]
    assert {"source": "load", "target": "features", "names": ["customers"]} in data["edges"]
    assert "s_load -->|customers| s_features" in cli(
        "graph", str(EXAMPLE), "--format", "mermaid").stdout
    assert '"load" -> "features" [label="customers"];' in cli(
        "graph", str(EXAMPLE), "--format", "dot").stdout


def test_a_bad_log_level_is_named():
    result = subprocess.run([str(BIN / "jupyter-mlops"), "graph", str(EXAMPLE)], text=True,
                            capture_output=True, timeout=60,
                            env={**os.environ, "JUPYTER_MLOPS_LOG_LEVEL": "loud"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: JUPYTER_MLOPS_LOG_LEVEL='loud': not a log level")


def test_graph_error_exits_non_zero_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{oops")
    result = cli("graph", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {bad}: not valid JSON")
    assert "Traceback" not in result.stderr


def test_graph_imports_neither_mlflow_nor_kfp():
    code = ("import sys; from jupyter_mlops.cli import main; main(['graph', sys.argv[1]]); "
            "print('LOADED', sorted(set(sys.modules) & {'mlflow', 'kfp', 'papermill'}))")
    result = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True,
                            text=True, timeout=60)
    assert "LOADED []" in result.stdout, result.stdout + result.stderr


def test_graph_refuses_a_misspelt_step_tag_with_the_tag_meant(write_notebook):
    path = write_notebook(["# Churn pipeline", ("customers = load_customers()", ["step:load"]),
                           ("features = encode(customers)", ["stpe:features"])],
                          name="Churn_Pipeline.ipynb")
    result = cli("graph", str(path))
    assert result.returncode == 1, result.stdout
    # numbered as JupyterLab's status bar counts ("Cell 3 of 3"): from 1, the markdown included
    assert "cell 3 ('features = encode(customers)'): unknown tag 'stpe:features'; did you " \
        "mean 'step:features'?" in result.stderr
    path.write_text(path.read_text().replace("stpe:", "step:"))
    shown = cli("graph", str(path)).stdout
    assert "load  (cell 2)" in shown and "features  (cell 3)" in shown, shown


def test_run_of_a_notebook_with_nothing_to_run_says_so(write_notebook):
    path = write_notebook(["# Churn model: to be written", ("", [])], name="New_Churn_Model.ipynb")
    result = cli("run", str(path), "--no-track")
    assert result.returncode == 1, result.stdout
    assert result.stderr == (f"error: {path}: nothing to run: no code cell outside the "
                             "parameters, setup and skip cells\n")
