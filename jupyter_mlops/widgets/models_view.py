"""`%mlops models [MODEL]`: registered model versions with aliases, key metrics, the gates'
verdicts recorded when a pipeline registered them, source run, notebook and git commit, as a
table with a Refresh button (the data is models/registry.py's)."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from jupyter_mlops.models import registry
from jupyter_mlops.widgets.data import run_link
from jupyter_mlops.widgets.fallback import StaticFallback
from jupyter_mlops.widgets.html import esc, link, table

METRICS_SHOWN = 4
HEADERS = ("model", "version", "aliases", "status", "metrics", "gates", "run", "notebook",
           "commit")
ALIAS_STYLE = ("background:#6a3d9a;color:white;border-radius:3px;padding:1px 6px;"
               "font-size:11px;margin-right:3px")


class ModelsView(StaticFallback, widgets.VBox):
    """Versions of one registered model, or of all; `refresh()` reads the registry again.

    The first read happens here, so an unknown model is an error where the view was asked for.
    """

    def __init__(self, name: str | None = None, store: Any = None) -> None:
        self.name = name
        self.client = registry.client_for(store)
        self.versions: list[registry.Version] = registry.versions(name, store=self.client)
        self.message = widgets.HTML()
        self.table = widgets.HTML(self._html())
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.refresh_button, self.message, self.table])
        self.add_class("mlops-models")

    def refresh(self) -> ModelsView:
        try:
            self.versions = registry.versions(self.name, store=self.client)
            self.message.value = ""
        except Exception as error:  # a store gone away must not break the view
            self.message.value = f'<span style="color:#d62728">{esc(error)}</span>'
        self.table.value = self._html()
        self.refresh_output()
        return self

    def static_html(self) -> str:
        return self.message.value + self.table.value

    def _html(self) -> str:
        if not self.versions:
            return f"<i>no registered models in {esc(self.client.tracking_uri)}</i>"
        rows = [self._row(v) for v in self.versions]
        return table(HEADERS, rows, raw_columns=(2, 5, 6, 7), css_class="mlops-models-table")

    def _row(self, v: registry.Version) -> list[Any]:
        aliases = "".join(f'<span class="mlops-alias" style="{ALIAS_STYLE}">@{esc(a)}</span>'
                          for a in v.aliases)
        metrics = " ".join(f"{k}={x:.4g}" for k, x in v.key_metrics(METRICS_SHOWN))
        run = (link(run_link(self.client.tracking_uri, None, v.run_id), v.run_id[:8])
               if v.run_id else "–")
        notebook = (f'<span title="{esc(v.notebook)}">{esc(v.notebook.rpartition("/")[2])}'
                    "</span>" if v.notebook else "–")
        gates = " ".join(
            f'<span class="mlops-gate" title="{esc(g.message)}" style="color:'
            f'{"#2ca02c" if g.passed else "#d62728"}">{"✓" if g.passed else "✗"} {esc(g.gate)}'
            "</span>" for g in v.gates) or "–"
        return [v.model, v.version, aliases, v.status, metrics, gates, run, notebook,
                (v.git_commit or "")[:8] or None]


def models(name: str | None = None, store: Any = None) -> ModelsView:
    """The registry's versions (of `name`, or of every model) as a view."""
    return ModelsView(name, store)
