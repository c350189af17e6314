"""Models on MLflow: the registry lifecycle (aliases, gates, promotion, serving hand-off).

Logging an object as an MLflow model is steps/model_logging.py's: KFP steps log their model
with it in images that lack jupyter-mlops, so it lives in the package the compiler ships.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _Models(types.ModuleType):
    """This package, callable: `jupyter_mlops.models()` lists the registry. A function of that
    name on jupyter_mlops would be replaced by the package the moment it is imported."""

    def __call__(self, name: str | None = None, *, store: Any = None) -> Any:
        """Versions of `name` (of every model when None) as a DataFrame: aliases, metrics,
        source run, notebook and git commit (models/registry.py's `table`)."""
        from jupyter_mlops.models.registry import table

        return table(name, store=store)


sys.modules[__name__].__class__ = _Models
