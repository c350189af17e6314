"""notebooks/05_gate_and_promote.ipynb run as a local pipeline against a real SQLite registry:
the first run registers the winner and makes it champion, a run with fewer trees registers a
challenger that does not beat it (said in the output), and a run whose quality gate fails
exits 3 from the CLI naming the metric, its value and the threshold, registering nothing.
Each registered version carries its gates' verdicts. The release once more through `mlflow
server`: registered, promoted, listed with its lineage and its verdicts."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlops.runner import RunOptions, run_pipeline
from jupyter_mlops.steps import mlflow_vocabulary as vocab

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_gate_and_promote.ipynb"
MODEL = "Churn_Classifier"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The notebook in a user's folder, its store, and its two runs: the second with fewer
    trees, so its winner does not beat the first's."""
    folder = tmp_path_factory.mktemp("Churn_Project")
    notebook = folder / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    runs = []
    for number, parameters in ((1, {}), (2, {"n_estimators": 3})):
        stream = io.StringIO()
        result = run_pipeline(notebook, RunOptions(
            parameters=parameters, out=folder / ".mlops", tracking_uri=uri, stream=stream,
            jobs=2, report=folder / f"report-{number}.md"))
        runs.append((result, stream.getvalue()))
    yield folder, notebook, uri, runs
    from jupyter_mlops.runner.mlflow_runs import close_trackers

    close_trackers()


def _aliases(uri: str) -> dict[str, int]:
    from mlflow import MlflowClient

    return {k: int(v) for k, v in MlflowClient(uri).get_registered_model(MODEL).aliases.items()}


def test_the_first_run_registers_the_winner_as_challenger_and_makes_it_champion(project):
    folder, _, uri, runs = project
    result, output = runs[0]
    assert result.ok and result.exit_code == 0, output
    assert "gate accuracy>=0.7: passed" in output
    assert "gate f1>champion: passed" in output and "no champion to compare with" in output
    assert f"registered {MODEL} v1 as @challenger" in output
    assert f"{MODEL} v1 is now @champion (was nobody)" in output
    # the seconds between the last step and the verdicts are not silent: said before they start
    said = [output.index(text) for text in (
        "choose                   done", "release: judging 2 gates: accuracy>=0.7, f1>champion, "
        f"then registering {MODEL} (opening MLflow's registry)...", "gate accuracy>=0.7: passed",
        f"registering {MODEL} from step 'choose'...", f"registered {MODEL} v1 as @challenger")]
    assert said == sorted(said), output
    report = (folder / "report-1.md").read_text()
    assert "# 05_gate_and_promote.ipynb: passed" in report
    assert "| `accuracy>=0.7` |" in report and "| label_noise | `0.2` |" in report
    assert re.search(r"MLflow run: http://\S+/#/experiments/\d+/runs/" + result.mlflow_run_id,
                     report)
    assert re.search(rf"{MODEL} v1: http://\S+/#/models/{MODEL}/versions/1", report)


def test_a_worse_run_registers_a_challenger_that_is_not_promoted(project):
    folder, _, uri, runs = project
    (first, _), (second, output) = runs
    assert second.ok and second.exit_code == 0, output
    assert second.steps["data"].status == "cached"  # only the candidates were trained again
    assert 0.7 <= second.metrics["accuracy"] and second.metrics["f1"] < first.metrics["f1"]
    assert f"registered {MODEL} v2 as @challenger" in output
    assert (f"not promoted to @champion: {MODEL} v2 does not beat {MODEL} v1 (champion)"
            in output)
    assert _aliases(uri) == {"champion": 1, "challenger": 2}
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    champion = client.get_model_version(MODEL, "1")
    assert champion.tags[vocab.previous_holder_tag("champion")] == "none"
    assert client.get_model_version(MODEL, "2").tags[vocab.previous_holder_tag("challenger")] \
        == "1"
    recorded = client.get_model_version(MODEL, "2").tags  # each gate's verdict, on the version
    assert recorded[vocab.gate_tag("accuracy>=0.7")].startswith("gate accuracy>=0.7: passed, ")
    assert recorded[vocab.gate_tag("f1>champion")].startswith("gate f1>champion: failed, ")
    from jupyter_mlops.widgets.models_view import models  # `%mlops models`' view

    shown = models(MODEL, store=uri).static_html()
    assert "✓ accuracy&gt;=0.7" in shown and "✗ f1&gt;champion" in shown, shown
    report = (folder / "report-2.md").read_text()
    assert f"| metric | this run | {MODEL} v1 (champion) | difference |" in report
    assert "| `f1>champion` |" in report and "**failed**" in report
    assert "- not promoted to @champion" in report


