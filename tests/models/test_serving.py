"""`jupyter-mlops serve` and `deploy --kserve` on a real SQLite registry: predictions from
MLflow's scoring server, a manifest KServe's own Python models accept, and one clear error for
every reference or model that cannot be served."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

VENV_BIN = Path(sys.executable).parent
MODEL = "Churn_Forest"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store whose model has versions 1 and 2 (a forest, a pipeline), @champion on 2."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from jupyter_mlops.steps.model_logging import log_model
    from jupyter_mlops.tracking.destination import open_client

    folder = tmp_path_factory.mktemp("Serving_Store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = open_client(uri)
    experiment = client.create_experiment("churn-models",
                                          artifact_location=str(folder / "mlruns"))
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    models = [RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y),
              make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)]
    for model in models:
        run = client.create_run(experiment)
        log_model(client, run.info.run_id, model, register=MODEL)
        client.set_terminated(run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", "2")
    _unservable(client, experiment, folder)
    return {"folder": folder, "uri": uri, "X": X, "champion": models[1]}


def _unservable(client: Any, experiment: str, folder: Path) -> None:
    """A registered version whose MLmodel has no python_function flavor."""
    model_dir = folder / "odd_model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors:\n  onnx_custom:\n    data: model.onnx\n")
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(model_dir), "odd_model")
    client.create_registered_model("Odd_Model")
    client.create_model_version("Odd_Model", f"{run.info.artifact_uri}/odd_model",
                                run.info.run_id)


def cli(registry: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry["uri"]}
    return subprocess.run([str(VENV_BIN / "jupyter-mlops"), *args], cwd=registry["folder"],
                          env=env, capture_output=True, text=True, timeout=300)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_invocations_with_the_champions_predictions(registry):
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry["uri"]}
    log = open(registry["folder"] / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [str(VENV_BIN / "jupyter-mlops"), "serve", f"{MODEL}@champion", "--port", str(port)],
        cwd=registry["folder"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        _wait_healthy(port, server, registry["folder"] / "serve.log")
        rows = registry["X"][:5]
        body = json.dumps({"dataframe_split": {"data": rows.tolist()}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            predictions = json.load(reply)["predictions"]
        assert predictions == registry["champion"].predict(rows).tolist()
        said = (registry["folder"] / "serve.log").read_text()
        assert f"serving {MODEL} version 2 (@champion) at http://127.0.0.1:{port}" in said
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    with pytest.raises(OSError):  # the scoring server went with the command
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _wait_healthy(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("scoring server not up: " + log.read_text()[-3000:])


# Both commands resolve and check a reference the same way; each case runs through one.
@pytest.mark.parametrize("command, reference, message", [
    ("deploy", f"{MODEL}@staging", f"model '{MODEL}' has no alias @staging; its aliases: "
                                   "@champion (v2)"),
    ("deploy", f"{MODEL}/9", f"model '{MODEL}' has no version 9; its versions: 2, 1"),
    ("serve", "Unknown_Model@champion", "no registered model 'Unknown_Model'"),
    ("deploy", "churn", "model reference 'churn': expected MODEL@ALIAS"),
    ("serve", "Odd_Model/1",
     "Odd_Model version 1 cannot be served: it has no python_function flavor"),
])
def test_a_reference_that_cannot_be_served_is_one_clear_error(registry, command, reference,
                                                              message):
    extra = ["--kserve"] if command == "deploy" else ["--port", str(free_port())]
    done = cli(registry, command, reference, *extra)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_serving_in_a_folder_without_a_store_says_so_and_makes_none(tmp_path, monkeypatch,
                                                                    capsys):
    from jupyter_mlops.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    for command in (["serve", f"{MODEL}@champion"], ["deploy", f"{MODEL}@champion", "--kserve"]):
        assert main(command) == 1
        assert "error: there is no MLflow store at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_deploy_writes_an_inference_service_kserve_accepts(registry, kserve_models):
    out = registry["folder"] / "isvc.yaml"
    done = cli(registry, "deploy", f"{MODEL}@champion", "--kserve", "-o", str(out))
    assert done.returncode == 0, done.stderr
    manifest = yaml.safe_load(out.read_text())
    validate(manifest, "V1beta1InferenceService", kserve_models)
    model = manifest["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"}
    from mlflow import MlflowClient

    client = MlflowClient(registry["uri"])
    assert model["storageUri"] == client.get_model_version_download_uri(MODEL, "2")
    assert manifest["metadata"]["name"] == "churn-forest"
    assert manifest["metadata"]["annotations"]["jupyter-mlops/version"] == "2"
    # A local store's path means nothing inside a cluster: said, not hidden.
    assert "warning: storageUri" in done.stderr and "cannot fetch" in done.stderr



@pytest.mark.parametrize("model, service", [
    ("Modèle_Prévision", "modele-prevision"),  # was mod-le-pr-vision
    ("2026_Modèle_de_Prévision_du_Churn_Clients_Entreprises",
     "model-2026-modele-de-prevision-du-churn-clien"),  # a letter first, 45 characters
])
def test_a_kserve_service_keeps_the_letters_of_an_accented_model_name(
        registry, monkeypatch, model, service):
    from mlflow import MlflowClient

    from jupyter_mlops.cli import main

    client = MlflowClient(registry["uri"])
    forest = client.get_model_version(MODEL, "1")
    client.create_registered_model(model)
    client.create_model_version(model, client.get_model_version_download_uri(MODEL, "1"),
                                forest.run_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry["uri"])
    out = registry["folder"] / f"{service}.yaml"
    assert main(["deploy", f"{model}/1", "--kserve", "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["metadata"]["name"] == service


@pytest.fixture(scope="module")
def kserve_models(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """KServe's generated Python models (kserve.models), from its wheel without its
    dependencies: the package pins pandas < 3, so it cannot share this environment."""
    target = tmp_path_factory.mktemp("kserve")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), "kserve==0.21.0"], check=True, timeout=600)
    package = types.ModuleType("kserve")  # skip kserve/__init__: it starts the model server
    package.__path__ = [str(target / "kserve")]
    sys.modules["kserve"] = package
    try:
        import kserve.models as models
    finally:
        del sys.modules["kserve"]
    return models


def validate(data: Any, type_name: str, models: Any) -> None:
    """Check `data` against KServe's (and Kubernetes') OpenAPI models: known keys, types,
    required fields (the generated constructors reject a missing one)."""
    import kubernetes.client as k8s

    if type_name.startswith("list["):
        assert isinstance(data, list)
        for item in data:
            validate(item, type_name[5:-1], models)
        return
    if type_name.startswith("dict("):
        assert isinstance(data, dict)
        for item in data.values():
            validate(item, type_name[5:-1].split(", ", 1)[1], models)
        return
    scalars = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
    if type_name in scalars:
        assert isinstance(data, scalars[type_name]), (type_name, data)
        return
    cls = getattr(models, type_name, None) or getattr(k8s, type_name)
    assert isinstance(data, dict), (type_name, data)
    attributes = {key: attr for attr, key in cls.attribute_map.items()}
    unknown = set(data) - set(attributes)
    assert not unknown, f"{type_name} has no field(s) {sorted(unknown)}"
    for key, value in data.items():
        validate(value, cls.openapi_types[attributes[key]], models)
    cls(**{attributes[key]: value for key, value in data.items()})


def test_serving_on_a_port_in_use_is_one_clear_error_before_anything_starts(tmp_path, capsys):
    import socket

    from jupyter_mlops.cli import main

    with socket.socket() as taken:  # as `mlflow ui` holds 5000, the default
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", f"{MODEL}@champion", "--port", str(port)])
    out, err = capsys.readouterr()
    # it said "serving ... at http://127.0.0.1:PORT/invocations", then MLflow's traceback
    assert code == 1 and out == ""
    assert err.startswith(f"error: cannot serve on 127.0.0.1:{port}: Address already in use "
                          "(`mlflow ui` or an MLflow server?); choose another with --port"), err
