"""Widgets that carry a static HTML copy of themselves in every output they make.

A widget output normally holds only `application/vnd.jupyter.widget-view+json`, which renders
nothing without a kernel or saved widget state (GitHub, nbviewer). Adding `text/html` to the
same bundle keeps a readable last state in the saved notebook; JupyterLab still prefers the
live widget.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
        self.show()

    def show(self, flush: bool = True) -> Any:
        """Display now (the same as leaving the view as the cell's last value). `flush=False`
        is for a view that is its cell's first output: nothing printed needs to go before it."""
        if self._display_id is None:
            self._display_id = uuid.uuid4().hex
        publish(self._repr_mimebundle_(), self._display_id, flush=flush)
        return self

    def refresh_output(self) -> None:
        """Re-send the output bundle: the saved notebook then holds the current HTML."""
        if self._display_id is not None:
            publish(self._repr_mimebundle_(), self._display_id, update=True)


def publish(bundle: dict[str, Any], display_id: str, *, update: bool = False,
            flush: bool = True) -> None:
    """`display` (or, with `update`, `update_display`) of a raw bundle under `display_id`.

    An update rewrites an output in place, wherever it is, so output order is not at stake and
    it never flushes; a display flushes the output streams first unless told it need not."""
    from IPython.display import display, update_display

    with _streams_flushed(flush and not update):
        if update:
            update_display(bundle, raw=True, display_id=display_id)
        else:
            display(bundle, raw=True, display_id=display_id)


_UNFLUSHED = threading.Lock()


@contextmanager
def _streams_flushed(flush: bool) -> Iterator[None]:
    """Without `flush`, skip ipykernel's flush of stdout/stderr before a display message: a
    round trip to its IO thread (~0.4 ms here) paid on the tracked cell's time."""
    from IPython import get_ipython

    publisher = getattr(get_ipython(), "display_pub", None)
    if flush or not hasattr(publisher, "_flush_streams"):
        yield
        return
    with _UNFLUSHED:
        publisher._flush_streams = _no_flush  # type: ignore[union-attr]
        try:
            yield
        finally:
            del publisher._flush_streams  # type: ignore[union-attr]


def _no_flush() -> None:
    return None
