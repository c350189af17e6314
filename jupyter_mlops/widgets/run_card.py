"""The run card: status, duration, params, metrics and a link for one tracked run.

Under a `%%mlops track` cell it is a `CellCard`, updated live by the tracking magics:
`cell_card(...)` when the cell starts, `update(...)` as values arrive and `finish(...)` when it
ends. `RunCard` is the same card as a widget, for `show_run_card`. Reading MLflow is explicit
(`refresh`), because importing mlflow on the cell's thread would block the cell the card is
reporting on.

A card also shows what went wrong with its run's records after the cell: the tracking writer
sends them in the background, so a record the store rejects (a model it cannot save, a param
re-logged with another value) is known later; `watch(...)` polls for it on the card's clock.
Likewise `watch_model(...)` names the cell's model (`--model VAR`) and, once the store
answered, whether it was stored, registered (name and version) or rejected.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

from jupyter_mlops.models.lineage import run_datasets
from jupyter_mlops.steps.mlflow_vocabulary import CONTEXT_TRAINING, run_row
from jupyter_mlops.widgets import data
from jupyter_mlops.widgets.fallback import StaticFallback, publish
from jupyter_mlops.widgets.html import esc, fmt, link, status_badge, status_colour

TERMINAL = ("FINISHED", "FAILED", "KILLED")
MAX_ROWS = 20  # params/metrics shown; the run page has the rest
LINK_WAIT = 60.0  # seconds a finished card keeps asking the tracking writer for the run id
PROBLEM_COLOUR = "#ff7f0e"  # the card's edge when some of the run's records were not stored


class _Ticker:
    """One thread redraws every live card once a second: a thread per card would cost its
    start (about 0.5 ms) on the tracked cell's time."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._cards: list[_Card] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, card: _Card) -> None:
        with self._lock:
            self._cards.append(card)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mlops-run-cards",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            done = self.tick_now()
            with self._lock:
                self._cards = [card for card in self._cards if card not in done]
                if not self._cards:
                    self._thread = None
                    return

    def tick_now(self) -> list[_Card]:
        """One redraw of every live card, on this thread; returns those that need no more."""
        with self._lock:
            cards = list(self._cards)
        return [card for card in cards if not _ticks_on(card)]


_TICKER = _Ticker()


def tick_cards() -> None:
    """Redraw the live cards now (e.g. after `%mlops end` flushed their runs' records)."""
    _TICKER.tick_now()


def _ticks_on(card: _Card) -> bool:
    try:
        return card._tick()
    except Exception:  # one broken card must not stop the others' clocks
        return False


