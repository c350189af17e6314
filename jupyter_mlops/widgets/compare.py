"""The comparison of selected runs: params that differ, metric values and a chart per metric."""

from __future__ import annotations

from typing import Any

from jupyter_mlops.widgets import data, svg
from jupyter_mlops.widgets.html import esc, table

MAX_CHARTS = 6


def comparison_html(rows: list[data.RunRow], client: Any = None) -> str:
    """HTML for the runs in `rows` (in that order). `client` adds step histories to charts."""
    if not rows:
        return '<div class="mlops-compare"><i>Select runs to compare them.</i></div>'
    labels = _labels(rows)
    parts = [_params_section(rows, labels), _metrics_section(rows, labels)]
    parts += [_chart(key, rows, labels, client) for key in _metric_keys(rows)[:MAX_CHARTS]]
    return f'<div class="mlops-compare">{"".join(parts)}</div>'


def _labels(rows: list[data.RunRow]) -> list[str]:
    """Run names, made unique with a short id where two runs share a name."""
    names = [r.name for r in rows]
    return [r.name if names.count(r.name) == 1 else f"{r.name} ({r.run_id[:6]})" for r in rows]


def _params_section(rows: list[data.RunRow], labels: list[str]) -> str:
    differing = data.differing_params(rows)
    if not differing:
        same = "the same params" if any(r.params for r in rows) else "no params"
        return f'<p class="mlops-params-differ">The selected runs have {same}.</p>'
    body = [[key, *values] for key, values in differing.items()]
    return ('<h4 style="margin:6px 0 2px">Params that differ</h4>'
            + table(["param", *labels], body, css_class="mlops-params-differ"))


def _metrics_section(rows: list[data.RunRow], labels: list[str]) -> str:
    keys = _metric_keys(rows)
    if not keys:
        return "<p>No metrics logged.</p>"
    body = [[key, *(r.metrics.get(key) for r in rows)] for key in keys]
    return ('<h4 style="margin:6px 0 2px">Metrics</h4>'
            + table(["metric", *labels], body, css_class="mlops-metrics"))


def _metric_keys(rows: list[data.RunRow]) -> list[str]:
    return sorted({k for r in rows for k in r.metrics})


def _chart(key: str, rows: list[data.RunRow], labels: list[str], client: Any) -> str:
    histories = data.metric_histories(client, rows, key) if client is not None else {}
    if any(len(points) > 1 for points in histories.values()):
        by_label = {label: histories[r.run_id] for r, label in zip(rows, labels, strict=True)
                    if r.run_id in histories}
        chart = svg.line_chart(key, by_label)
    else:
        present = [(label, r.metrics[key]) for r, label in zip(rows, labels, strict=True)
                   if key in r.metrics]
        chart = svg.bar_chart(key, [p[0] for p in present], [p[1] for p in present])
    return f'<div class="mlops-chart" data-metric="{esc(key)}" ' \
           f'style="display:inline-block;margin:4px">{chart}</div>'
