"""The drift report's view: rows coloured by PSI band, each with its overlaid histograms, and
re-sorted when the reader picks another column; the monitor run's page holds the same table."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from jupyter_mlops.monitoring.drift import compute_drift
from jupyter_mlops.widgets.drift_view import BAND_COLOURS, DriftView, report_html, report_page


def _report():
    rng = np.random.default_rng(0)
    before = pd.DataFrame({"tenure_months": rng.gamma(3, 8, 3000),
                           "monthly_charges": rng.normal(60, 15, 3000),
                           "plan": rng.choice(["basic", "pro"], 3000, p=[0.7, 0.3])})
    after = pd.DataFrame({"tenure_months": rng.gamma(3, 8, 2000),
                          "monthly_charges": rng.normal(66, 15, 2000),
                          "plan": rng.choice(["basic", "pro"], 2000, p=[0.3, 0.7])})
    return compute_drift(after, before)


def _order(html: str) -> list[str]:
    return re.findall(r'<tr style="background:[^"]+"><td[^>]*>([^<]+)</td>', html)


def test_rows_are_coloured_by_band_and_sorted_by_psi():
    report = _report()
    html = report_html(report, "Drift against churn@champion")
    bands = {d.name: d.band for d in report.features}
    assert bands["plan"] == "significant" and bands["tenure_months"] == "stable"
    assert _order(html) == ["plan", "monthly_charges", "tenure_months"]
    for name, band in bands.items():
        assert f'<tr style="background:{BAND_COLOURS[band]}"><td style' in html
        assert f'aria-label="{name} histogram"' in html
    assert html.count("<rect") == 2 * sum(len(d.labels) for d in report.features)
    assert 'class="mlops-drift-verdict">DRIFTED<' in html
    assert report_page(report, "t").startswith("<!DOCTYPE html>")


def test_the_view_resorts_when_another_column_is_picked():
    view = DriftView(_report(), "Drift")
    assert _order(view.body.value)[0] == "plan"
    view.sort.value = "feature"
    assert _order(view.body.value) == ["monthly_charges", "plan", "tenure_months"]
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"] == view.body.value  # for frontends without widgets
