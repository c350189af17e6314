"""Inline SVG charts: they render in JupyterLab, in a saved notebook and on GitHub alike."""

from __future__ import annotations

from jupyter_mlops.widgets.html import esc, fmt

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
FONT = 'font-family="sans-serif" font-size="11"'


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def bar_chart(title: str, labels: list[str], values: list[float], width: int = 360) -> str:
    """Horizontal bars, one per run, scaled from 0 (or from the minimum when negative)."""
    row_h, left, top = 18, 110, 20
    height = top + row_h * len(values) + 6
    low = min(0.0, *values) if values else 0.0
    high = max(0.0, *values) if values else 1.0
    span = (high - low) or 1.0
    plot_w = width - left - 60
    parts = [_title(title)]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        x0 = left + (0 - low) / span * plot_w
        x1 = left + (value - low) / span * plot_w
        parts.append(
            f'<text x="{left - 4}" y="{y + 12}" text-anchor="end" {FONT}>{esc(label[:18])}</text>'
            f'<rect x="{min(x0, x1):.1f}" y="{y + 2}" width="{abs(x1 - x0):.1f}"'
            f' height="{row_h - 4}" fill="{colour(i)}">'
            f'<title>{esc(label)}: {esc(fmt(value))}</title></rect>'
            f'<text x="{max(x0, x1) + 4:.1f}" y="{y + 12}" {FONT}>{esc(fmt(value))}</text>')
    return _svg(width, height, parts, title)


def line_chart(title: str, series: dict[str, list[float]], width: int = 360,
               height: int = 160) -> str:
    """One polyline per run over the metric's steps, with a legend."""
    values = [v for points in series.values() for v in points]
    if not values:
        return _svg(width, 30, [_title(title)], title)
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    longest = max(len(p) for p in series.values())
    left, top, plot_w, plot_h = 40, 20, width - 150, height - 40
    parts = [_title(title),
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {FONT}>{esc(fmt(high))}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" {FONT}>'
             f'{esc(fmt(low))}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
             f'stroke="#ccc"/>']
    for i, (label, points) in enumerate(series.items()):
        step_w = plot_w / max(longest - 1, 1)
        coords = [(left + j * step_w, top + plot_h - (v - low) / span * plot_h)
                  for j, v in enumerate(points)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour(i)}" '
                     f'stroke-width="2"><title>{esc(label)}</title></polyline>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour(i)}"/>'
                  for x, y in coords]
        ly = top + 10 + i * 14
        parts.append(f'<rect x="{left + plot_w + 10}" y="{ly - 8}" width="10" height="10" '
                     f'fill="{colour(i)}"/><text x="{left + plot_w + 24}" y="{ly}" {FONT}>'
                     f'{esc(label[:16])}</text>')
    return _svg(width, max(height, top + 14 * len(series) + 10), parts, title)


def _title(text: str) -> str:
    return f'<text x="4" y="13" font-family="sans-serif" font-size="12" ' \
           f'font-weight="bold">{esc(text)}</text>'


def _svg(width: int, height: int, parts: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="{esc(label)}">{"".join(parts)}</svg>')
