"""jupyter-mlops: one tagged notebook as tracked runs, a local pipeline and a Kubeflow pipeline.

Importing the package stays cheap: mlflow, kfp and papermill load only when a feature needs them.
"""

from __future__ import annotations

from jupyter_mlops import models  # a callable package (stdlib only): `jupyter_mlops.models()`
from jupyter_mlops._lazy import lazy_attributes
from jupyter_mlops._version import __version__
from jupyter_mlops.errors import MlopsError

__all__ = ["MlopsError", "__version__", "drift", "load_ipython_extension", "models", "promote",
           "track", "read_graph"]

# Public names that live in heavier modules, imported on first use.
_LAZY = {
    "read_graph": "jupyter_mlops.notebook",
    "track": "jupyter_mlops.tracking",
    "load_ipython_extension": "jupyter_mlops.magics",
    "unload_ipython_extension": "jupyter_mlops.magics",
    "run_pipeline": "jupyter_mlops.runner",
    "RunOptions": "jupyter_mlops.runner",
    "runs": "jupyter_mlops.widgets",
    "sweep": "jupyter_mlops.widgets",
    "promote": "jupyter_mlops.models.registry",
    "drift": "jupyter_mlops.widgets.drift_view",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
