"""Drift reports: PSI and CSI against hand-computed values, KS and chi-square p-values against
scipy.stats on the same data, the bands, and every kind of bad input named in the error."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from jupyter_mlops.monitoring.drift import Bands, DriftInputError, compute_drift, psi
from jupyter_mlops.monitoring.profile import Profile, build_profile, sample_rows

EPS = 1e-4


@pytest.fixture(scope="module")
def churn() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers at training time and a later batch: tenure shifted, plans reshuffled."""
    rng = np.random.default_rng(7)
    n_ref, n_cur = 12_000, 15_000

    def batch(n: int, shift: float, plans: list[float]) -> pd.DataFrame:
        return pd.DataFrame({
            "tenure_Months": np.round(rng.gamma(2.0, 12.0 + shift, n), 1),  # ties
            "monthly_charges": rng.normal(70 + shift, 20, n),
            "plan": rng.choice(["basic", "plus", "premium"], n, p=plans),
        })

    reference = batch(n_ref, 0.0, [0.5, 0.3, 0.2])
    current = batch(n_cur, 3.0, [0.35, 0.35, 0.3])
    current.loc[current.index[::50], "monthly_charges"] = np.nan  # 2 % missing now
    return reference, current


def test_psi_by_hand_numeric() -> None:
    reference = pd.DataFrame({"age": np.arange(1.0, 11.0)})  # a row per decile bin
    current = pd.DataFrame({"age": [1.0, 1.0, 1.0, 1.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]})
    drift = compute_drift(current, reference).feature("age")
    # bins: <= 1.9 holds 4 rows now (0.4 against 0.1); the bins of 2, 3 and 4 are empty (share
    # raised to EPS); the rest hold 0.1 as before; no missing values either side.
    expected = 0.3 * math.log(0.4 / 0.1) + 3 * (0.1 - EPS) * math.log(0.1 / EPS)
    assert drift.psi == pytest.approx(expected, rel=1e-12)
    assert drift.reference == pytest.approx([0.1] * 10 + [0.0])
    assert drift.current == pytest.approx([0.4, 0, 0, 0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0])
    assert drift.band == "significant"


def test_psi_csi_and_chi_square_by_hand_categorical() -> None:
    reference = pd.DataFrame({"plan": ["a"] * 5 + ["b"] * 3 + ["c"] * 2})
    scores = [0.2] * 5 + [0.5] * 3 + [0.9] * 2  # the model's predictions on the reference
    current = pd.DataFrame({"plan": ["a"] * 4 + ["b"] * 4 + ["d", None]})
    report = compute_drift(current, reference, reference_predictions=scores)
    drift = report.feature("plan")
    assert drift.labels == ("a", "b", "c", "(other)", "(missing)")
    expected = (-0.1 * math.log(0.4 / 0.5) + 0.1 * math.log(0.4 / 0.3)
                + (EPS - 0.2) * math.log(EPS / 0.2) + 2 * (0.1 - EPS) * math.log(0.1 / EPS))
    assert drift.psi == pytest.approx(expected, rel=1e-12)
    # CSI: share changes times the mean reference score per bin; "other" and missing had no
    # reference rows and count at the overall mean score, 0.43.
    assert drift.csi == pytest.approx(-0.1 * 0.2 + 0.1 * 0.5 - 0.2 * 0.9 + 0.2 * 0.43, abs=1e-6)
    expected_test = stats.chi2_contingency([[5, 3, 2, 0, 0], [4, 4, 0, 1, 1]])
    assert (drift.test, drift.statistic, drift.p_value) == (
        "chi2", expected_test.statistic, expected_test.pvalue)


