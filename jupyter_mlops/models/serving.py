"""Serving a registered model version: MLflow's own scoring server on 127.0.0.1, or a KServe
`InferenceService` manifest for a cluster (written here, applied by the user's own tooling).

A version is named as MLflow's registry URIs name it: `MODEL@ALIAS` or `MODEL/VERSION`
(`models:/` in front is accepted). Both paths resolve it first, so an unknown model, alias or
version, or a model MLflow's server cannot load, is one clear error before anything starts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jupyter_mlops.errors import MlopsError

# MLflow's scoring server loads a model through its python_function flavor.
SERVABLE_FLAVOR = "python_function"
KSERVE_API = "serving.kserve.io/v1beta1"
# KServe's own name for MLflow models: its MLServer runtime loads the MLmodel directory.
KSERVE_FORMAT = "mlflow"
# Storage schemes a KServe storage initializer can fetch from inside a cluster.
KSERVE_SCHEMES = ("s3", "gs", "https", "http", "pvc", "hdfs", "webhdfs", "oci", "hf")


class ModelReferenceError(MlopsError):
    """A model reference that names no registered version."""


class NotServableError(MlopsError):
    """A registered version that MLflow's scoring server cannot load."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model version, resolved: name, version number and how it was named."""

    name: str
    version: str
    alias: str | None
    source: str  # the registry's storage location of the model
    tracking_uri: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def __str__(self) -> str:
        via = f" (@{self.alias})" if self.alias else ""
        return f"{self.name} version {self.version}{via}"


def parse_reference(reference: str) -> tuple[str, str | None, str | None]:
    """`MODEL@ALIAS` -> (MODEL, ALIAS, None); `MODEL/N` -> (MODEL, None, N)."""
    text = reference.strip().removeprefix("models:/")
    if "@" in text:
        name, _, alias = text.rpartition("@")
        if name and re.fullmatch(r"[\w-]+", alias):
            return name, alias, None
    elif "/" in text:
        name, _, version = text.rpartition("/")
        if name and version.isdigit():
            return name, None, version
    raise ModelReferenceError(
        f"model reference {reference!r}: expected MODEL@ALIAS (e.g. churn@champion) "
        "or MODEL/VERSION (e.g. churn/3)")


def resolve(reference: str, client: Any = None) -> ModelRef:
    """The registered version `reference` names; ModelReferenceError naming what is unknown."""
    from mlflow.exceptions import MlflowException

    name, alias, number = parse_reference(reference)
    client = client or _client()
    try:
        client.get_registered_model(name)
    except MlflowException as error:
        raise ModelReferenceError(f"no registered model {name!r} in {client.tracking_uri}"
                                  ) from error
    try:
        version = (client.get_model_version_by_alias(name, alias) if alias
                   else client.get_model_version(name, number))
    except MlflowException as error:
        what = f"alias {alias!r}" if alias else f"version {number}"
        known = _known_aliases(client, name)
        raise ModelReferenceError(f"model {name!r} has no {what}{known}") from error
    source = client.get_model_version_download_uri(name, version.version)
    return ModelRef(name, str(version.version), alias, source, client.tracking_uri)


def check_servable(ref: ModelRef) -> None:
    """NotServableError unless the version has the flavor MLflow's scoring server loads."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    quiet = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # one file: no bar in the output
    with tempfile.TemporaryDirectory() as folder, _environ(quiet):
        mlmodel = download_artifacts(artifact_uri=f"{ref.source.rstrip('/')}/MLmodel",
                                     dst_path=folder, tracking_uri=ref.tracking_uri)
        flavors = Model.load(mlmodel).flavors
    if SERVABLE_FLAVOR not in flavors:
        raise NotServableError(
            f"{ref} cannot be served: it has no {SERVABLE_FLAVOR} flavor (flavors: "
            f"{', '.join(sorted(flavors)) or 'none'}); log it with `%%mlops track --model` or "
            "a `model:` step so it is stored as an MLflow model")


def serve(reference: str, port: int = 5000, host: str = "127.0.0.1",
          announce: Callable[[str], None] | None = None) -> int:
    """Run MLflow's scoring server for the version until interrupted; its exit code.
    `announce` receives one line saying what is served where, once it is resolved."""
    ref = resolve(reference)
    check_servable(ref)
    # MLflow starts `uvicorn` by name: this environment's, even when it is not activated.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, MLFLOW_TRACKING_URI=ref.tracking_uri, PATH=path,
               MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")  # our sklearn models are cloudpickled
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", ref.uri,
               "--env-manager", "local", "--host", host, "--port", str(port)]
    if announce is not None:
        announce(f"serving {ref} at http://{host}:{port}/invocations (Ctrl-C stops it)")
    # Own session, so that stopping this command (Ctrl-C, SIGTERM) stops the server and its
    # uvicorn workers together rather than leaving them holding the port.
    server = subprocess.Popen(command, env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, lambda *_: _stop(server))
    try:
        return server.wait()
    except KeyboardInterrupt:
        _stop(server)
        server.wait()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(server: subprocess.Popen) -> None:
    """Signal the server's session; the caller's wait() returns once it has gone (a signal
    handler must not wait itself: Popen.wait's lock is held by the interrupted wait)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def inference_service(reference: str, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A KServe InferenceService for the version, and warnings about what a cluster will lack."""
    ref = resolve(reference)
    check_servable(ref)
    service = name or _kserve_name(ref.name)
    manifest = {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": {
            "name": service,
            "annotations": {"jupyter-mlops/model": ref.name,
                            "jupyter-mlops/version": ref.version,
                            **({"jupyter-mlops/alias": ref.alias} if ref.alias else {})},
        },
        "spec": {"predictor": {"model": {
            "modelFormat": {"name": KSERVE_FORMAT},
            "protocolVersion": "v2",
            "storageUri": ref.source,
        }}},
    }
    warnings = []
    scheme = ref.source.split(":", 1)[0] if ":" in ref.source else "file"
    if scheme not in KSERVE_SCHEMES:
        warnings.append(
            f"storageUri {ref.source!r} is {scheme!r} storage, which a cluster cannot fetch; "
            "point the MLflow server's artifact store at object storage (s3://, gs://) or "
            "copy the model and edit storageUri")
    return manifest, warnings


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _kserve_name(model: str) -> str:
    """A DNS-1035 label from a model name (KServe names become hostnames)."""
    label = re.sub("-+", "-", re.sub("[^a-z0-9-]", "-", model.lower())).strip("-")
    if not label or not label[0].isalpha():
        label = f"model-{label}".rstrip("-")
    return label[:45].rstrip("-")  # KServe prefixes generated names; 63 in all


def _known_aliases(client: Any, name: str) -> str:
    aliases = client.get_registered_model(name).aliases or {}
    listed = ", ".join(f"@{a} (version {v})" for a, v in sorted(aliases.items()))
    return f"; its aliases: {listed}" if listed else "; it has no aliases"


def _client() -> Any:
    from jupyter_mlops.tracking.store import open_client, tracking_uri

    return open_client(tracking_uri(), create=False)
