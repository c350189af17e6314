"""The local pipeline runner: step notebooks, data passing, cache, parallel execution.

Kept light: importing it loads the rest only when run_pipeline is used.
"""

from __future__ import annotations

from jupyter_mlops._lazy import lazy_attributes

__all__ = ["run_pipeline", "RunOptions", "PipelineResult"]

_LAZY = {"run_pipeline": "jupyter_mlops.runner.pipeline",
         "RunOptions": "jupyter_mlops.runner.options",
         "PipelineResult": "jupyter_mlops.runner.pipeline"}


__getattr__ = lazy_attributes(__name__, _LAZY)
