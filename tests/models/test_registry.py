"""The registry from the notebook, the command line and Python: a real kernel tracks a forest and
a boosting model and registers a Pipeline variable, against a SQLite store in a git repository;
versions are registered from run ids, listed with lineage, promoted, refused and rolled back.
One test goes through `mlflow server` on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernel_driver import Kernel

NOTEBOOK = "Churn_Training.ipynb"
EXPERIMENT = "Churn_Registry"
PREVIOUS_CHAMPION = "mlops.previous.champion"
CELLS = [
    f"%load_ext jupyter_mlops\n%mlops start --experiment {EXPERIMENT}",
    "from sklearn.datasets import make_classification\n"
    "from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import Pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "X, y = make_classification(n_samples=300, n_features=6, random_state=0)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "%%mlops track Random_Forest --metrics auto --model forest\n"
    "forest = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0)\n"
    "forest.fit(X_train, y_train)\naccuracy = forest.score(X_test, y_test)",
    "%%mlops track Gradient_Boosting --metrics auto --model boosting\n"
    "boosting = GradientBoostingClassifier(n_estimators=20, random_state=0)\n"
    "boosting.fit(X_train, y_train)\naccuracy = boosting.score(X_test, y_test)",
    "scaled = Pipeline([('scale', StandardScaler()), ('logit', LogisticRegression())])\n"
    "scaled.fit(X_train, y_train)",
    "%mlops register scaled --name Churn_Pipeline --alias challenger",
]


@dataclass
class Trained:
    """The tracked session: its store, kernel, and the run ids of the tracked cells."""

    folder: Path
    uri: str
    env: dict[str, str]
    kernel: Kernel
    runs: dict[str, str]
    session_run: str
    commit: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("Churn_Project")
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (folder / NOTEBOOK).write_text("{}")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", NOTEBOOK], check=True)
    subprocess.run([*git, "commit", "-qm", "notebook"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    (folder / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_MLOPS"))}
    env.update(MLFLOW_TRACKING_URI=uri, JUPYTER_MLOPS_NOTEBOOK=str(folder / NOTEBOOK),
               HOME=str(folder / "home"), MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    kernel = Kernel(folder, env)
    try:
        for cell in CELLS:
            kernel.ok(cell)
        kernel.ok("%mlops end")
        client = _client(uri)
        experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
        runs = {r.info.run_name: r.info.run_id for r in client.search_runs([experiment])}
        yield Trained(folder, uri, env, kernel, runs, runs["Churn_Training"], commit)
    finally:
        kernel.stop()


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _aliases(uri: str, model: str) -> dict[str, int]:
    return {a: int(v) for a, v in _client(uri).get_registered_model(model).aliases.items()}


def _tag(uri: str, model: str, version: int, tag: str) -> str | None:
    return _client(uri).get_model_version(model, str(version)).tags.get(tag)


def test_tracked_models_registered_promoted_refused_and_rolled_back(trained, monkeypatch):
    import mlflow
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.pipeline import Pipeline

    k, uri = trained.kernel, trained.uri
    forest, boosting = trained.runs["Random_Forest"], trained.runs["Gradient_Boosting"]
    said = k.ok(f"%mlops register {forest} --name Churn_Model --alias challenger")
    assert f"registered Churn_Model v1 @challenger from run {forest}" in said.stdout
    k.ok(f"%mlops register {boosting} --name Churn_Model --alias challenger")
    assert _aliases(uri, "Churn_Model") == {"challenger": 2}
    assert _tag(uri, "Churn_Model", 2, "mlops.previous.challenger") == "1"

    said = k.ok("%mlops promote Churn_Model --version 1 --to champion")
    assert "Churn_Model v1 is now @champion (was nobody)" in said.stdout

    refused = k.run("%mlops promote Churn_Model --alias challenger --to champion "
                    "--if 'accuracy>=champion+0.5'")
    assert refused.error.startswith("UsageError: Churn_Model v2 not promoted to @champion "
                                    "(@champion stays on v1)"), refused
    assert "accuracy" in refused.error and "is now" not in refused.stdout
    assert _aliases(uri, "Churn_Model") == {"challenger": 2, "champion": 1}

    said = k.ok("%mlops promote Churn_Model --alias challenger --to champion "
                "--if accuracy>=0.5")
    assert "Churn_Model v2 is now @champion (was v1)" in said.stdout
    assert "gate accuracy>=0.5: passed" in said.stdout
    assert _tag(uri, "Churn_Model", 2, PREVIOUS_CHAMPION) == "1"

    said = k.ok("%mlops promote Churn_Model --version 1 --to champion")  # the rollback
    assert "Churn_Model v1 is now @champion (was v2)" in said.stdout
    assert _aliases(uri, "Churn_Model") == {"challenger": 2, "champion": 1}
    assert _tag(uri, "Churn_Model", 1, PREVIOUS_CHAMPION) == "2"

    view = k.ok("%mlops models Churn_Model").html
    for shown in ("@champion", "@challenger", NOTEBOOK, "accuracy=", forest[:8],
                  trained.commit[:8]):
        assert shown in view, shown

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(uri)
    try:
        loaded = {ref: mlflow.sklearn.load_model(f"models:/{ref}") for ref in
                  ("Churn_Model@champion", "Churn_Model@challenger", "Churn_Pipeline@challenger")}
    finally:
        mlflow.set_tracking_uri(None)
    assert isinstance(loaded["Churn_Model@champion"], RandomForestClassifier)
    assert isinstance(loaded["Churn_Model@challenger"], GradientBoostingClassifier)
    assert isinstance(loaded["Churn_Pipeline@challenger"], Pipeline)


def test_every_version_names_its_run_notebook_commit_and_metrics(trained):
    from jupyter_mlops.models.registry import versions

    notebook = os.path.realpath(trained.folder / NOTEBOOK)
    [scaled] = versions("Churn_Pipeline", store=trained.uri)
    assert (scaled.version, scaled.aliases) == (1, ("challenger",))
    assert (scaled.notebook, scaled.git_commit) == (notebook, trained.commit)
    run = _client(trained.uri).get_run(scaled.run_id)
    assert run.data.tags["mlflow.parentRunId"] == trained.session_run  # the variable's run
    assert run.info.run_name == "register scaled" and run.info.status == "FINISHED"
    for version in versions("Churn_Model", store=trained.uri):
        assert (version.notebook, version.git_commit) == (notebook, trained.commit)
        assert 0.5 < version.metrics["accuracy"] <= 1.0


@pytest.mark.parametrize("line, named", [
    ("promote Churn_Pipelin --version 1 --to champion",
     "no registered model 'Churn_Pipelin' in sqlite:"),
    ("promote Churn_Pipeline --version 7 --to champion",
     "model 'Churn_Pipeline' has no version 7; its versions: 1"),
    ("promote Churn_Pipeline --alias staging --to champion",
     "model 'Churn_Pipeline' has no alias @staging; its aliases: @challenger (v1)"),
    ("promote Churn_Pipeline --version 1 --to champion --if accuracy=>0.8",
     "--if: 'accuracy=>0.8' is not a gate"),
    ("promote Churn_Pipeline --version 1 --to 'best model'", "alias 'best model'"),
    ("promote Churn_Pipeline --version 1 --to Challenger",
     "alias 'Challenger' differs only in case from @challenger"),
    ("register not_a_variable --name Churn_Pipeline", "'not_a_variable' names no logged model"),
    ("models Churn_Pipelin", "did you mean 'Churn_Pipeline'?"),
])
def test_bad_input_is_one_clear_error_in_the_cell(trained, line, named):
    said = trained.kernel.run(f"%mlops {line}")
    assert said.error.startswith("UsageError: ") and named in said.error, said
    assert "Traceback" not in said.stdout + said.stderr
    assert _aliases(trained.uri, "Churn_Pipeline") == {"challenger": 1}


def test_a_run_without_a_model_is_named(trained):
    said = trained.kernel.run(f"%mlops register {trained.session_run} --name Churn_Pipeline")
    assert f"run {trained.session_run} (Churn_Training) logged no model" in said.error, said
    assert [v.version for v in _versions(trained.uri, "Churn_Pipeline")] == [1]


def test_a_tracked_variable_registers_the_model_its_cell_logged(trained):
    """Not a second copy on a run of its own: the version has the tracked run's metrics."""
    forest = trained.runs["Random_Forest"]
    said = trained.kernel.ok("%mlops register forest --name Churn_Tracked")
    assert f"registered Churn_Tracked v1 from run {forest}" in said.stdout, said
    said = trained.kernel.ok("%mlops promote Churn_Tracked --version 1 --to champion "
                             "--if accuracy>=0.5")
    assert "gate accuracy>=0.5: passed" in said.stdout, said
    trained.kernel.ok("forest = forest.set_params(n_estimators=5).fit(X_train, y_train)")
    rebound = trained.kernel.ok("%mlops register forest --name Churn_Tracked")
    assert "registered Churn_Tracked v2 from run" in rebound.stdout
    assert forest not in rebound.stdout  # refit since: logged on a run of its own


