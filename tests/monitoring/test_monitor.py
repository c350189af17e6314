"""Monitoring from the notebook, Python and the command line: a real kernel tracks a churn
forest with `%%mlops track --model`, which stores its training data's reference profile; new
batches are compared with `Churn_Forest@champion` (`jupyter_mlops.drift`, `%mlops drift`,
`jupyter-mlops monitor`), each logging a monitor run on the SQLite store.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernel_driver import Kernel, Said

EXPERIMENT = "Churn_Monitoring"
MODEL = "Churn_Forest"
SETUP = [
    f"%load_ext jupyter_mlops\n%mlops start --experiment {EXPERIMENT}",
    "import numpy as np, pandas as pd\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "def batch(n, shift=0.0, seed=0):\n"
    "    rng = np.random.default_rng(seed)\n"
    "    frame = pd.DataFrame({'tenure_months': rng.gamma(3, 8 + 6 * shift, n),\n"
    "                          'monthly_charges': rng.normal(60 + 25 * shift, 15, n),\n"
    "                          'plan': rng.choice(['basic', 'plus', 'pro'], n,\n"
    "                                             p=[0.5 - .3 * shift, 0.3, 0.2 + .3 * shift])})\n"
    "    churned = (frame.monthly_charges / 40 - frame.tenure_months / 20\n"
    "               + rng.normal(0, 1, n) > 0).astype(int)\n"
    "    return frame, churned\n"
    "train, y_train = batch(3000)\n"
    "X_train = pd.get_dummies(train, columns=['plan'], dtype=float)\n",
    "%%mlops track Forest_v1 --metrics auto --model forest --register " + MODEL + "\n"
    "forest = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0)\n"
    "forest.fit(X_train, y_train)\naccuracy = forest.score(X_train, y_train)",
    "%%mlops track No_Frame --model bare --register Churn_Bare\n"
    "bare = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y_train)\n"
    "del X_train",
    "X_train = pd.get_dummies(train, columns=['plan'], dtype=float)\n"
    f"%mlops end\n%mlops promote {MODEL} --version 1 --to champion",
]


@dataclass
class Session:
    folder: Path
    uri: str
    kernel: Kernel
    said: list[Said]

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.uri)

    def run_id(self, name: str) -> str:
        client = self.client()
        experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
        [run] = client.search_runs([experiment], f"attributes.run_name = '{name}'")
        return run.info.run_id


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("Churn_Monitor")
    (folder / "Churn_Training.ipynb").write_text("{}")
    (folder / "home").mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_MLOPS"))}
    env.update(MLFLOW_TRACKING_URI=uri, HOME=str(folder / "home"),
               JUPYTER_MLOPS_NOTEBOOK=str(folder / "Churn_Training.ipynb"),
               MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    kernel = Kernel(folder, env)
    try:
        said = [kernel.ok(cell) for cell in SETUP]
        yield Session(folder, uri, kernel, said)
    finally:
        kernel.stop()


def _profile(session: Session, run_name: str) -> Any:
    from jupyter_mlops.monitoring.profile import Profile

    client = session.client()
    run_id = session.run_id(run_name)
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run_id, "reference_profile.json", folder)
        return Profile.from_json(Path(path).read_bytes())


def test_a_tracked_model_carries_its_training_data_profile(session):
    profile = _profile(session, "Forest_v1")
    assert profile.rows == 3000
    assert list(profile.columns) == ["tenure_months", "monthly_charges", "plan_basic",
                                     "plan_plus", "plan_pro"]
    assert profile.predictions is not None and profile.predictions.kind == "numeric"
    assert sum(profile.predictions.counts) == 3000
    client = session.client()
    names = {a.path for a in client.list_artifacts(session.run_id("No_Frame"))}
    assert "reference_profile.json" not in names and "cell.py" in names


def test_drift_in_the_notebook_against_the_champion(session):
    kernel = session.kernel
    kernel.ok("import jupyter_mlops\n"
              "def frame(n, shift, seed):\n"
              "    data, _ = batch(n, shift, seed)\n"
              "    return pd.get_dummies(data, columns=['plan'], dtype=float)\n"
              "X_stable, X_drifted = frame(2000, 0.0, 1), frame(2000, 1.0, 2)")
    stable = kernel.ok("report = jupyter_mlops.drift(X_stable, reference='Churn_Forest@champion',"
                       " predictions=forest.predict_proba(X_stable))\nreport")
    assert 'class="mlops-drift-verdict">stable<' in stable.html + stable.text
    said = kernel.ok("print(report.drifted, round(report.max_psi, 3), report.prediction.name,"
                     " report.run_id)")
    drifted, max_psi, prediction, stable_run = said.stdout.split()
    assert drifted == "False" and float(max_psi) < 0.1 and prediction == "prediction"

    shown = kernel.ok(f"%mlops drift X_drifted --model {MODEL}@champion --threshold 0.2")
    assert "X_drifted against Churn_Forest@champion: DRIFTED" in shown.stdout
    assert 'class="mlops-drift-verdict">DRIFTED<' in shown.html + shown.text

    client = session.client()
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = client.search_runs([experiment], "tags.`mlops.kind` = 'monitor'",
                              order_by=["attributes.start_time ASC"])
    assert [r.info.run_id for r in runs][0] == stable_run
    last = runs[-1]
    assert last.data.tags["mlops.monitor.model"] == MODEL
    assert last.data.tags["mlops.monitor.version"] == "1"
    assert last.data.tags["mlops.monitor.drifted"] == "true"
    assert last.data.tags["mlops.monitor.reference_run"] == session.run_id("Forest_v1")
    metrics = last.data.metrics
    assert metrics["psi.tenure_months"] > 0.2 and metrics["drift.max_psi"] > 0.2
    assert 0 <= metrics["ks_p.monthly_charges"] < 0.01
    with tempfile.TemporaryDirectory() as folder:
        page = Path(client.download_artifacts(last.info.run_id, "drift_report.html", folder))
        assert "tenure_months" in page.read_text() and "DRIFTED" in page.read_text()


def test_drift_against_a_frame_and_a_run_id(session):
    """A DataFrame reference logs to the `monitoring` experiment; a run id to that run's, with
    the run named as the reference and no model version."""
    forest_run = session.run_id("Forest_v1")
    said = session.kernel.ok(
        "by_frame = jupyter_mlops.drift(X_stable, reference=X_train)\n"
        f"by_run = jupyter_mlops.drift(X_stable, reference='{forest_run}')\n"
        "print(by_frame.run_id, by_run.run_id, by_frame.drifted, by_run.drifted)")
    frame_run, run_run, *verdicts = said.stdout.split()
    assert verdicts == ["False", "False"]
    client = session.client()
    by_frame, by_run = client.get_run(frame_run), client.get_run(run_run)
    assert client.get_experiment(by_frame.info.experiment_id).name == "monitoring"
    assert by_frame.data.tags["mlops.monitor.reference"] == "a DataFrame"
    assert by_run.info.experiment_id == client.get_run(forest_run).info.experiment_id
    assert by_run.data.tags["mlops.monitor.reference_run"] == forest_run
    assert "mlops.monitor.model" not in by_run.data.tags
    assert by_run.data.tags["mlops.monitor.band"] == "stable"


def test_a_model_without_a_profile_is_named(session):
    said = session.kernel.run("%mlops drift X_stable --model Churn_Bare/1")
    assert "Churn_Bare v1 has no reference profile" in said.error
    assert "--reference" in said.error
    said = session.kernel.run("%mlops drift X_stable --model Churn_Forest@prod")
    assert "has no alias @prod" in said.error


# --- the monitor command --------------------------------------------------------------------
class Webhook:
    """An HTTP server on 127.0.0.1 that keeps the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/drift"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=30)


