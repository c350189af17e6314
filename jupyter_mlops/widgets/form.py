"""A sweep form generated from the parameters cell: one control per parameter, by type.

int → IntSlider, float → FloatSlider, bool → Checkbox, str → Text (Dropdown when choices are
given), anything else → Text holding a Python literal. Next to each, an optional "sweep over"
field lists values to try; empty means the control's value. Values are read by the notebook's
parameter grammar, as `-p` reads them. "Run" starts `sweep(...)`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from jupyter_mlops.errors import ParameterError, SweepError
from jupyter_mlops.notebook.model import Parameter
from jupyter_mlops.notebook.parameters import parameter_value

WIDE = widgets.Layout(width="340px")
DESCRIPTION = {"description_width": "120px"}


def control_for(param: Parameter, choices: list[Any] | None = None) -> widgets.Widget:
    """The control for one parameter, starting at its default."""
    name, value = param.name, param.default
    if choices:
        options = list(dict.fromkeys([value, *choices]))
        return widgets.Dropdown(options=options, value=value, description=name, style=DESCRIPTION,
                                layout=WIDE)
    if param.type == "bool":
        return widgets.Checkbox(value=value, description=name, style=DESCRIPTION)
    if param.type == "int":
        low, high = _span(value)
        return widgets.IntSlider(value=value, min=int(low), max=int(high), description=name,
                                 style=DESCRIPTION, layout=WIDE)
    if param.type == "float":
        low, high = _span(value)
        return widgets.FloatSlider(value=value, min=low, max=high, step=(high - low) / 100,
                                   description=name, style=DESCRIPTION, layout=WIDE)
    if param.type == "str":
        return widgets.Text(value=value, description=name, style=DESCRIPTION, layout=WIDE)
    return widgets.Text(value=repr(value), description=name, style=DESCRIPTION, layout=WIDE)


def _span(value: float) -> tuple[float, float]:
    """A slider range from 0 to twice the default (0..10 for a zero default)."""
    if value == 0:
        return 0.0, 10.0
    return (0.0, 2.0 * value) if value > 0 else (2.0 * value, 0.0)


def parse_values(param: Parameter, text: str, notebook: str | None = None) -> list[Any]:
    """The "sweep over" field: comma-separated values, each read as `-p` reads its text."""
    return [_read(param, item, notebook) for item in _items(text, param.type != "NoneType")]


def control_value(param: Parameter, control: widgets.Widget,
                  notebook: str | None = None) -> Any:
    return _read(param, control.value, notebook)


def _items(text: str, unquote: bool) -> list[str]:
    """The field's items as text. Python's parser finds the commas, so those inside brackets
    or quotes stay; a quoted item is unquoted (not for a None default, whose text is read as a
    literal); text Python cannot parse is split at every comma."""
    source = f"[{text.strip()}]"
    try:
        listed = ast.parse(source, mode="eval").body
    except SyntaxError:
        listed = None
    if not isinstance(listed, ast.List):
        return [part.strip() for part in text.split(",") if part.strip()]
    return [node.value if unquote and isinstance(node, ast.Constant)
            and isinstance(node.value, str) else ast.get_source_segment(source, node) or ""
            for node in listed.elts]


def _read(param: Parameter, value: Any, notebook: str | None) -> Any:
    """A value read by the notebook's parameter grammar now, so the form shows a fault before
    anything runs. A None default's text is left for the sweep to read once: read twice, the
    text `'3'` would become the number 3."""
    if param.type == "NoneType":
        return value
    try:
        return parameter_value(param, value, notebook)
    except ParameterError as error:
        raise SweepError(str(error)) from None


class SweepForm(widgets.VBox):
    """Controls for a notebook's parameters and a Run button that starts a sweep below."""

    def __init__(self, notebook: str | Path, choices: dict[str, list[Any]] | None = None,
                 **sweep_options: Any) -> None:
        from jupyter_mlops.notebook import read_graph

        self.notebook = Path(notebook)
        self.graph = read_graph(str(self.notebook))
        self.sweep_options = sweep_options
        self.controls = {name: control_for(p, (choices or {}).get(name))
                         for name, p in self.graph.parameters.items()}
        self.values = {name: widgets.Text(placeholder="sweep over: v1, v2, ...",
                                          layout=widgets.Layout(width="220px"))
                       for name in self.graph.parameters}
        self.jobs = widgets.BoundedIntText(value=sweep_options.pop("jobs", 2), min=1, max=16,
                                           description="parallel", style=DESCRIPTION)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.message = widgets.HTML()
        self.output = widgets.Output()
        self.sweep: Any = None
        self.run_button.on_click(lambda _: self.run())
        rows = [widgets.HBox([self.controls[n], self.values[n]]) for n in self.controls]
        if not rows:
            rows = [widgets.HTML("<i>This notebook has no `parameters` cell.</i>")]
        super().__init__([*rows, widgets.HBox([self.jobs, self.run_button]), self.message,
                          self.output])
        self.add_class("mlops-sweep-form")

    def grid(self) -> dict[str, list[Any]]:
        """Each parameter's listed values, or its control's value."""
        grid = {}
        for name, param in self.graph.parameters.items():
            listed = parse_values(param, self.values[name].value, self.graph.path)
            grid[name] = listed or [control_value(param, self.controls[name], self.graph.path)]
        return grid

    def run(self) -> Any:
        """Start the sweep of the current grid; the view appears below the form."""
        from jupyter_mlops.widgets.sweep_view import sweep

        try:
            self.sweep = sweep(self.notebook, self.grid(), jobs=self.jobs.value,
                               **self.sweep_options)
        except SweepError as error:
            self.message.value = f'<span style="color:#d62728">{error}</span>'
            return None
        self.message.value = ""
        self.output.clear_output()
        with self.output:
            from IPython.display import display

            display(self.sweep)
        return self.sweep


def sweep_form(notebook: str | Path, choices: dict[str, list[Any]] | None = None,
               **sweep_options: Any) -> SweepForm:
    """A form for the notebook's parameters; `choices` turns a parameter into a dropdown.
    Other keywords (pipeline, experiment, tracking_uri, ...) go to `sweep`."""
    return SweepForm(notebook, choices, **sweep_options)