@pytest.mark.parametrize("alias, twin", [
    ("Challenger", "challenger"),  # the model's own alias
    ("CHAMPION", "champion"),  # ours, which the model does not have yet
])
def test_an_alias_differing_only_in_case_is_refused_and_nothing_moves(trained, capsys, alias,
                                                                      twin):
    code, out, err = _main(capsys, "promote", "Churn_Pipeline", "--version", "1", "--to",
                           alias, "--tracking-uri", trained.uri)
    # it gave v1 a second alias beside @challenger: MLflow's aliases are case-sensitive
    assert code == 1 and out == ""
    assert err.endswith(f"error: alias {alias!r} differs only in case from @{twin}, which "
                        f"MLflow would keep beside it as another alias; did you mean {twin!r}?\n")
    assert _aliases(trained.uri, "Churn_Pipeline") == {"challenger": 1}


def _versions(uri: str, model: str) -> list[Any]:
    from jupyter_mlops.models.registry import versions

    return versions(model, store=uri)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`jupyter-mlops models ARGS` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "models", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same command in this process (what `jupyter-mlops` runs): exit code, out, err."""
    from jupyter_mlops.cli import main

    try:
        code = main(["models", *args])
    except SystemExit as exited:  # argparse's usage errors
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_line_lists_shows_promotes_and_says_why_not(trained, capsys):
    import jupyter_mlops
    from jupyter_mlops.models.registry import register

    uri, env = trained.uri, trained.env
    register(trained.runs["Random_Forest"], "Churn_Cli", alias="champion", store=uri)
    register(f"runs:/{trained.runs['Gradient_Boosting']}/boosting", "Churn_Cli",
             alias="challenger", store=uri)

    listed = _cli(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.startswith("opening the registry at sqlite:"), listed.stderr
    row = next(line for line in listed.stdout.splitlines()
               if line.split()[:2] == ["Churn_Cli", "1"])
    assert "@champion" in row and NOTEBOOK in row and trained.commit[:8] in row
    refused = _cli(env, "promote", "Churn_Cli", "--alias", "challenger", "--to", "champion",
                   "--if", "accuracy>=champion+0.5")
    assert refused.returncode == 3, refused
    assert "Churn_Cli v2 not promoted to @champion (@champion stays on v1)" in refused.stderr
    assert "accuracy" in refused.stderr and "Traceback" not in refused.stderr

    tracking = ("--tracking-uri", uri)
    code, out, _ = _main(capsys, "show", "Churn_Cli", "--alias", "champion", *tracking)
    assert code == 0 and trained.runs["Random_Forest"] in out and "accuracy=" in out
    code, _, err = _main(capsys, "promote", "Churn_Nope", "--version", "1", "--to", "champion",
                         *tracking)
    assert code == 1 and "no registered model 'Churn_Nope'" in err
    code, _, err = _main(capsys, "promote", "Churn_Cli", "--version", "2", "--to", "champion",
                         "--if", "accuracy=>0.5", *tracking)
    assert code == 1 and "'accuracy=>0.5' is not a gate" in err
    code, _, err = _main(capsys, "promote", "Churn_Cli", "--version", "2", "--to", "champion",
                         "--if", "accuracy>=champoin+0.01", *tracking)
    assert code == 1 and "is not a gate" in err and err.rstrip().endswith(
        "did you mean 'champion'?")
    code, _, err = _main(capsys, "promote", "Churn_Cli", "--to", "champion", *tracking)
    assert code == 2 and "--version" in err
    assert _aliases(uri, "Churn_Cli") == {"champion": 1, "challenger": 2}

    done = jupyter_mlops.promote("Churn_Cli", alias="challenger", to="champion", store=uri)
    assert (done.version, done.previous, done.moved) == (2, 1, True)
    table = jupyter_mlops.models("Churn_Cli", store=uri)
    assert table[["version", "aliases"]].values.tolist() == [[2, "challenger, champion"], [1, ""]]


def test_models_list_pages_newest_first_and_leaves_nothing_out(trained, capsys, monkeypatch):
    """Every version once across the pages, newest first, each page saying how to see the
    next; runs read two at a time give each version its own run's metrics and lineage."""
    from jupyter_mlops.models import gates
    from jupyter_mlops.models.registry import versions

    monkeypatch.setattr(gates, "RUNS_PER_READ", 2)
    tracking = ("--tracking-uri", trained.uri)
    seen: list[list[str]] = []
    following: tuple[str, ...] = ()
    while True:
        code, out, err = _main(capsys, "list", "--max-results", "3", *tracking, *following)
        assert code == 0, err
        *rows, last = out.splitlines()[1:]
        if "--page-token" not in last:
            seen += [line.split()[:2] for line in [*rows, last]]
            break
        assert last.startswith("showing 3 versions, newest first; more: jupyter-mlops models "
                               "list --max-results 3 --page-token "), last
        seen += [line.split()[:2] for line in rows]
        following = ("--page-token", last.split("--page-token ")[1].split()[0])
    code, out, _ = _main(capsys, "list", "--all", *tracking)
    every = [line.split()[:2] for line in out.splitlines()[1:]]
    assert seen == every and len(every) >= 4 and len({tuple(v) for v in every}) == len(every)

    described = versions(store=trained.uri)
    assert [[v.model, str(v.version)] for v in described] == every
    assert [v.created_ms for v in described] == sorted((v.created_ms for v in described),
                                                       reverse=True)
    notebook = os.path.realpath(trained.folder / NOTEBOOK)
    client = _client(trained.uri)
    for v in described:
        assert v.metrics == client.get_run(v.run_id).data.metrics, v.label
        assert (v.notebook, v.git_commit) == (notebook, trained.commit), v.label


