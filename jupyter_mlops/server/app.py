"""The extension as Jupyter Server sees it: settings from config, its routes, and its stop.

Settings are read from Jupyter config as `MlopsExtension.<name>`. The KFP host lives here only:
a request never chooses where a pipeline is submitted.
"""

from __future__ import annotations

import os
import threading

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Float, Unicode

from jupyter_mlops.server.handlers import routes
from jupyter_mlops.server.jobs import Jobs
from jupyter_mlops.server.mlflow_reads import Stores


class MlopsExtension(ExtensionApp):
    """The jupyter-mlops server extension; handlers reach it as `settings["jupyter_mlops"]`."""

    name = "jupyter_mlops"
    load_other_extensions = True

    tracking_uri = Unicode(
        "", help="MLflow tracking URI the panel reads; empty: MLFLOW_TRACKING_URI, else "
        "mlflow.db in the notebook's folder (as the tracking layer does)."
    ).tag(config=True)
    mlflow_ui_url = Unicode(
        "", help="Base URL of the MLflow UI the panel links runs to; empty: JUPYTER_MLOPS_UI_URL, "
        "else the tracking server for an http(s) store, else http://127.0.0.1:5000 (`mlflow ui`)."
    ).tag(config=True)
    kfp_host = Unicode(
        "", help="Kubeflow Pipelines API host that Submit uses; empty disables submission."
    ).tag(config=True)
    kfp_namespace = Unicode("", help="Kubeflow namespace for submitted runs (optional).").tag(
        config=True
    )
    default_image = Unicode(
        "", help="Container image for steps without an `image:` tag (empty: the compiler's)."
    ).tag(config=True)
    full_refresh_seconds = Float(
        30.0, help="Seconds between full reloads of an experiment's run summary (catches "
        "deletions and edits of finished runs; new and running runs: see min_refresh_seconds)."
    ).tag(config=True)
    min_refresh_seconds = Float(
        2.0, help="Seconds between two questions to the store of what changed in a "
        "notebook's runs; requests meanwhile (the panel's next pages, sorts, polls) are "
        "answered from memory."
    ).tag(config=True)

    def resolved_tracking_uri(self) -> str | None:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None

    def resolved_ui_url(self) -> str:
        from jupyter_mlops.tracking.destination import ui_url

        return self.mlflow_ui_url or ui_url(self.resolved_tracking_uri())

    def initialize_settings(self) -> None:
        self.stores = Stores(self.resolved_tracking_uri(), self.full_refresh_seconds,
                             self.min_refresh_seconds)
        self.jobs = Jobs()
        # Once the server runs (its start is not slowed by the import in another thread).
        IOLoop.current().add_callback(threading.Thread(
            target=self._open_store, daemon=True, name="mlops-open-store").start)

    def _open_store(self) -> None:
        """Import mlflow and open the store of the server's root off the event loop at start
        (seconds), so that the panel's first request does not wait for it. A store that
        cannot be opened is left to that request, which says why."""
        root = self.serverapp.root_dir if self.serverapp is not None else os.getcwd()
        try:
            uri = self.stores.uri_for(root, root)
            if uri:
                self.stores.get(uri)
        except Exception:  # noqa: BLE001, S110 - reported by the request that needs the store
            pass

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes("/"))  # Jupyter Server prefixes base_url
        assert self.serverapp is not None  # linked before the handlers are initialized
        self.log.info("jupyter_mlops: REST API at %smlops/api/",
                      self.serverapp.web_app.settings["base_url"])

    async def stop_extension(self) -> None:
        """Local runs started from the UI do not outlive the server."""
        self.jobs.stop_all()
