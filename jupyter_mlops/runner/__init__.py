"""The local pipeline runner: step notebooks, data passing, cache, parallel execution.

Kept light: step kernels import `jupyter_mlops.runner.serializers`, which loads this first.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["run_pipeline", "PipelineResult"]

_LAZY = {"run_pipeline": "jupyter_mlops.runner.pipeline",
         "PipelineResult": "jupyter_mlops.runner.pipeline"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_mlops.runner' has no attribute {name!r}")
    return getattr(import_module(module), name)