class _Card:
    """A run's card: its state, its HTML and its clock. Subclasses draw it: `_render()`
    redraws the live view, `refresh_output()` rewrites the output the saved notebook keeps."""

    def _init_card(self, name: str, run_id: str | None, status: str,
                   client_or_uri: Any) -> None:
        self.name = name
        self.run_id = run_id
        self.status = status
        self.started = time.time()
        self.ended: float | None = None
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.error: str | None = None
        self.experiment_id: str | None = None
        self.link: str | None = None
        self._source = client_or_uri
        self._run_id_source: Callable[[], str | None] | None = None
        self.problems: list[str] = []  # what went wrong with the run's records
        self._problems_source: Callable[[], tuple[list[str], bool]] | None = None
        self.model: str | None = None  # the variable logged as the run's model
        self.model_fate = ""  # what the store made of it: stored, registered ..., rejected
        self._model_source: Callable[[], tuple[str, bool]] | None = None
        self.datasets: list[Any] = []  # the run's dataset inputs (steps/datasets.py)
        # (kind, name): values the cell's options asked for that it did not define
        self.not_logged: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _alive(self) -> bool:
        return True

    # --- drawn by each subclass ----------------------------------------------------------
    def _render(self) -> None:
        """Redraw the live view (called under the card's lock)."""
        raise NotImplementedError

    def refresh_output(self) -> None:
        """Rewrite the output the saved notebook keeps."""
        raise NotImplementedError

    # --- state ---------------------------------------------------------------------------
    def update(self, *, status: str | None = None, params: dict[str, Any] | None = None,
               metrics: dict[str, Any] | None = None, run_id: str | None = None,
               name: str | None = None, error: str | None = None,
               experiment_id: str | None = None, link: str | None = None,
               started: float | None = None, ended: float | None = None) -> Any:
        """Merge new values in and redraw. A terminal status also rewrites the saved output."""
        with self._lock:
            changed = status is not None and status != self.status
            for attr, value in (("run_id", run_id), ("name", name), ("error", error),
                                ("experiment_id", experiment_id), ("link", link),
                                ("started", started), ("ended", ended), ("status", status)):
                if value is not None:
                    setattr(self, attr, value)
            self.params.update(params or {})
            self.metrics.update(metrics or {})
            if self.status in TERMINAL and self.ended is None:
                self.ended = time.time()
            self._render()
        if changed:
            self.refresh_output()
        return self

    def finish(self, status: str = "FINISHED", *, error: str | None = None,
               params: dict[str, Any] | None = None,
               metrics: dict[str, Any] | None = None) -> Any:
        """The run ended: its last values, and the saved output rewritten to this final state
        (call it on the cell's thread, before the cell returns, so the output is in the file)."""
        self._resolve_run_id()
        before = self.status
        self.update(status=status, error=error, params=params, metrics=metrics,
                    ended=self.ended or time.time())
        if self.status == before:  # update() rewrites the output only on a status change
            self.refresh_output()
        return self

    def follow(self, run_id: Callable[[], str | None]) -> Any:
        """Take the run id from `run_id()` once it answers (the tracking writer creates MLflow
        runs in the background); the card then links to the run."""
        self._run_id_source = run_id
        self._resolve_run_id()
        return self

    def watch(self, problems: Callable[[], tuple[list[str], bool]]) -> Any:
        """Show what `problems()` reports about the run's records, (lines, final), until it
        says final: the tracking writer learns after the cell whether the store took them."""
        self._problems_source = problems
        self._check_problems()
        return self

    def watch_model(self, variable: str, fate: Callable[[], tuple[str, bool]]) -> Any:
        """Name the run's model, `variable`, with what `fate()` reports of it, (words, final),
        until it says final; redraws at the card's next change (`finish`, a tick)."""
        self.model, self._model_source = variable, fate
        self._check_model()
        return self

    def _check_model(self) -> bool:
        """True when the model's fate changed."""
        if self._model_source is None:
            return False
        fate, final = _ask(self._model_source, self.model_fate)
        if final:
            self._model_source = None
        changed, self.model_fate = fate != self.model_fate, fate
        return changed

    def _check_problems(self) -> bool:
        """True when the problems changed."""
        if self._problems_source is None:
            return False
        lines, final = _ask(self._problems_source, self.problems)
        if final:
            self._problems_source = None
        changed, self.problems = lines != self.problems, list(lines)
        return changed

    def _resolve_run_id(self) -> bool:
        """True when this call learnt the run id."""
        if self.run_id or self._run_id_source is None:
            return False
        try:
            found = self._run_id_source()
        except Exception:  # the writer is the tracking layer's business; the card just waits
            return False
        if found:
            self.run_id = found
        return bool(found)

    def tick(self) -> Any:
        """Redraw the running duration every second until the run ends, then wait a little
        for the run id when it is still unknown (the saved output gets the link)."""
        _TICKER.add(self)
        return self

    def _tick(self) -> bool:
        """One redraw; False once the card needs no more."""
        if not self._alive():
            return False
        learnt = self._resolve_run_id()
        noticed = self._check_problems() | self._check_model()
        running = self.status not in TERMINAL
        # A finished card's duration is final: redraw for the link and problems only.
        if running or learnt or noticed:
            with self._lock:
                self._render()
        if running:
            return True
        if learnt or noticed:
            self.refresh_output()
        wants_link = not (self.run_id or self._run_id_source is None
                          or time.time() - (self.ended or 0) > LINK_WAIT)
        return (wants_link or self._problems_source is not None
                or self._model_source is not None)

    @property
    def duration(self) -> float:
        return (self.ended or time.time()) - self.started

    def _default_link(self) -> str | None:
        if not self.run_id:
            return None
        uri = self._source if isinstance(self._source, str) else _uri(self._source)
        return data.run_link(uri, self.experiment_id, self.run_id)

    def _html(self) -> str:
        title = esc(self.name or "run")
        href = self.link or self._default_link()
        if href:
            title = link(href, self.name or "run")
        head = (f'<div style="display:flex;gap:10px;align-items:center">'
                f'<b>{title}</b>{status_badge(self.status)}'
                f'<span class="mlops-duration">{duration_text(self.duration)}</span>'
                f'<code style="font-size:10px;color:#777">{esc(self.run_id or "")}</code></div>')
        parts = [head]
        if self.problems:
            lines = "<br>".join(esc(line) for line in self.problems)
            parts.append(f'<div class="mlops-problems" style="color:#d62728;margin:4px 0">'
                         f'&#9888; {lines}</div>')
        if self.error:
            parts.append(f'<pre class="mlops-error" style="color:#d62728;white-space:pre-wrap;'
                         f'margin:4px 0">{esc(self.error[-2000:])}</pre>')
        missing = {kind: [n for k, n in self.not_logged if k == kind]
                   for kind in ("metric", "param", "input")}
        if self.metrics or missing["metric"]:
            parts.append(_kv("metrics", self.metrics, missing["metric"]))
        if self.params or missing["param"]:
            parts.append(_kv("params", self.params, missing["param"]))
        if self.model:
            parts.append(self._model_html())
        if self.datasets or missing["input"]:
            parts.append(_datasets_html(self.datasets, missing["input"]))
        colour = PROBLEM_COLOUR if self.problems else status_colour(self.status)
        return ('<div class="mlops-run-card" style="border:1px solid #ddd;border-left:4px solid '
                f'{colour};padding:4px 8px;margin:2px 0;font-size:12px">'
                f'{"".join(parts)}</div>')

    def _model_html(self) -> str:
        fate = ""
        if self.model_fate:  # a failure is said in capitals ("NOT STORED: ..."), in red
            colour = "#d62728" if self.model_fate.startswith("NOT") else "#777"
            fate = f' <span style="color:{colour}">&rarr; {esc(self.model_fate)}</span>'
        return (f'<div class="mlops-model"><span style="color:#777">model:</span> '
                f'<b>{esc(self.model)}</b>{fate}</div>')

    def _text(self) -> str:
        """The card in plain text (text/plain, for frontends without HTML)."""
        lines = [f"run card: {self.name} {self.status}"]
        lines += [f"{kind} {name} -> NOT LOGGED" for kind, name in self.not_logged]
        if self.model:
            lines.append(f"model: {self.model}" + (f" -> {self.model_fate}"
                                                   if self.model_fate else ""))
        return "\n".join(lines + self.problems)