RETRAIN = {"cells": [
    {"id": "parameters", "cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
     "execution_count": None, "source": "marker = 'none'\nrows = 100"},
    {"id": "train", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
     "source": "from pathlib import Path\nPath(marker).write_text(f'retrained on {rows} rows')"}],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def test_the_monitor_command(session, capsys, monkeypatch):
    import json

    from jupyter_mlops.cli import main

    folder = session.folder
    session.kernel.ok(
        "def frame(n, shift, seed):\n"
        "    data, _ = batch(n, shift, seed)\n"
        "    return pd.get_dummies(data, columns=['plan'], dtype=float)\n"
        "frame(1500, 0.0, 3).to_parquet('Stable_Batch.parquet')\n"
        "late = frame(1500, 1.0, 4)\n"
        "late.assign(churn_score=forest.predict_proba(late)[:, 1])"
        ".to_csv('Drifted_Batch.csv', index=False)")
    monkeypatch.chdir(folder)
    store = ["--tracking-uri", session.uri]
    model = ["--model", f"{MODEL}@champion"]

    code = main(["monitor", "Stable_Batch.parquet", *model, *store])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert out.startswith("stable: Stable_Batch.parquet against Churn_Forest@champion")
    # What takes seconds is said first, on stderr, so that stdout stays the result.
    assert err.splitlines()[0] == f"opening the registry at {session.uri}..."
    assert "note: KS against the stored profile" in out  # the report's notes reach CI's log

    hook = Webhook()
    try:
        code = main(["monitor", "Drifted_Batch.csv", *model, "--predictions", "churn_score",
                     "--notify", hook.url, *store])
    finally:
        hook.stop()
    out = capsys.readouterr().out
    assert code == 4 and out.startswith("DRIFTED: Drifted_Batch.csv")
    [summary] = hook.received
    assert summary["drifted"] is True and summary["model"] == MODEL and summary["version"] == 1
    assert "tenure_months" in summary["drifted_features"] and summary["max_psi"] > 0.25
    run = session.client().get_run(summary["run_id"])
    assert run.data.tags["mlops.monitor.drifted"] == "true"
    assert "drift.prediction_psi" in run.data.metrics

    (folder / "Churn_Retrain.ipynb").write_text(json.dumps(RETRAIN))
    marker = folder / "retrained.txt"
    code = main(["monitor", "Drifted_Batch.csv", *model, "--predictions", "churn_score",
                 "--retrain", "Churn_Retrain.ipynb", "-p", "marker", str(marker),
                 "-p", "rows", "1500", *store])
    out = capsys.readouterr().out
    assert code == 4 and "retraining: Churn_Retrain.ipynb" in out
    assert "retraining passed: run folder " in out

    # a webhook that is down is an error, said after the retraining it let run
    again = folder / "retrained_again.txt"
    code = main(["monitor", "Drifted_Batch.csv", *model, "--predictions", "churn_score",
                 "--retrain", "Churn_Retrain.ipynb", "-p", "marker", str(again), "-p", "rows",
                 "1500", "--notify", "http://127.0.0.1:9/hook", *store])
    said = capsys.readouterr()
    assert code == 1 and again.read_text() == "retrained on 1500 rows"
    assert "the summary was not delivered" in said.err and "retraining passed" in said.out
    assert marker.read_text() == "retrained on 1500 rows"


def test_the_monitor_command_names_bad_input(session, capsys, monkeypatch):
    from jupyter_mlops.cli import main

    monkeypatch.chdir(session.folder)
    store = ["--tracking-uri", session.uri]
    code = main(["monitor", "Drifted_Batch.csv", "--model", f"{MODEL}@champion", *store])
    err = capsys.readouterr().err
    assert code == 1 and "extra churn_score" in err
    code = main(["monitor", "Missing.parquet", "--model", f"{MODEL}@champion", *store])
    assert code == 1 and "Missing.parquet does not exist" in capsys.readouterr().err
    code = main(["monitor", "Stable_Batch.parquet", "--model", "Churn_Bare/1", *store])
    assert code == 1 and "has no reference profile" in capsys.readouterr().err
    code = main(["monitor", "Stable_Batch.parquet", "--model", "0" * 32, *store])
    assert code == 1 and f"reference {'0' * 32}: no such run in " in capsys.readouterr().err


def test_on_drift_the_training_notebook_is_submitted_to_kfp(session, no_ambient_kfp, capsys,
                                                           monkeypatch):
    import importlib.util
    import json

    from jupyter_mlops.cli import main

    path = Path(__file__).resolve().parents[1] / "kfp" / "kfp_api_standin.py"
    spec = importlib.util.spec_from_file_location("kfp_api_standin", path)
    standin = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, standin)  # its dataclasses look it up
    spec.loader.exec_module(standin)
    monkeypatch.chdir(session.folder)
    (session.folder / "Churn_Retrain.ipynb").write_text(json.dumps(RETRAIN))
    with standin.KfpApiStandIn() as api:
        code = main(["monitor", "Drifted_Batch.csv", "--model", f"{MODEL}@champion",
                     "--predictions", "churn_score", "--retrain", "Churn_Retrain.ipynb",
                     "--submit", "--host", api.url, "-p", "rows", "1500",
                     "--tracking-uri", session.uri])
    out = capsys.readouterr().out
    assert code == 4 and "retraining submitted: run run-1" in out
    (run,) = api.posted("/apis/v2beta1/runs")
    assert run.body["runtime_config"]["parameters"] == {"rows": 1500,
                                                         "MLFLOW_TRACKING_URI": session.uri}
    assert run.body["display_name"] == "retrain on drift (Drifted_Batch.csv)"


