"""Jupyter Server extension: the REST API the JupyterLab panel and the export button use.

Enabled on install by jupyter-config/server-config/jupyter_mlops.json. Settings come from
Jupyter config as `MlopsExtension.<name>` (see jupyter_mlops.server.app).
"""

from __future__ import annotations

from jupyter_mlops.server.app import MlopsExtension
from jupyter_mlops.server.handlers import routes

__all__ = ["MlopsExtension", "routes"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    return [{"module": "jupyter_mlops.server", "app": MlopsExtension}]
