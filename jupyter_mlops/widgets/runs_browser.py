"""`jupyter_mlops.runs()`: a sortable, filterable table of runs, multi-select, and comparison.

The first read in a kernel imports MLflow and its SQLAlchemy store (seconds; the rest of a
read is a fraction of one), so a browser whose store is not open yet shows itself at once and
fills its table from a thread; once MLflow is loaded the read is done in the call. Code that
reads the browser (its rows, its controls, `select()`) waits for that first read.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from jupyter_mlops.widgets import data
from jupyter_mlops.widgets.compare import comparison_html
from jupyter_mlops.widgets.fallback import StaticFallback
from jupyter_mlops.widgets.html import esc, link, status_badge, table

SELECTED_STYLE = "background:#e8f0fe"
FILTER_HELP = "words, or MLflow syntax: metrics.accuracy > 0.8"


class _Part:
    """A part of the view as code reaches it: after the first read (`wait()`), so setting
    `browser.sort.value` to a metric's column finds that column. The view uses `_<name>`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.private = f"_{name}"

    def __get__(self, browser: Any, owner: type | None = None) -> Any:
        return self if browser is None else getattr(browser.wait(), self.private)


class RunsBrowser(StaticFallback, widgets.VBox):
    """The experiment's runs. `refresh()` re-reads MLflow; `select()` picks runs to compare."""

    filter = _Part()
    sort = _Part()
    descending = _Part()
    refresh_button = _Part()
    message = _Part()
    table = _Part()
    selector = _Part()
    comparison = _Part()

    def __init__(self, experiment: str | None = None, client_or_uri: Any = None,
                 filter_string: str = "", max_results: int = 200, *,
                 background: bool = False, settle: Callable[[], object] | None = None) -> None:
        """`background`: open the store and read from a thread (`wait()` joins it); `settle`
        runs before the first read, e.g. the tracker's flush so the session's runs are in."""
        self.experiment = experiment
        self.base_filter = filter_string  # fixed by the caller, e.g. one sweep's runs
        self.max_results = max_results
        self.client: Any = None  # set once the store is open
        self.loaded = threading.Event()
        self._rows: list[data.RunRow] = []
        self._shown: list[data.RunRow] = []
        self._lock = threading.RLock()
        self._quiet = False
        self._filter = widgets.Text(placeholder=FILTER_HELP, description="Filter",
                                    continuous_update=False,
                                    layout=widgets.Layout(width="360px"))
        self._sort = widgets.Dropdown(options=list(data.BASE_COLUMNS), value="start",
                                      description="Sort by", layout=widgets.Layout(width="260px"))
        self._descending = widgets.ToggleButton(value=True, description="descending",
                                                icon="sort-amount-desc")
        self._refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self._message = widgets.HTML()
        self._table = widgets.HTML()
        self._selector = widgets.SelectMultiple(description="Compare", rows=6,
                                                layout=widgets.Layout(width="520px"))
        self._comparison = widgets.HTML()
        controls = widgets.HBox([self._filter, self._sort, self._descending, self._refresh_button])
        super().__init__([controls, self._message, self._table, self._selector, self._comparison])
        self.add_class("mlops-runs-browser")
        self._filter.observe(lambda _: self.refresh(), "value")
        self._sort.observe(self._sort_changed, "value")
        self._descending.observe(lambda _: self.redraw(), "value")
        self._selector.observe(lambda _: self._show_comparison(), "value")
        self._refresh_button.on_click(lambda _: self.refresh())
        if background:
            self._message.value = f"<i>Reading runs from {esc(_store_name(client_or_uri))}…</i>"
            threading.Thread(target=self._load, args=(client_or_uri, settle, True),
                             daemon=True, name="mlops-runs-browser").start()
        else:
            self._load(client_or_uri, settle, False)

    def _load(self, client_or_uri: Any, settle: Callable[[], object] | None,
              in_thread: bool) -> None:
        try:
            if settle is not None:
                settle()
            client = data.resolve_client(client_or_uri)
        except Exception as error:
            if not in_thread:
                raise  # the caller's cell shows it
            self._message.value = ('<span style="color:#d62728">Cannot read the runs: '
                                   f'{esc(error)}</span>')
        else:
            self.client = client
            self.refresh()
        finally:
            self.loaded.set()
        self.refresh_output()

    def wait(self, timeout: float | None = None) -> RunsBrowser:
        """Wait until the first read is done (the browser shows its runs or why not)."""
        self.loaded.wait(timeout)
        return self

    # --- data ----------------------------------------------------------------------------
    def refresh(self) -> RunsBrowser:
        """Read the runs from MLflow again, keeping the selection."""
        text = self._filter.value.strip()
        mlflow_filter = text if data.is_mlflow_filter(text) else ""
        query = " and ".join(f for f in (self.base_filter, mlflow_filter) if f)
        if self.client is None:
            return self  # the first read is under way and reads the current filter
        with self._lock:
            try:
                self._rows = data.fetch_runs(self.client, self.experiment, query,
                                             self.max_results)
                self._message.value = ""
            except Exception as error:  # a bad filter must not break the view
                self._rows = []
                self._message.value = ('<span style="color:#d62728">Filter not understood: '
                                       f'{esc(error)}</span>')
            self.redraw()
        return self

    def redraw(self) -> None:
        with self._lock:
            text = self._filter.value.strip()
            rows = (self._rows if data.is_mlflow_filter(text)
                    else data.filter_rows(self._rows, text))
            self._sort_options(data.columns(self._rows))
            self._shown = data.sort_rows(rows, self._sort.value, self._descending.value)
            kept = [i for i in self._selector.value if any(r.run_id == i for r in self._shown)]
            self._selector.options = [(f"{r.name}  [{r.status}]  {r.run_id[:8]}", r.run_id)
                                     for r in self._shown]
            self._selector.value = tuple(kept)
            self._draw_table()
            self._show_comparison()

    def _sort_changed(self, _change: Any) -> None:
        if not self._quiet:
            self.redraw()

    def _sort_options(self, cols: list[str]) -> None:
        value = self._sort.value
        options = cols if value in cols else [*cols, value]
        if list(self._sort.options) != options:
            self._quiet = True  # the options change resets the value: put it back unobserved
            try:
                self._sort.options = options
                self._sort.value = value
            finally:
                self._quiet = False

    # --- selection -----------------------------------------------------------------------
    @property
    def rows(self) -> list[data.RunRow]:
        """The runs read from the store (waits for the first read)."""
        return self.wait()._rows

    @property
    def shown(self) -> list[data.RunRow]:
        """The runs the table shows, filtered and sorted (waits for the first read)."""
        return self.wait()._shown

    @property
    def selected(self) -> list[data.RunRow]:
        return self.wait()._selected()

    def _selected(self) -> list[data.RunRow]:
        by_id = {r.run_id: r for r in self._shown}
        return [by_id[i] for i in self._selector.value if i in by_id]

    def select(self, run_ids: list[str] | None = None) -> RunsBrowser:
        """Select runs by id (all shown runs when None) and show their comparison."""
        shown = [r.run_id for r in self.shown]
        self._selector.value = tuple(shown if run_ids is None else [i for i in run_ids
                                                                    if i in shown])
        return self

    # --- view ----------------------------------------------------------------------------
    def _draw_table(self) -> None:
        cols = data.columns(self._rows)
        chosen = set(self._selector.value)
        uri = getattr(self.client, "tracking_uri", None)
        body = [[_cell(r, c, uri) for c in cols] for r in self._shown]
        styles = [SELECTED_STYLE if r.run_id in chosen else "" for r in self._shown]
        count = f"<p>{len(self._shown)} of {len(self._rows)} runs</p>"
        runs = table(cols, body, raw_columns=(0, 1), row_styles=styles, css_class="mlops-runs")
        # many params make the table wider than the cell: scroll it rather than spill over
        self._table.value = f'{count}<div style="overflow-x:auto">{runs}</div>'

    def _show_comparison(self) -> None:
        with self._lock:
            self._draw_table()
            self._comparison.value = comparison_html(self._selected(), self.client)
        self.refresh_output()  # the saved notebook keeps what the user last looked at

    def static_html(self) -> str:
        parts = (self._message.value, self._table.value, self._comparison.value)
        return f'<div class="mlops-runs-browser">{"".join(parts)}</div>'


def _cell(row: data.RunRow, column: str, uri: str | None) -> Any:
    if column == "name":
        href = data.run_link(uri, row.experiment_id, row.run_id)
        return link(href, row.name)
    if column == "status":
        return status_badge(row.status)
    if column == "start":
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.start_ms / 1000))
    return row.value(column)


def runs(experiment: str | None = None, tracking_uri: str | None = None, *,
         filter_string: str = "", max_results: int = 200,
         settle: Callable[[], object] | None = None) -> RunsBrowser:
    """The runs browser on an experiment (default: the `%mlops` session's, else all). In a
    kernel that has not loaded MLflow yet it returns at once and fills its table from a thread
    (`.wait()` blocks until it has)."""
    cold = "mlflow" not in sys.modules
    return RunsBrowser(experiment or data.default_experiment(), tracking_uri,
                       filter_string=filter_string, max_results=max_results,
                       background=cold, settle=settle)


def _store_name(client_or_uri: Any) -> str:
    if isinstance(client_or_uri, str):
        return client_or_uri
    from jupyter_mlops.tracking.destination import tracking_uri

    return getattr(client_or_uri, "tracking_uri", None) or tracking_uri()
