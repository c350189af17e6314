"""Serving a registered model version: MLflow's own scoring server on 127.0.0.1, or a KServe
`InferenceService` manifest for a cluster (written here, applied by the user's own tooling).

A version is named as MLflow's registry URIs name it: `MODEL@ALIAS` or `MODEL/VERSION`
(registry.parse_reference). Both paths resolve it first, so an unknown model, alias or
version, or a model MLflow's server cannot load, is one clear error before anything starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jupyter_mlops.errors import MlopsError
from jupyter_mlops.models import registry
from jupyter_mlops.models.registry import Version
from jupyter_mlops.notebook.layout import dns_words

# MLflow's scoring server loads a model through its python_function flavor.
SERVABLE_FLAVOR = "python_function"
KSERVE_API = "serving.kserve.io/v1beta1"
# KServe's own name for MLflow models: its MLServer runtime loads the MLmodel directory.
KSERVE_FORMAT = "mlflow"
# Storage schemes a KServe storage initializer can fetch from inside a cluster.
KSERVE_SCHEMES = ("s3", "gs", "https", "http", "pvc", "hdfs", "webhdfs", "oci", "hf")


class NotServableError(MlopsError):
    """A registered version that MLflow's scoring server cannot load."""


@dataclass(frozen=True)
class ModelRef:
    """A registered version to serve: its registry entry and where its files are."""

    version: Version
    alias: str | None
    source: str  # the storage location of the model's files (its download URI)
    tracking_uri: str

    @property
    def uri(self) -> str:
        return self.version.uri

    def __str__(self) -> str:
        via = f" (@{self.alias})" if self.alias else ""
        return f"{self.version.model} version {self.version.version}{via}"


def resolve(reference: str, client: Any = None) -> ModelRef:
    """The registered version `reference` names; RegistryError naming what is unknown."""
    client = client or registry.client_for(create=False)  # serving makes no store
    version = registry.resolve(reference, store=client)
    _, alias, _ = registry.parse_reference(reference)
    source = client.get_model_version_download_uri(version.model, str(version.version))
    return ModelRef(version, alias, source, client.tracking_uri)


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
    check_port_free(host, port)
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
        _reap(server.pid)


def check_port_free(host: str, port: int) -> None:
    """MLflow's server would announce itself, then fail to bind with a traceback; 5000 is
    also where `mlflow ui` and a team's MLflow server listen."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise MlopsError(f"cannot serve on {host}:{port}: {error.strerror} (`mlflow ui` or "
                             "an MLflow server?); choose another with --port") from None


def _reap(session: int, grace: float = 10.0) -> None:
    """Return only once the whole session has gone: mlflow's command can end while its uvicorn
    worker still holds the port; stragglers past `grace` seconds are killed."""
    try:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            os.killpg(session, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:  # bounded: an unreaped zombie still counts
                os.killpg(session, 0)
                time.sleep(0.05)
    except ProcessLookupError:
        return


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
    service = name or _kserve_name(ref.version.model)
    manifest = {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": {
            "name": service,
            "annotations": {"jupyter-mlops/model": ref.version.model,
                            "jupyter-mlops/version": str(ref.version.version),
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
    label = dns_words(model)
    if not label or not label[0].isalpha():
        label = f"model-{label}".rstrip("-")
    return label[:45].rstrip("-")  # KServe prefixes generated names; 63 in all