# --- through `mlflow server` -------------------------------------------------------------
def test_list_and_promote_through_an_mlflow_server(server, capsys):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from jupyter_mlops.models.registry import register
    from jupyter_mlops.steps.model_logging import log_model

    client = _client(server)
    experiment = client.create_experiment("Churn_Server")
    X, y = make_classification(n_samples=100, n_features=4, random_state=1)
    for trees, accuracy in ((5, 0.8), (15, 0.9)):
        run = client.create_run(experiment, run_name=f"Forest_{trees}")
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        log_model(client, run.info.run_id, RandomForestClassifier(n_estimators=trees).fit(X, y))
        client.set_terminated(run.info.run_id)
        register(run.info.run_id, "Churn_Served", alias="challenger", store=server)

    tracking = ("--tracking-uri", server)
    code, _, err = _main(capsys, "promote", "Churn_Served", "--version", "1", "--to",
                         "champion", "--if", "accuracy>=0.85", *tracking)
    assert code == 3 and "accuracy = 0.8" in err, err
    code, out, err = _main(capsys, "promote", "Churn_Served", "--alias", "challenger", "--to",
                           "champion", "--if", "accuracy>=champion", *tracking)
    assert code == 0 and "Churn_Served v2 is now @champion (was nobody)" in out, err
    code, out, err = _main(capsys, "list", "Churn_Served", *tracking)
    assert code == 0, err
    assert [line.split()[:4] for line in out.splitlines()[1:]] == [
        ["Churn_Served", "2", "@challenger", "@champion"],
        ["Churn_Served", "1", "READY", "accuracy=0.8"]]
    code, out, err = _main(capsys, "list", "Churn_Served", "--max-results", "1", *tracking)
    *_, more = out.splitlines()
    assert code == 0 and "showing 1 version, newest first; more: jupyter-mlops models list " \
        "Churn_Served --max-results 1 --page-token " in more, out + err
    code, out, err = _main(capsys, "list", "Churn_Served", "--max-results", "1", *tracking,
                           "--page-token", more.split("--page-token ")[1].split()[0])
    assert code == 0 and [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["Churn_Served", "1"]], out + err
    assert _aliases(server, "Churn_Served") == {"challenger": 2, "champion": 2}