def test_a_failing_quality_gate_exits_3_naming_metric_value_and_threshold(project):
    folder, notebook, uri, _ = project
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "run", notebook.name, "-p", "label_noise",
         "0.9", "--out", ".mlops", "--report", "ci/report.md", "-q"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 3, done.stderr
    assert re.search(r"error: 05_gate_and_promote.ipynb: gate accuracy>=0\.7: failed, "
                     r"accuracy = 0\.\d+, threshold >= 0\.7$", done.stderr.strip()), done.stderr
    report = (folder / "ci" / "report.md").read_text()
    assert "# 05_gate_and_promote.ipynb: FAILED" in report and "exit code 3" in report
    assert "- not registered: a gate failed" in report
    assert _aliases(uri) == {"champion": 1, "challenger": 2}  # nothing new registered
    helped = subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "run", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert "3 a gate failed" in " ".join(helped.stdout.split())


def test_the_release_through_an_mlflow_server_registers_promotes_and_lists(
        server, tmp_path, capfd):
    """The same release with a team's store: the models reach the server before they are
    registered, the version is READY with the run's metrics first in `models list`."""
    from mlflow import MlflowClient

    from jupyter_mlops.cli import main

    notebook = tmp_path / "Churn_Team_Pipeline.ipynb"
    shutil.copy(NOTEBOOK, notebook)
    stream = io.StringIO()
    result = run_pipeline(notebook, RunOptions(
        out=tmp_path / ".mlops", tracking_uri=server, stream=stream, jobs=2,
        report=tmp_path / "report.md"))
    output = stream.getvalue()
    assert result.ok and result.exit_code == 0, output
    assert f"registered {MODEL} v1 as @challenger" in output
    assert f"{MODEL} v1 is now @champion (was nobody)" in output
    # the seconds between the last step and the verdicts are not silent: said before they start
    said = [output.index(text) for text in (
        "choose                   done", "release: judging 2 gates: accuracy>=0.7, f1>champion, "
        f"then registering {MODEL} (opening MLflow's registry)...", "gate accuracy>=0.7: passed",
        f"registering {MODEL} from step 'choose'...", f"registered {MODEL} v1 as @challenger")]
    assert said == sorted(said), output
    assert _aliases(server) == {"champion": 1, "challenger": 1}
    version = MlflowClient(server).get_model_version(MODEL, "1")
    assert version.status == "READY" and version.run_id
    assert re.search(rf"{MODEL} v1: {server}/#/models/{MODEL}/versions/1",
                     (tmp_path / "report.md").read_text())
    assert "Waiting up to" not in capfd.readouterr().err  # MLflow's INFO line, silenced
    assert main(["models", "list", MODEL, "--tracking-uri", server]) == 0
    row = capfd.readouterr().out.splitlines()[1].split()
    assert row[:4] == [MODEL, "1", "@challenger", "@champion"]
    assert row[5].startswith("accuracy=0.") and row[6].startswith("f1=0."), row
    assert main(["models", "show", MODEL, "--alias", "champion", "--tracking-uri", server]) == 0
    shown = capfd.readouterr().out  # the step's run, with its pipeline's parameters
    assert "params:     label_noise=0.2 n_customers=800 n_estimators=40 seed=11" in shown
    assert "promoted:   @challenger (first), @champion (first)" in shown
    assert re.search(r"gates:      gate accuracy>=0\.7: passed, accuracy = 0\.\d+, threshold "
                     r">= 0\.7\n {14}gate f1>champion: passed, f1 = 0\.\d+; no champion", shown), \
        shown
    assert re.search(r"data: .*X_test [0-9a-f]{8}, \d+ rows;.* output:winner [0-9a-f]{8}",
                     shown), shown