class RunCard(StaticFallback, _Card, widgets.HTML):
    # StaticFallback first: its refresh_output (re-send the bundle) is this card's.
    """One run as a card widget; its HTML is both the live view and the saved fallback."""

    def __init__(self, name: str = "", run_id: str | None = None, status: str = "RUNNING",
                 client_or_uri: Any = None, **kwargs: Any) -> None:
        self._init_card(name, run_id, status, client_or_uri)
        # The first state sent to the frontend (comm open) already holds the card, its class
        # included; cards share one layout and one style: each would be a widget of its own.
        kwargs.setdefault("layout", _shared("layout", widgets.Layout))
        kwargs.setdefault("style", _shared("style", HTMLStyle))
        super().__init__(value=self._html(), _dom_classes=("mlops-run-card",), **kwargs)

    def _alive(self) -> bool:
        return self.comm is not None

    def refresh(self) -> RunCard:
        """Reload the run from MLflow (needs `run_id`)."""
        if not self.run_id:
            return self
        client = data.resolve_client(self._source)
        self._source = client
        run = client.get_run(self.run_id)
        row = run_row(run)
        self.datasets = run_datasets(run)
        return self.update(status=row.status, params=row.params, metrics=row.metrics,
                           name=row.name, experiment_id=row.experiment_id,
                           started=row.start_ms / 1000,
                           ended=row.end_ms / 1000 if row.end_ms else None,
                           link=data.run_link(_uri(client), row.experiment_id, row.run_id))

    # --- view ----------------------------------------------------------------------------
    def _render(self) -> None:
        self.value = self._html()

    def static_html(self) -> str:
        """The card as last drawn: every change redraws it (`_render`)."""
        return self.value or self._html()


class CellCard(_Card):
    """The card under a `%%mlops track` cell: an HTML output redrawn in place (display_id).

    No widget: a widget's comm costs the tracked cell two more messages to the frontend, and a
    display updated in place reaches JupyterLab and Notebook 7 after the cell ended too (the
    run id, and so the link, often arrives then). The HTML is what the saved notebook keeps.
    """

    def __init__(self, name: str, client_or_uri: Any = None) -> None:
        self._init_card(name, None, "RUNNING", client_or_uri)
        self._display_id = uuid.uuid4().hex

    def show(self) -> CellCard:
        # The cell's first output: nothing printed needs flushing before it.
        publish(self._bundle(), self._display_id, flush=False)
        return self

    def _render(self) -> None:
        publish(self._bundle(), self._display_id, update=True)

    def refresh_output(self) -> None:
        """The live view is the saved output: `_render` already rewrote it."""

    def static_html(self) -> str:
        return self._html()

    def _bundle(self) -> dict[str, str]:
        return {"text/html": self._html(), "text/plain": self._text()}