def test_ks_equals_scipy_exact_and_asymptotic(churn) -> None:
    reference, current = churn
    report = compute_drift(current, reference)
    for name in ("tenure_Months", "monthly_charges"):  # 12,000 v 15,000: asymptotic p-values
        expected = stats.ks_2samp(reference[name].dropna(), current[name].dropna())
        drift = report.feature(name)
        assert (drift.test, drift.statistic, drift.p_value) == (
            "ks", expected.statistic, expected.pvalue)
        assert not drift.approximate
    small = compute_drift(current.iloc[:700], reference.iloc[:300])  # ks_2samp's exact method
    expected = stats.ks_2samp(reference["monthly_charges"].iloc[:300],
                              current["monthly_charges"].iloc[:700].dropna())
    assert small.feature("monthly_charges").p_value == expected.pvalue
    assert report.notes == ("CSI needs the model's predictions on the reference data: "
                            "give reference_predictions=",)


def test_ks_on_a_seeded_sample_equals_scipy_on_that_sample(churn) -> None:
    reference, current = churn
    report = compute_drift(current, reference, ks_sample=5_000, seed=3)
    ref_rows = sample_rows(len(reference), 5_000, 3)
    cur_rows = sample_rows(len(current), 5_000, 3)
    name = "monthly_charges"
    expected = stats.ks_2samp(reference[name].to_numpy()[ref_rows],
                              current[name].to_numpy()[cur_rows], nan_policy="omit")
    assert report.feature(name).p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert report.feature(name).statistic == expected.statistic
    assert report.notes[0].startswith("KS on a seeded sample of 5,000 rows per side (seed 3)")
    # PSI still counts every row of the current data (the bins are cut at the sample's deciles)
    shares = np.array(report.feature(name).current) * len(current)
    assert np.allclose(shares, np.round(shares)) and shares[-1] == pytest.approx(300)


def test_against_a_profile_ks_is_approximate_and_said(churn) -> None:
    reference, current = churn
    def score(frame: pd.DataFrame) -> np.ndarray:  # a model's probability of churn
        return 1 / (1 + np.exp(-(frame["monthly_charges"].fillna(70).to_numpy() - 70) / 20))

    exact = compute_drift(current, reference, reference_predictions=score(reference))
    profile = build_profile(reference, score(reference))
    report = compute_drift(current, profile, predictions=score(current))
    for name in ("tenure_Months", "monthly_charges"):
        assert report.feature(name).approximate
        assert report.feature(name).statistic == pytest.approx(
            exact.feature(name).statistic, abs=0.01)
        assert report.feature(name).psi == pytest.approx(exact.feature(name).psi, abs=0.02)
    assert report.feature("plan").psi == exact.feature("plan").psi  # counts are exact
    assert any("approximate" in note for note in report.notes)
    assert report.prediction is not None and report.prediction.name == "prediction"


def test_bands_and_the_reports_metrics(churn) -> None:
    bands = Bands()
    assert [bands.of(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501)] == [
        "stable", "stable", "moderate", "moderate", "significant"]
    assert Bands(moderate=0.01, significant=0.02).of(0.05) == "significant"
    with pytest.raises(DriftInputError, match="moderate <= significant"):
        Bands(moderate=0.3, significant=0.2)
    reference, current = churn
    strict = compute_drift(current, reference, bands=Bands(0.001, 0.002))
    assert strict.drifted and strict.feature("plan").band == "significant"
    metrics = compute_drift(current, reference).metrics()
    assert {"psi.tenure_Months", "ks_p.tenure_Months", "psi.monthly_charges",
            "ks_p.monthly_charges", "psi.plan", "chi2_p.plan", "drift.max_psi",
            "drift.drifted_features"} == set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["drift.max_psi"] == max(v for k, v in metrics.items() if k.startswith("psi."))