def test_a_registry_that_does_not_answer_is_one_line_not_a_traceback(capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, out, err = _main(capsys, "promote", "Churn_Model", "--version", "1", "--to",
                           "champion", "--tracking-uri", gone)
    assert code == 1 and out == "", err
    # the progress line said before opening the registry, then the error in one line
    opening, error = err.splitlines()
    assert opening == f"opening the registry at {gone}...", err
    assert error.startswith(f"error: the model registry: API request to {gone}/"), err
    assert "Traceback" not in err


def test_a_versions_metrics_show_in_one_order_in_the_cli_the_widget_and_the_panel() -> None:
    """The metric a release gated on (roc_auc, which sorts after the others by name) leads
    wherever a version's metrics are shown; the runner's bookkeeping comes last in the CLI
    and the widget, never in the panel's columns."""
    from jupyter_mlops.commands.models import _metrics
    from jupyter_mlops.models import registry
    from jupyter_mlops.models.gates import check, parse_condition, verdict_tags
    from jupyter_mlops.steps.mlflow_vocabulary import STEP_METRICS
    from jupyter_mlops.widgets.models_view import METRICS_SHOWN

    metrics = {"accuracy": 0.91, "f1": 0.88, "roc_auc": 0.95, **dict.fromkeys(STEP_METRICS, 1.0)}
    tags = verdict_tags(check(parse_condition("roc_auc>=0.9"), metrics))
    version = registry.Version("Churn_Pipeline", 2, metrics=metrics, tags=tags)
    assert [k for k, _ in version.key_metrics()] == ["roc_auc", "accuracy", "f1", *sorted(
        STEP_METRICS)]
    assert _metrics(version, 3) == "roc_auc=0.95 accuracy=0.91 f1=0.88 ..."
    assert [k for k, _ in version.key_metrics(METRICS_SHOWN)][0] == "roc_auc"
    assert registry.shown_metrics([version]) == ["roc_auc", "accuracy", "f1"]
    assert registry.shown_metrics([version], ["f1"]) == ["f1", "roc_auc", "accuracy"]
