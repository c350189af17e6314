"""Widgets that carry a static HTML copy of themselves in every output they make.

A widget output normally holds only `application/vnd.jupyter.widget-view+json`, which renders
nothing without a kernel or saved widget state (GitHub, nbviewer). Adding `text/html` to the
same bundle keeps a readable last state in the saved notebook; JupyterLab still prefers the
live widget.
"""

from __future__ import annotations

import uuid
from typing import Any

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class StaticFallback:
    """Mixin for ipywidgets: `static_html()` goes into the output bundle as text/html, and
    every output of the widget carries one display id, so `refresh_output()` can rewrite them."""

    _display_id: str | None = None

    def static_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}  # type: ignore[misc]
        data["text/html"] = self.static_html()
        return data

    def _ipython_display_(self) -> None:
        """IPython calls this for `display(view)` and for a view left as a cell's last value:
        a plain execute_result could never be updated when a sweep or a run ends later."""
        from IPython.display import display

        if self._display_id is None:
            self._display_id = uuid.uuid4().hex
        display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)

    def show(self) -> Any:
        """Display now (the same as leaving the view as the cell's last value)."""
        self._ipython_display_()
        return self

    def refresh_output(self) -> None:
        """Re-send the output bundle: the saved notebook then holds the current HTML."""
        if self._display_id is not None:
            from IPython.display import update_display

            update_display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)