def test_psi_of_identical_histograms_is_zero() -> None:
    assert psi([10, 0, 5], [20, 0, 10]) == 0.0


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["plan"]).assign(region="north"),
     r"missing plan \(in the reference, not in the current data\); extra region"),
    (lambda f: f.assign(tenure_Months=f["tenure_Months"].astype(str)),
     r"changed dtypes: tenure_Months \(numeric, float64 in the reference; categorical"),
    (lambda f: f.assign(monthly_charges=np.nan),
     r"column 'monthly_charges': every value in the current data is missing"),
    (lambda f: f.assign(plan=None), r"column 'plan': every value in the current data is missing"),
    (lambda f: f.iloc[:0], r"the current data is empty \(0 rows, 3 columns\)"),
    (lambda f: f.assign(tenure_Months=pd.Timestamp("2026-01-01")),
     r"changed dtypes: tenure_Months \(numeric, float64 in the reference; datetime, "
     r"datetime64\[\w+\] now\)"),
    (lambda f: f.assign(plan=[{"tier": "basic"}] * len(f)),
     r"plan \(categorical, \w+ in the reference; unsupported, object holding dict now\)"),
])
def test_bad_current_data_is_named(churn, change, message) -> None:
    reference, current = churn
    with pytest.raises(DriftInputError, match=message):
        compute_drift(change(current), reference)


def test_bad_reference_data_is_named(churn) -> None:
    reference, current = churn
    with pytest.raises(DriftInputError, match="the reference data is empty"):
        compute_drift(current, reference.iloc[:0])
    # a column without a value in the reference is left out, said, and costs nothing else
    empty = reference.assign(monthly_charges=np.nan, plan=None)
    profile = build_profile(empty)
    assert profile.skipped == {"monthly_charges": "float64, every value missing",
                               "plan": f"{empty['plan'].dtype}, every value missing"}
    assert list(profile.columns) == ["tenure_Months"]
    for against in (profile, empty):
        report = compute_drift(current, against)
        assert [f.name for f in report.features] == ["tenure_Months"]
        assert report.notes[-1].startswith("not compared: monthly_charges (float64, every value "
                                           "missing), plan (")
    with pytest.raises(DriftInputError, match="no column drift is measured on"):
        build_profile(empty[["monthly_charges"]])
    with pytest.raises(DriftInputError, match="15000 reference predictions for 12000 rows"):
        compute_drift(current, reference, reference_predictions=np.zeros(15_000))
    with pytest.raises(DriftInputError, match="not a reference profile"):
        Profile.from_json('{"rows": 3}')


def test_constant_columns_have_a_defined_psi() -> None:
    reference = pd.DataFrame({"units": [3.0] * 50, "flag": ["yes"] * 50})
    same = compute_drift(reference.copy(), reference)
    assert [(d.psi, d.p_value) for d in same.features] == [(0.0, 1.0), (0.0, 1.0)]
    moved = compute_drift(pd.DataFrame({"units": [4.0] * 40, "flag": ["yes"] * 40}), reference)
    units = moved.feature("units")  # every row above the reference's only value
    assert units.psi == pytest.approx(2 * (1 - EPS) * math.log(1 / EPS))
    assert units.band == "significant" and units.statistic == 1.0
    below = compute_drift(pd.DataFrame({"units": [2.0] * 40, "flag": ["yes"] * 40}), reference)
    assert below.feature("units").psi == pytest.approx(units.psi)  # a bin below the minimum


def test_extra_columns_only_are_told_to_be_left_out(churn) -> None:
    reference, current = churn
    with pytest.raises(DriftInputError, match=r"extra churn_score \(in the current data, not in "
                                              r"the reference\)\. Leave the extra columns out"):
        compute_drift(current.assign(churn_score=0.5), reference)


def test_a_report_on_a_handful_of_rows_says_its_bands_are_noise(churn) -> None:
    reference, current = churn
    report = compute_drift(current.iloc[:12], reference)
    assert report.drifted  # ten bins' shares of 12 rows: a large PSI from noise alone
    assert ("few rows (current 12; fewer than 100 a side): PSI and the bands mostly measure "
            "sampling noise, read the p-values instead") in report.notes
    assert not any("few rows" in n for n in compute_drift(current, reference).notes)
