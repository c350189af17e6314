"""The notebook model: reading notebooks, the tag grammar and the StepGraph."""

from jupyter_mlops.notebook.graph import build_graph, read_graph
from jupyter_mlops.notebook.model import (
    Cell,
    Edge,
    GraphWarning,
    Parameter,
    Resources,
    Step,
    StepGraph,
    StepOptions,
)
from jupyter_mlops.notebook.parameters import check_parameter_name, parameter_values
from jupyter_mlops.notebook.reader import read_notebook, reads_notebook

__all__ = [
    "Cell", "Edge", "GraphWarning", "Parameter", "Resources", "Step", "StepGraph", "StepOptions",
    "build_graph", "check_parameter_name", "parameter_values", "read_graph", "read_notebook",
    "reads_notebook",
]
