"""Small HTML builders shared by the views; everything user-supplied is escaped."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

STATUS_COLOURS = {
    "RUNNING": "#1f77b4", "SCHEDULED": "#7f7f7f", "QUEUED": "#7f7f7f", "PENDING": "#7f7f7f",
    "FINISHED": "#2ca02c", "SUCCEEDED": "#2ca02c", "CACHED": "#17becf",
    "FAILED": "#d62728", "KILLED": "#8c564b", "SKIPPED": "#bcbd22",
}
UNKNOWN_COLOUR = "#c7c7c7"
TABLE_STYLE = ("border-collapse:collapse;font-family:var(--jp-ui-font-family,sans-serif);"
               "font-size:12px")
CELL_STYLE = ("padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;"
              "vertical-align:top;white-space:nowrap")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers compactly (4 significant digits), None as a dash, anything else as text."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def status_colour(status: str | None) -> str:
    return STATUS_COLOURS.get((status or "").upper(), UNKNOWN_COLOUR)


def status_badge(status: str) -> str:
    colour = status_colour(status)
    return (f'<span class="mlops-status" data-status="{esc(status)}" style="background:{colour};'
            f'color:white;border-radius:3px;padding:1px 6px;font-size:11px">{esc(status)}</span>')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          raw_columns: Iterable[int] = (), row_styles: Sequence[str] | None = None,
          css_class: str = "mlops-table") -> str:
    """A plain HTML table; columns listed in `raw_columns` hold HTML already."""
    raw = set(raw_columns)
    head = "".join(f'<th style="{CELL_STYLE}">{esc(h)}</th>' for h in headers)
    body = []
    for i, row in enumerate(rows):
        style = row_styles[i] if row_styles else ""
        cells = "".join(
            f'<td style="{CELL_STYLE}">{cell if j in raw else esc(fmt(cell))}</td>'
            for j, cell in enumerate(row))
        body.append(f'<tr style="{style}">{cells}</tr>')
    return (f'<table class="{css_class}" style="{TABLE_STYLE}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}" target="_blank" rel="noopener">{esc(text)}</a>'