# --- a large training set with datetime, timedelta and dict columns --------------------------
BOOK = (
    "from sklearn.compose import ColumnTransformer\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import OneHotEncoder\n"
    "def book(n, shift, seed):\n"
    "    data, churned = batch(n, shift, seed)\n"
    "    rng = np.random.default_rng(seed)\n"
    "    days = pd.to_timedelta(rng.integers(0, 365 + int(300 * shift), n), unit='D')\n"
    "    return data.assign(signup_date=pd.Timestamp('2025-01-01') + days,\n"
    "                       since_login=pd.to_timedelta(rng.exponential(48, n), unit='h'),\n"
    "                       settings=[{'theme': 'dark'}] * n), churned\n"
    "X_book, y_book = book(60_000, 0.0, 5)\n"
    "X_later, _ = book(4_000, 1.0, 6)\n"
)


def test_a_large_training_set_keeps_its_predictions_and_odd_columns(session):
    """Above PREDICT_ROWS the model predicts on a sample (said in the profile and the report);
    datetime and timedelta columns are profiled in seconds; a dict column is left out, said in
    the cell, and the rest of the profile is kept."""
    kernel = session.kernel
    kernel.ok(f"%mlops start --experiment {EXPERIMENT}\n{BOOK}")
    said = kernel.ok(
        "%%mlops track Big_Book --model book --register Churn_Book --reference X_book\n"
        "book = make_pipeline(ColumnTransformer([\n"
        "    ('numbers', 'passthrough', ['tenure_months', 'monthly_charges']),\n"
        "    ('plan', OneHotEncoder(), ['plan'])]),\n"
        "    RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0))\n"
        "book.fit(X_book, y_book)")
    # One line in the cell, as its other lines: no Python warning with our file and line.
    assert said.stderr.startswith("mlops: column 'settings' (object holding dict) left out of "
                                  "the reference profile: drift is measured on numeric")
    assert len(said.stderr.splitlines()) == 1
    assert "Warning" not in said.stderr
    typo = kernel.ok("%%mlops track Book_Again --model book --reference X_bok\nbook = book")
    assert ("mlops: cell run 'Book_Again': no reference profile stored with the model: "
            "--reference X_bok: no such variable") in typo.stderr.splitlines(), typo.stderr
    shown = kernel.ok("p_later = book.predict_proba(X_later)\n"
                      "%mlops drift X_later --model Churn_Book/1 --predictions p_later")
    assert "X_later against Churn_Book/1: DRIFTED" in shown.stdout

    profile = _profile(session, "Big_Book")
    assert profile.rows == 60_000 and profile.prediction_rows == 50_000
    assert profile.predictions is not None and sum(profile.predictions.counts) == 50_000
    assert profile.skipped == {"settings": "object holding dict"}
    assert profile.columns["signup_date"].kind == "datetime"
    assert profile.columns["since_login"].kind == "timedelta"
    client = session.client()
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    [run] = client.search_runs([experiment], "tags.`mlops.monitor.model` = 'Churn_Book'")
    assert run.data.metrics["drift.prediction_psi"] > 0 and run.data.metrics[
        "psi.signup_date"] > 0.25
    with tempfile.TemporaryDirectory() as folder:
        page = Path(client.download_artifacts(run.info.run_id, "drift_report.html",
                                              folder)).read_text()
    assert "datetime (epoch seconds)" in page and "timedelta (seconds)" in page
    assert "seeded sample of 50,000 of its 60,000 rows" in page
    assert "not compared: settings (object holding dict)" in page