def duration_text(seconds: float) -> str:
    """"556 ms", "2.5 s", "3 min 4 s": as the panel's run details say a duration (dom.ts)."""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def _datasets_html(datasets: list[Any], missing: list[str]) -> str:
    """The run's data, as lineage names it: each value with its short digest and rows."""
    items = []
    for d in datasets[:MAX_ROWS]:
        size = f", {d.rows:,} rows" if d.rows is not None else ""
        role = f" ({esc(d.context)})" if d.context not in ("", CONTEXT_TRAINING) else ""
        items.append(f"<b>{esc(d.name)}</b>{role} <code>{esc(d.digest[:8])}</code>{size}")
    return (f'<div class="mlops-datasets"><span style="color:#777">data:</span> '
            f'{"; ".join(items + _not_logged(missing))}</div>')


def _kv(title: str, values: dict[str, Any], missing: list[str] | None = None) -> str:
    items = sorted(values.items())[:MAX_ROWS]
    cells = [f"{esc(k)}=<b>{esc(fmt(v))}</b>" for k, v in items] + _not_logged(missing or [])
    more = f" (+{len(values) - MAX_ROWS} more)" if len(values) > MAX_ROWS else ""
    return (f'<div class="mlops-{title}"><span style="color:#777">{title}:</span> '
            f'{", ".join(cells)}{more}</div>')


def _not_logged(names: list[str]) -> list[str]:
    """Names asked for and not defined, in red, as a model that was not logged is."""
    return [f'<span style="color:#d62728">{esc(n)} &rarr; NOT LOGGED</span>' for n in names]


_SHARED: dict[str, Any] = {}


def _ask(source: Callable[[], tuple[Any, bool]], current: Any) -> tuple[Any, bool]:
    """(value, final) from one of a card's sources; a broken source must not break the card,
    so it keeps `current` and is not asked again."""
    try:
        return source()
    except Exception:  # noqa: BLE001
        return current, True


def _shared(name: str, make: Callable[[], Any]) -> Any:
    """One layout and one style widget for every card (cards never change them)."""
    widget = _SHARED.get(name)
    if widget is None or widget.comm is None:  # closed, e.g. by Widget.close_all()
        widget = _SHARED[name] = make()
    return widget


def _uri(client: Any) -> str | None:
    return getattr(client, "tracking_uri", None)


def show_run_card(run_id: str | None = None, client_or_uri: Any = None, *, name: str = "",
                  status: str = "RUNNING", display: bool = True, tick: bool = True) -> RunCard:
    """Make a run card and display it in the current cell's output.

    With an MlflowClient the run is read at once; with a URI (or nothing) the card starts from
    `name`/`status` and the caller fills it with `update(...)`, or `refresh()` reads MLflow.
    """
    card = RunCard(name=name, run_id=run_id, status=status, client_or_uri=client_or_uri)
    if run_id and client_or_uri is not None and not isinstance(client_or_uri, str):
        card.refresh()
    if display:
        card.show()
    if tick and card.status not in TERMINAL:
        card.tick()
    return card



def cell_card(name: str, *, run_id: Callable[[], str | None] | str | None = None,
              tracking_uri: str | None = None, params: dict[str, Any] | None = None,
              problems: Callable[[], tuple[list[str], bool]] | None = None,
              ) -> CellCard | None:
    """The live card under a `%%mlops track` cell: the hook the tracking magics call.

    `run_id` is the MLflow run id, or a cheap callable that returns it once known (None
    before). `problems` is a cheap callable reporting what went wrong with the run's records
    (see `watch`). Returns None outside a kernel: a terminal IPython or a script has no
    frontend for it, and the card must never get in a tracked cell's way.
    """
    from IPython import get_ipython

    if getattr(get_ipython(), "kernel", None) is None:
        return None
    card = CellCard(name, client_or_uri=tracking_uri)
    if isinstance(run_id, str):
        card.run_id = run_id
    elif callable(run_id):
        card.follow(run_id)
    card.params.update(params or {})  # carried by the first display: one message, not two
    if problems is not None:
        card._problems_source = problems  # asked from the first tick: nothing to show yet
    return card.show().tick()

