"""Reference profiles: exact counts, the JSON round trip (the same drift read back), the size
of a 100-column profile, and what a profile keeps of the model's predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.monitoring.drift import compute_drift
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