def test_the_monitor_command_reads_times_back_from_a_csv(session, capsys, monkeypatch):
    """A CSV holds dates and durations as text: read back as the reference's kinds."""
    from jupyter_mlops.cli import main

    session.kernel.ok("X_later.to_csv('Later_Book.csv', index=False)")
    monkeypatch.chdir(session.folder)
    code = main(["monitor", "Later_Book.csv", "--model", "Churn_Book/1",
                 "--tracking-uri", session.uri])
    out = capsys.readouterr().out
    assert code == 4 and "signup_date" in out, out
    assert "note: datetime columns compared as epoch seconds: signup_date" in out
    (session.folder / "Bad_Dates.csv").write_text(
        "tenure_months,monthly_charges,plan,signup_date,since_login,settings\n"
        "3,50,basic,someday,0 days 01:00:00,{}\n")
    code = main(["monitor", "Bad_Dates.csv", "--model", "Churn_Book/1",
                 "--tracking-uri", session.uri])
    err = capsys.readouterr().err
    assert code == 1 and "column 'signup_date': datetime in the reference, text here" in err


def test_a_bad_retrain_notebook_parameter_or_webhook_is_named_before_the_drift(
        tmp_path, capsys, monkeypatch):
    import json

    from jupyter_mlops.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "Churn_Retrain.ipynb").write_text(json.dumps(RETRAIN))
    (tmp_path / "New_Batch.csv").write_text("tenure_months\n3.0\n")
    start = ["monitor", "New_Batch.csv", "--model", f"{MODEL}@champion",
             "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    # found only once the data drifted, in the retraining it was to start; -p was ignored
    for extra, said in [
        (["--retrain", "Churn_Retrian.ipynb"], "error: Churn_Retrian.ipynb: no such file"),
        (["--retrain", "Churn_Retrain.ipynb", "-p", "rowz", "5"],
         "error: Churn_Retrain.ipynb: parameter 'rowz': unknown parameter"),
        (["--retrain", "Churn_Retrain.ipynb", "-p", "rows", "many"],
         "error: Churn_Retrain.ipynb: parameter 'rows': expected an int"),
        (["-p", "rows", "5"], "error: -p sets a parameter of the --retrain notebook"),
        # a ValueError traceback after the monitor run, and no retraining
        (["--notify", "hooks.example.com/drift"],
         "error: --notify hooks.example.com/drift: expected an http:// or https:// URL"),
    ]:
        code = main([*start, *extra])
        out, err = capsys.readouterr()
        assert code == (1 if extra[0] == "--retrain" else 2) and err.startswith(said), err
        assert out == "" and not (tmp_path / "mlflow.db").exists()  # nothing measured
