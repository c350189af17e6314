"""The drift report as a notebook view and as the HTML a monitor run stores.

A table of the features (then the predictions), a row coloured by its PSI band, each with the
reference's and the current data's shares per bin overlaid; the widget sorts it by any column.
`drift()` is the notebook's entry: the monitoring layer measures and logs, this shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from jupyter_mlops.monitoring.drift import DriftReport, FeatureDrift
from jupyter_mlops.monitoring.monitor import bands_for, log_run, measure
from jupyter_mlops.monitoring.profile import IN_SECONDS
from jupyter_mlops.widgets.html import esc, fmt, table

BAND_COLOURS = {"stable": "#e6f4ea", "moderate": "#fff4ce", "significant": "#fadbd8"}
REFERENCE_COLOUR, CURRENT_COLOUR = "#1f77b4", "#ff7f0e"
_BAND_RANK = {"stable": 0, "moderate": 1, "significant": 2}
SORTS: dict[str, Callable[[FeatureDrift], Any]] = {  # the widget's orders; descending: first
    "PSI": lambda d: -d.psi, "feature": lambda d: d.name, "p-value": lambda d: d.p_value,
    "band": lambda d: (-_BAND_RANK[d.band], -d.psi)}
HEADERS = ["feature", "kind", "PSI", "band", "CSI", "test", "p-value", "reference / current"]


def histogram(drift: FeatureDrift, width: int = 180, height: int = 44) -> str:
    """The reference's and the current shares per bin as overlaid bars (SVG)."""
    bins = len(drift.labels)
    top = max([*drift.reference, *drift.current, 1e-12])
    step = width / max(bins, 1)
    parts = []
    for i, label in enumerate(drift.labels):
        for share, colour in ((drift.reference[i], REFERENCE_COLOUR),
                              (drift.current[i], CURRENT_COLOUR)):
            h = share / top * (height - 2)
            parts.append(f'<rect x="{i * step + 1:.1f}" y="{height - h:.1f}" '
                         f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="{colour}" '
                         f'fill-opacity="0.5"><title>{esc(label)}: reference '
                         f'{drift.reference[i]:.1%}, current {drift.current[i]:.1%}</title></rect>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="{esc(drift.name)} histogram">{"".join(parts)}</svg>')


def report_html(report: DriftReport, title: str = "Drift report", sort: str = "PSI") -> str:
    """The whole report: verdict, notes, and the table sorted by `sort` (a key of SORTS)."""
    rows = sorted([*report.features, *([report.prediction] if report.prediction else [])],
                  key=SORTS[sort])
    verdict = "DRIFTED" if report.drifted else "stable"
    head = (f'<h4 style="margin:4px 0">{esc(title)}: <span class="mlops-drift-verdict">'
            f'{verdict}</span></h4><div>max PSI {fmt(report.max_psi)} (significant above '
            f'{fmt(report.bands.significant)}, moderate from {fmt(report.bands.moderate)}); '
            f'{report.current_rows:,} rows against {report.reference_rows:,}; '
            f'<span style="color:{REFERENCE_COLOUR}">■ reference</span> '
            f'<span style="color:{CURRENT_COLOUR}">■ current</span></div>')
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
    body = table(HEADERS, [[d.name, kind_label(d.kind), d.psi, d.band, d.csi, d.test, d.p_value,
                            histogram(d)] for d in rows],
                 raw_columns=[7], row_styles=[f"background:{BAND_COLOURS[d.band]}" for d in rows],
                 css_class="mlops-drift")
    return head + (f"<ul>{notes}</ul>" if notes else "") + body


def kind_label(kind: str) -> str:
    """A feature's kind as the table says it: datetimes and timedeltas with their unit."""
    return f"{kind} ({IN_SECONDS[kind]})" if kind in IN_SECONDS else kind


def report_page(report: DriftReport, title: str) -> str:
    """A standalone HTML page of the report: the monitor run's artifact."""
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'</head><body>{report_html(report, title)}</body></html>')


class DriftView:
    """The report in a notebook: a sort selector over the HTML table (ipywidgets), with the
    HTML itself for frontends without widgets (a saved notebook, nbconvert, GitHub)."""

    def __init__(self, report: DriftReport, title: str) -> None:
        import ipywidgets as w

        self.report, self.title = report, title
        self.sort = w.ToggleButtons(options=list(SORTS), value="PSI", description="sort by")
        self.body = w.HTML(report_html(report, title))
        self.sort.observe(lambda _: self._redraw(), names="value")
        self.widget = w.VBox([self.sort, self.body])

    def _redraw(self) -> None:
        self.body.value = report_html(self.report, self.title, self.sort.value)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.body.value
        return bundle


@dataclass(frozen=True)
class DriftResult(DriftReport):
    """A DriftReport as `drift()` returns it: where it was logged, and shown as a DriftView."""

    reference: str = ""
    run_id: str | None = None

    @property
    def title(self) -> str:
        return f"Drift against {self.reference}"

    def view(self) -> DriftView:
        return DriftView(self, self.title)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self.view()._repr_mimebundle_(**kwargs)


def drift(current: Any, reference: Any, predictions: Any = None, *,
          threshold: float | None = None, log: bool = True, store: Any = None,
          experiment: str | None = None) -> DriftResult:
    """Compare `current` (and the model's `predictions` on it) with `reference`: "MODEL@ALIAS"
    or "MODEL/N" (the profile stored with that version), a run id, or a DataFrame. The PSI
    bands are 0.1 and `threshold` (0.25). The report is logged as a monitor run beside the
    model (`log=False`: not logged) and shown as a table when it is a cell's value."""
    report, source = measure(current, reference, predictions, bands=bands_for(threshold),
                             store=store)
    title = f"Drift against {source.label}"
    run_id = (log_run(report, source, html=report_page(report, title), store=store,
                      experiment=experiment) if log else None)
    values = {f.name: getattr(report, f.name) for f in fields(DriftReport)}
    return DriftResult(**values, reference=source.label, run_id=run_id)
