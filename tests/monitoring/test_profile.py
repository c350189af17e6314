"""Reference profiles: exact counts, the JSON round trip (the same drift read back), the size
of a 100-column profile, and what a profile keeps of the model's predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.monitoring.drift import DriftInputError, compute_drift
from jupyter_mlops.monitoring.profile import (
    MAX_CATEGORIES,
    SEED,
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
    sample_rows,
)


@pytest.fixture(scope="module")
def training() -> tuple[pd.DataFrame, np.ndarray]:
    """A loan book's training frame and a classifier's predict_proba on it."""
    rng = np.random.default_rng(11)
    n = 30_000
    frame = pd.DataFrame({
        "Income": rng.lognormal(10, 0.5, n),
        "loan_term": rng.choice([12, 24, 36, 60], n),
        "Region": pd.array(rng.choice([f"region-{i:02d}" for i in range(45)], n), dtype="str"),
        "has_guarantor": rng.random(n) < 0.2,
    })
    frame.loc[frame.index[::40], "Income"] = np.nan
    score = 1 / (1 + np.exp(-(np.log(frame["Income"].fillna(22_000)) - 10) * 3))
    return frame, np.column_stack([1 - score, score])


def test_counts_are_exact_and_quantiles_sampled(training) -> None:
    frame, proba = training
    profile = build_profile(frame, proba, sample=2_000)
    income = profile.columns["Income"]
    assert isinstance(income, NumericProfile)
    assert profile.rows == 30_000 and income.missing == 750 and income.missing_rate == 0.025
    values = frame["Income"].dropna().to_numpy()
    recount = np.bincount(np.searchsorted(income.cuts, values, "left"),
                          minlength=len(income.cuts) + 1)
    assert list(income.counts) == recount.tolist()
    sampled = frame["Income"].to_numpy()[sample_rows(30_000, 2_000, SEED)]
    assert income.sample == np.count_nonzero(~np.isnan(sampled)) < 2_000
    term = profile.columns["loan_term"]  # four values: a bin each, one below the minimum
    assert isinstance(term, NumericProfile) and term.cuts.tolist()[1:] == [12, 24, 36, 60]
    region = profile.columns["Region"]
    assert isinstance(region, CategoricalProfile)
    assert len(region.categories) == MAX_CATEGORIES and sum(region.counts) == 30_000
    assert region.labels[-2:] == ("(other)", "(missing)")
    assert isinstance(profile.columns["has_guarantor"], CategoricalProfile)
    assert isinstance(profile.predictions, NumericProfile)  # the positive class's probability
    assert income.scores is not None and len(income.scores) == len(income.cuts) + 2
    assert income.scores[0] < income.scores[-2]  # the model scores high incomes higher


def test_json_round_trip_gives_the_same_drift(training) -> None:
    frame, proba = training
    profile = build_profile(frame, proba)
    again = Profile.from_json(profile.to_json())
    assert again == profile
    later = frame.sample(5_000, random_state=1).assign(Income=lambda f: f["Income"] * 1.5)
    first = compute_drift(later, profile, predictions=proba[:5_000])
    assert compute_drift(later, again, predictions=proba[:5_000]) == first
    assert first.feature("Income").band == "significant"


def test_a_hundred_columns_fit_in_100_kb() -> None:
    rng = np.random.default_rng(5)
    numeric = pd.DataFrame(rng.normal(size=(5_000, 100)) * 1e3,
                           columns=[f"sensor_reading_{i:03d}" for i in range(100)])
    size = len(build_profile(numeric, rng.random(5_000)).to_json().encode())
    assert size <= 100_000, size
    labels = [f"merchant-category-{i:03d}" for i in range(60)]
    mixed = numeric.iloc[:, :70].assign(**{
        f"category_{i:02d}": rng.choice(labels, 5_000) for i in range(30)})
    size = len(build_profile(mixed, rng.random(5_000)).to_json().encode())
    assert size <= 100_000, size


def test_datetime_timedelta_and_unsupported_columns() -> None:
    """Datetimes (tz-aware too) and timedeltas are profiled in seconds and named so in the
    report; a dict column and a complex one are skipped, named with their dtype."""
    rng = np.random.default_rng(2)
    n = 3_000

    def events(shift_days: int) -> pd.DataFrame:
        start = pd.Timestamp("2026-03-01", tz="Europe/Paris") + pd.Timedelta(days=shift_days)
        frame = pd.DataFrame({
            "opened_at": start + pd.to_timedelta(rng.integers(0, 90 * 86_400, n), unit="s"),
            "handling_time": pd.to_timedelta(rng.gamma(2, 600, n), unit="s"),
            "context": [{"channel": "web"}] * n,
            "signal": rng.normal(size=n) + 1j,
            "priority": rng.choice(["low", "high"], n),
        })
        frame.loc[frame.index[::100], "opened_at"] = pd.NaT
        return frame

    profile = build_profile(events(0))
    assert profile.skipped == {"context": "object holding dict", "signal": "complex128"}
    assert [(n, c.kind) for n, c in profile.columns.items()] == [
        ("opened_at", "datetime"), ("handling_time", "timedelta"), ("priority", "categorical")]
    opened = profile.columns["opened_at"]
    assert opened.missing == 30 and opened.labels[0].startswith("≤ 2026-03-")
    assert profile.warnings[0].startswith("column 'context' (object holding dict) left out")
    assert Profile.from_json(profile.to_json()) == profile

    as_text = events(0).assign(opened_at=lambda f: f["opened_at"].astype(str))  # from a CSV
    with pytest.raises(DriftInputError, match=r"opened_at \(datetime, datetime64\[\w+, "
                                              r"Europe/Paris\] in the reference; categorical, "
                                              r"\w+ now, read as text\? convert it with "
                                              r"pd.to_datetime\)"):
        compute_drift(as_text, profile)
    with pytest.raises(DriftInputError, match=r"no column drift is measured on \(numeric, "
                                              r".*\): context \(object holding dict\)"):
        build_profile(events(0)[["context"]])
    for reference in (profile, events(0)):
        report = compute_drift(events(45), reference)
        assert report.feature("opened_at").band == "significant"
        assert report.feature("handling_time").band == "stable"
        assert dict(report.skipped) == {"context": "object holding dict", "signal": "complex128"}
        assert "datetime columns compared as epoch seconds: opened_at" in report.notes
        assert "timedelta columns compared as seconds: handling_time" in report.notes
        assert any(n.startswith("not compared: context (object holding dict), signal "
                                "(complex128)") for n in report.notes)


def test_predictions_on_a_sample_of_the_rows(training) -> None:
    frame, proba = training
    rows = sample_rows(len(frame), 10_000, SEED)
    profile = build_profile(frame, proba[rows], predicted_rows=rows)
    assert profile.prediction_rows == 10_000 and sum(profile.predictions.counts) == 10_000
    assert sum(profile.columns["Income"].counts) + 750 == 30_000  # counts still every row
    # the model predicting while the columns are profiled (a capture) gives the same profile
    assert build_profile(frame, predict=lambda: proba[rows], predicted_rows=rows) == profile
    unscored = build_profile(frame, predict=lambda: None, predicted_rows=rows)
    assert unscored.predictions is None and unscored.prediction_rows is None
    assert unscored.columns["Income"].scores is None
    whole = build_profile(frame, proba)
    assert whole.prediction_rows == 30_000
    assert np.allclose(profile.columns["Income"].scores, whole.columns["Income"].scores,
                       atol=0.05)
    report = compute_drift(frame.iloc[:5_000], Profile.from_json(profile.to_json()),
                           predictions=proba[:5_000])
    assert report.prediction is not None and report.prediction.band == "stable"
    assert ("the reference's predictions come from a seeded sample of 10,000 of its 30,000 "
            "rows") in report.notes


def test_capture_takes_the_reference_named_else_x_train_else_x() -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    from jupyter_mlops.monitoring.reference import capture

    rng = np.random.default_rng(4)
    X = pd.DataFrame({"basket_value": rng.gamma(2, 30, 400), "visits": rng.poisson(3, 400)})
    model = GradientBoostingClassifier(n_estimators=5).fit(X, X["visits"] > 3)
    assert Profile.from_json(capture(model, {"X": X})).rows == 400
    both = {"X": X, "X_train": X.iloc[:300], "holdout": X.iloc[:100]}
    assert Profile.from_json(capture(model, both)).rows == 300
    named = Profile.from_json(capture(model, both, "holdout"))
    assert named.rows == 100 and named.prediction_rows == 100
    assert capture(model, {"features": X}) is None  # nothing to profile: no profile, no error


def test_numeric_columns_profiled_together_as_one_by_one_with_numpy() -> None:
    """The grouped computation (samples sorted in one array, counts on the threads) gives what
    a plain per-column numpy/pandas computation gives, on floats with NaNs and infinities,
    ints, a constant column, a column with no value (left out) and NaN predictions."""
    rng = np.random.default_rng(5)
    n = 20_000
    frame = pd.DataFrame({
        "Balance": np.where(rng.random(n) < 0.1, np.nan, rng.normal(100, 30, n)),
        "age": rng.integers(18, 90, n),
        "Tenure_months": rng.integers(0, 5, n).astype(np.uint8),
        "flat_fee": np.full(n, 2.5),
        "Spikes": np.where(rng.random(n) < 0.01, np.inf, rng.exponential(1.0, n)),
        "never_filled": np.full(n, np.nan),
        "Segment": rng.choice(["retail", "sme", "corporate"], n),
    })
    scores = np.where(rng.random(n) < 0.05, np.nan, rng.random(n))
    profile = build_profile(frame, scores, sample=4_000)
    rows = sample_rows(n, 4_000, SEED)
    present = ~np.isnan(scores[rows])
    assert set(profile.skipped) == {"never_filled"}
    for name in ("Balance", "age", "Tenure_months", "flat_fee", "Spikes"):
        column = profile.columns[name]
        assert isinstance(column, NumericProfile), name
        values = frame[name].to_numpy(dtype=float)
        sampled = values[rows]
        finite = sampled[np.isfinite(sampled)]
        expected = np.quantile(finite, np.linspace(0, 1, 101)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(column.quantiles, np.float32), expected,
                                   rtol=1e-6, err_msg=name)
        assert column.sample == np.count_nonzero(~np.isnan(sampled))
        edges = np.concatenate([[-np.inf], column.cuts, [np.inf]])
        counts = [np.count_nonzero((values > low) & (values <= high))
                  for low, high in zip(edges, edges[1:], strict=False)]
        assert list(column.counts) == counts, name
        assert column.missing == int(frame[name].isna().sum())
        bins = np.searchsorted(column.cuts, sampled, "left")
        bins[np.isnan(sampled)] = len(column.cuts) + 1
        means = pd.Series(scores[rows][present]).groupby(bins[present]).mean()
        assert column.scores is not None
        for b, mean in means.items():
            assert column.scores[int(b)] == pytest.approx(float(mean), rel=1e-6), (name, b)
    assert profile.columns["flat_fee"].counts == (0, n, 0)  # a cut just below the constant
