"""The names a step takes inside KFP: its component, its Python function, its artifacts.

Reserved names carry the `mlops_` prefix so they can never meet a notebook parameter
(validate.py rejects parameters that use it).
"""

from __future__ import annotations

import keyword
import re

RESERVED_PREFIX = "mlops_"
TRACKING_PARAMETER = "MLFLOW_TRACKING_URI"  # the pipeline parameter steps export to MLflow
VALUES_OUTPUT = "mlops_values"  # a directory: one serialized file per value the step binds
NOTEBOOK_OUTPUT = "mlops_notebook"  # the executed step notebook
HTML_OUTPUT = "mlops_notebook_html"  # its HTML rendering, shown by the KFP UI
METRICS_OUTPUT = "mlops_metrics"  # the `metrics` cell's values
RUN_ID_INPUT = "mlops_kfp_run"  # the KFP run's id, to group the steps' MLflow runs


def k8s_name(name: str) -> str:
    """The name KFP gives a component or task called `name` (kfp.dsl.utils.maybe_rename_for_k8s)."""
    return re.sub("-+", "-", re.sub("[^-0-9a-z]+", "-", name.lower())).strip("-")


def function_name(step_name: str) -> str:
    """A Python identifier for a step's component function, unique per DNS-safe step name."""
    ident = step_name.replace("-", "_")
    if not ident.isidentifier() or keyword.iskeyword(ident):
        return f"step_{ident}"
    return ident


def input_name(producer: str) -> str:
    """The component input that receives the values directory of step `producer`."""
    return f"{RESERVED_PREFIX}from_{producer.replace('-', '_')}"
