"""In-notebook views: run cards, the runs browser with comparison, sweeps and the step graph.

ipywidgets 8 controls with HTML/SVG content, so no frontend build is needed. Importing this
package is cheap: ipywidgets, mlflow and papermill load when a view is made.
"""

from __future__ import annotations

from jupyter_mlops._lazy import lazy_attributes

__all__ = ["DriftView", "ModelsView", "RunCard", "RunsBrowser", "Sweep", "drift", "runs",
           "show_run_card", "step_graph", "sweep", "sweep_form"]

_LAZY = {
    "RunCard": "jupyter_mlops.widgets.run_card",
    "show_run_card": "jupyter_mlops.widgets.run_card",
    "RunsBrowser": "jupyter_mlops.widgets.runs_browser",
    "runs": "jupyter_mlops.widgets.runs_browser",
    "Sweep": "jupyter_mlops.widgets.sweep_view",
    "sweep": "jupyter_mlops.widgets.sweep_view",
    "sweep_form": "jupyter_mlops.widgets.form",
    "step_graph": "jupyter_mlops.widgets.graph_view",
    "ModelsView": "jupyter_mlops.widgets.models_view",
    "DriftView": "jupyter_mlops.widgets.drift_view",
    "drift": "jupyter_mlops.widgets.drift_view",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
