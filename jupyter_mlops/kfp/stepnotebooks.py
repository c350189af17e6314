"""The step notebooks the components execute: the very ones the local runner executes.

A step notebook imports `jupyter_mlops.runner.serializers` in its kernel. A cluster image
rarely has jupyter-mlops installed, so each component carries the source of the few modules
the serializers need and puts them on the kernel's path when the package is missing; the
component itself logs the step's model (`model:`) with them and models/logging.py.
"""

from __future__ import annotations

import base64
import json
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from jupyter_mlops.notebook import Step, StepGraph

# Package-relative files the kernel needs to import jupyter_mlops.runner.serializers, and the
# component to log a model; they import only the standard library at module level.
SUPPORT_FILES = ("__init__.py", "_lazy.py", "_version.py", "errors.py", "runner/__init__.py",
                 "runner/errors.py", "runner/serializers.py", "models/__init__.py",
                 "models/logging.py")

# A data library a step imports -> the modules the serializers need to write or read its
# values (a DataFrame is Parquet: pandas and pyarrow; an estimator is joblib).
SERIALIZER_MODULES: dict[str, tuple[str, ...]] = {
    "pandas": ("pandas", "pyarrow"),
    "numpy": ("numpy",),
    "sklearn": ("sklearn", "joblib"),
}


def step_notebook(graph: StepGraph, step: Step) -> Any:
    """The runner's self-contained step notebook for `step` (an nbformat NotebookNode)."""
    from jupyter_mlops.runner.step_notebook import build_step_notebook

    return build_step_notebook(graph, step)


def step_parameters(graph: StepGraph, step: Step) -> list[str]:
    """The parameters the step notebook takes, exactly as the local runner passes them."""
    from jupyter_mlops.runner.step_notebook import step_parameters as runner_parameters

    return list(runner_parameters(graph, step))


def notebook_text(notebook: Any) -> str:
    """The step notebook as compact, key-sorted JSON: one line in the component's source and
    reproducible YAML. No schema validation (most of nbformat.writes' time): the notebook is
    the runner's, which the runner's own tests validate."""
    return json.dumps(notebook, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def support_sources() -> dict[str, str]:
    """`jupyter_mlops/<file>` -> source text, for the kernel of an image without jupyter-mlops."""
    import jupyter_mlops

    root = Path(jupyter_mlops.__file__).parent
    return {f"jupyter_mlops/{name}": (root / name).read_text(encoding="utf-8")
            for name in SUPPORT_FILES}


@lru_cache(maxsize=1)
def packed_support() -> str:
    """support_sources() as base64 of zlib'd JSON: a few KB per component instead of ~20."""
    text = json.dumps(support_sources(), sort_keys=True)
    return base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
