"""Drift of new data against a reference (a profile or a frame): a `DriftReport`.

Per feature:
- PSI, the population stability index, sum((c - r) * ln(c / r)) over the shares r (reference)
  and c (current) of rows per bin: a numeric feature's bins are the reference's decile bins,
  a categorical feature's its categories and "other"; missing values are one more bin. A share
  of 0 is raised to EPSILON (0.0001, a hundredth of a percent of the rows) on either side before
  the logarithm: without it one empty bin would make PSI infinite, and a bin empty on both
  sides adds nothing, as it should.
- CSI, the characteristic stability index. Machine-learning write-ups (e.g. P. Sarma, "PSI and
  CSI in Machine Learning", 2020) give CSI the PSI formula applied to an input feature; that
  number is `psi` here for every feature. `csi` is the index of the credit-scoring literature
  where the name comes from (N. Siddiqi, "Credit Risk Scorecards", Wiley 2006, ch. 9,
  "characteristic analysis"): sum((c - r) * s) over the same bins, s being the score the model
  gives the bin, here the mean prediction of the reference rows in it. It says how far the
  feature's shift alone moves the average prediction, in the prediction's units; it needs the
  model's predictions on the reference data (None without them).
- a two-sample test: Kolmogorov-Smirnov for a numeric feature, chi-square (a 2 x k contingency
  table of the same bins, `scipy.stats.chi2_contingency`) for a categorical one.
- the PSI band: stable, moderate or significant (`Bands`).
Prediction drift is the same computation on the model's predictions.
Datetime and timedelta features are compared as numbers of seconds (profile.py), said in the
notes; a column of a dtype drift is not measured on is skipped and named there, never the cause
of a failed report (`DriftReport.skipped`).

KS equals `scipy.stats.ks_2samp` on the data it is computed on. Below `ks_2samp`'s own limit for
exact p-values (10,000 values a side) it is ks_2samp; above it the statistic is computed here,
vectorised on sorted arrays as ks_2samp does it, and the p-value from `scipy.stats.kstwo` as
ks_2samp's asymptotic method takes it. Above `KS_SAMPLE` rows, KS runs on a seeded sample of
that many rows a side (sorting all of a million-row column costs more than the whole report's
budget); PSI, CSI and chi-square always count every row. Against a stored profile, KS reads the
reference distribution from the profile's 101 quantiles and its p-value counts the rows they
were estimated from: an approximation, flagged on the feature and in the notes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from jupyter_mlops.monitoring.profile import (
    CATEGORICAL,
    IN_SECONDS,
    MEASURED,
    NUMERIC,
    SEED,
    CategoricalProfile,
    ColumnProfile,
    DriftInputError,
    NumericProfile,
    Profile,
    bin_counts,
    categorical_profile,
    category_counts,
    check_frame,
    in_threads,
    kind_of,
    numeric_profile,
    numeric_values,
    prediction_series,
    profile_column,
    sample_rows,
    take,
)
from jupyter_mlops.monitoring.profile import UnsupportedColumn as _Unsupported
from jupyter_mlops.steps.mlflow_vocabulary import MAX_PSI_METRIC

__all__ = ["EPSILON", "KS_SAMPLE", "Bands", "DriftInputError", "DriftReport", "FeatureDrift",
           "compute_drift", "csi", "ks_pvalue", "ks_statistic", "psi"]

EPSILON = 1e-4  # the share an empty bin counts as in PSI
KS_SAMPLE = 20_000  # rows a side above which KS runs on a seeded sample
FEW_ROWS = 100  # below this many rows a side, ten bins' shares are mostly sampling noise
EXACT_KS = 10_000  # ks_2samp's MAX_AUTO_N: up to this many values a side, its exact p-values
STABLE, MODERATE, SIGNIFICANT = "stable", "moderate", "significant"
_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")  # what MLflow refuses in a metric's name


@dataclass(frozen=True)
class Bands:
    """PSI bands: below `moderate` stable, above `significant` significant, moderate between."""

    moderate: float = 0.1
    significant: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.moderate <= self.significant:
            raise DriftInputError(f"PSI bands need 0 <= moderate <= significant, got "
                                  f"moderate={self.moderate}, significant={self.significant}")

    def of(self, value: float) -> str:
        if value > self.significant:
            return SIGNIFICANT
        return MODERATE if value >= self.moderate else STABLE


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's (or the predictions') drift, with the shares per bin to plot."""

    name: str
    kind: str  # "numeric" or "categorical"
    psi: float
    csi: float | None
    test: str  # "ks" or "chi2"
    statistic: float
    p_value: float
    band: str
    labels: tuple[str, ...]  # a label per bin, "(missing)" last
    reference: tuple[float, ...]  # share of the reference's rows per bin
    current: tuple[float, ...]
    approximate: bool = False  # KS against a profile's quantiles, not the reference's rows


@dataclass(frozen=True)
class DriftReport:
    """Drift per feature and of the predictions, the bands used, and how it was computed."""

    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    bands: Bands
    reference_rows: int
    current_rows: int
    notes: tuple[str, ...] = field(default=())
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (column, dtype) not compared

    @property
    def max_psi(self) -> float:
        """The largest PSI, of the features and the predictions."""
        return max(d.psi for d in self._all())

    @property
    def drifted(self) -> bool:
        """Whether any feature's or the predictions' PSI is in the significant band."""
        return any(d.band == SIGNIFICANT for d in self._all())

    def feature(self, name: str) -> FeatureDrift:
        for drift in self.features:
            if drift.name == name:
                return drift
        raise KeyError(name)

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: psi.<f>, csi.<f>, ks_p.<f> or chi2_p.<f>, and drift.* totals."""
        values: dict[str, float] = {}
        for drift in self.features:
            key = _METRIC_UNSAFE.sub("_", drift.name)
            values[f"psi.{key}"] = drift.psi
            if drift.csi is not None:
                values[f"csi.{key}"] = drift.csi
            values[f"{drift.test}_p.{key}"] = drift.p_value
        if self.prediction is not None:
            values["drift.prediction_psi"] = self.prediction.psi
            values[f"drift.prediction_{self.prediction.test}_p"] = self.prediction.p_value
        values[MAX_PSI_METRIC] = self.max_psi
        values["drift.drifted_features"] = float(sum(d.band == SIGNIFICANT
                                                     for d in self.features))
        return values

    def to_frame(self) -> pd.DataFrame:
        """A row per feature (then the predictions), largest PSI first."""
        rows = [{"feature": d.name, "kind": d.kind, "psi": d.psi, "csi": d.csi, "band": d.band,
                 "test": d.test, "statistic": d.statistic, "p_value": d.p_value}
                for d in self._all()]
        return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)

    def _all(self) -> Iterable[FeatureDrift]:
        yield from self.features
        if self.prediction is not None:
            yield self.prediction


def psi(reference: ArrayLike, current: ArrayLike, epsilon: float = EPSILON) -> float:
    """PSI of two histograms over the same bins (counts or shares)."""
    r, c = _shares(reference), _shares(current)
    r, c = np.maximum(r, epsilon), np.maximum(c, epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def csi(reference: ArrayLike, current: ArrayLike, scores: ArrayLike) -> float:
    """CSI (Siddiqi's characteristic analysis) of two histograms and a score per bin."""
    return float(np.sum((_shares(current) - _shares(reference)) * np.asarray(scores)))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample KS statistic of sorted, NaN-free arrays, as `ks_2samp` computes it: both
    empirical CDFs at every value of either array (rows <= the value, ties included), the
    largest difference either way. Within its own sorted array a value's count is read off
    the runs of equal values instead of searched for."""
    cdf1 = np.concatenate([_at_or_below(a), np.searchsorted(a, b, "right")]) / len(a)
    cdf2 = np.concatenate([np.searchsorted(b, a, "right"), _at_or_below(b)]) / len(b)
    differences = cdf1 - cdf2
    return float(max(np.clip(-differences.min(), 0, 1), differences.max()))


def _at_or_below(ordered: np.ndarray) -> np.ndarray:
    """For each value of a sorted array, how many of its values are <= it."""
    ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True)) + 1
    return np.repeat(ends, np.diff(ends, prepend=0))


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Two-sided p-value of a KS statistic by ks_2samp's asymptotic method."""
    from scipy import stats

    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(m * n / (m + n))), 0, 1))


def compute_drift(current: pd.DataFrame, reference: Profile | pd.DataFrame,
                  predictions: Any = None, bands: Bands | None = None, *,
                  reference_predictions: Any = None, columns: Sequence[str] | None = None,
                  ks_sample: int = KS_SAMPLE, seed: int = SEED) -> DriftReport:
    """Drift of `current` (and of the model's `predictions` on it) against `reference`: a
    stored `Profile` or the reference frame itself (with `reference_predictions`, the model's
    predictions on it). `columns` limits the comparison to those features."""
    bands = bands or Bands()
    check_frame(current, "current")
    source = _Reference.of(reference, reference_predictions, seed, ks_sample)
    names = _matched_columns(current, source, columns)
    rows = sample_rows(len(current), ks_sample, seed)
    outcomes = in_threads(lambda name: _attempt(name, _get(current, name), source, rows, bands),
                          names)
    source.skipped.update((o.column, o.dtype) for o in outcomes if isinstance(o, _Unsupported))
    faults = [str(o) for o in outcomes
              if isinstance(o, DriftInputError) and not isinstance(o, _Unsupported)]
    if faults:
        raise DriftInputError("; ".join(faults))
    features = [o for o in outcomes if isinstance(o, FeatureDrift)]
    if not features:
        raise DriftInputError(f"no column to compare: {MEASURED}, and "
                              f"{_listed(source.skipped)} are not")
    prediction = _prediction_drift(predictions, current, source, rows, bands)
    return DriftReport(tuple(features), prediction, bands, source.rows, len(current),
                       _notes(source, rows, ks_sample, seed, features, predictions, len(current),
                              prediction), tuple(source.skipped.items()))


class _Reference:
    """The reference as the comparison reads it: a profile per column, and for a frame also
    the sorted KS sample of each numeric column and the rows that sample came from."""

    def __init__(self, rows: int, frame: pd.DataFrame | None, profile: Profile | None,
                 predictions: pd.Series | None, sampled: np.ndarray | None) -> None:
        self.rows, self.frame, self.profile = rows, frame, profile
        self.predictions, self.sampled = predictions, sampled
        self.skipped: dict[str, str] = dict(profile.skipped) if profile is not None else {}
        if frame is not None:
            self.skipped.update(_unsupported(frame))
        self._scores = None
        if predictions is not None and kind_of(predictions, "predictions") == NUMERIC:
            self._scores = take(numeric_values(predictions), sampled)

    @classmethod
    def of(cls, reference: Any, predictions: Any, seed: int, ks_sample: int) -> _Reference:
        if isinstance(reference, Profile):
            return cls(reference.rows, None, reference, None, None)
        check_frame(reference, "reference")
        scores = prediction_series(predictions, len(reference), "reference")
        return cls(len(reference), reference, None, scores,
                   sample_rows(len(reference), ks_sample, seed))

    @property
    def names(self) -> list[str]:
        """The columns to compare (not those of an unsupported dtype)."""
        if self.profile is not None:
            return list(self.profile.columns)
        assert self.frame is not None
        return [str(c) for c in self.frame.columns if str(c) not in self.skipped]

    def kind(self, name: str) -> tuple[str, str]:
        """The column's kind and dtype."""
        if self.profile is not None:
            column = self.profile.columns[name]
            return column.kind, column.dtype
        series = self._series(name)
        return kind_of(series, name), str(series.dtype)

    def column(self, name: str) -> tuple[ColumnProfile, np.ndarray | None]:
        """The column's profile and, for a numeric column of a frame, its sorted KS sample."""
        if self.profile is not None:
            return self.profile.columns[name], None
        series = self._series(name)
        kind = kind_of(series, name)
        if kind == CATEGORICAL:
            return categorical_profile(series, name, self.sampled, self._scores), None
        values = numeric_values(series)
        return numeric_profile(values, name, str(series.dtype), self.sampled,
                               self._scores, kind)

    def prediction_column(self) -> tuple[ColumnProfile | None, np.ndarray | None]:
        if self.profile is not None:
            return self.profile.predictions, None
        if self.predictions is None:
            return None, None
        if kind_of(self.predictions, "predictions") == CATEGORICAL:
            return profile_column(self.predictions, "predictions", self.sampled, None), None
        values = numeric_values(self.predictions)
        return numeric_profile(values, "predictions", str(self.predictions.dtype),
                               self.sampled, None)

    def _series(self, name: str) -> pd.Series:
        assert self.frame is not None
        return _get(self.frame, name)


def _unsupported(frame: pd.DataFrame) -> dict[str, str]:
    """The frame's columns of a dtype drift is not measured on, with their dtypes."""
    found = {}
    for label, series in frame.items():
        try:
            kind_of(series, str(label))
        except _Unsupported as skipped:
            found[skipped.column] = skipped.dtype
    return found


def _listed(columns: dict[str, str]) -> str:
    return ", ".join(f"{name} ({dtype})" for name, dtype in columns.items())


def _matched_columns(current: pd.DataFrame, source: _Reference,
                     columns: Sequence[str] | None) -> list[str]:
    """The features to compare, or DriftInputError naming missing, extra and retyped ones."""
    reference, present = source.names, [str(c) for c in current.columns]
    expected = reference if columns is None else [str(c) for c in columns]
    if not expected:
        raise DriftInputError("no columns to compare")
    missing = [c for c in expected if c not in present]
    extra = [c for c in (present if columns is None else expected)
             if c not in reference and c not in source.skipped]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)} (in the reference, not in the current data)"]
                 if missing else [])
        if extra:
            parts.append(f"extra {', '.join(extra)} (in the current data, not in the reference)")
        # drift(), %mlops drift and the CLI take no column list: the fix is in the data
        hint = " Leave the extra columns out of the current data." if extra and not missing else ""
        raise DriftInputError("the current data's columns differ from the reference's: "
                              + "; ".join(parts) + "." + hint)
    retyped = []
    for name in expected:
        kind, dtype = source.kind(name)
        now = _kind_now(_get(current, name), name)
        if not now.startswith(f"{kind}, "):
            parse = (f", read as text? convert it with pd.to_{kind}"
                     if kind in IN_SECONDS and now.startswith(CATEGORICAL) else "")
            retyped.append(f"{name} ({kind}, {dtype} in the reference; {now} now{parse})")
    if retyped:
        raise DriftInputError(f"changed dtypes: {'; '.join(retyped)}")
    return expected


def _kind_now(series: pd.Series, name: str) -> str:
    """The current column's kind and dtype, as the changed-dtype message says them."""
    try:
        return f"{kind_of(series, name)}, {series.dtype}"
    except _Unsupported as error:
        return f"unsupported, {error.dtype}"


def _get(frame: pd.DataFrame, name: str) -> pd.Series:
    """The column whose name reads `name` (column labels need not be strings)."""
    labels = [str(c) for c in frame.columns]
    return frame[frame.columns[labels.index(name)]]


def _attempt(name: str, series: pd.Series, source: _Reference, rows: np.ndarray | None,
             bands: Bands) -> FeatureDrift | DriftInputError:
    """The feature's drift, or the fault that prevents it (all faults are reported at once);
    an UnsupportedColumn when the reference's column cannot be profiled (skipped)."""
    try:
        return _compare(name, series, source, rows, bands)
    except DriftInputError as error:
        return error


def _compare(name: str, series: pd.Series, source: _Reference, rows: np.ndarray | None,
             bands: Bands) -> FeatureDrift:
    reference, ordered = source.column(name)
    if isinstance(reference, NumericProfile):
        return _numeric(name, series, reference, ordered, rows, bands)
    return _categorical(name, series, reference, bands)


def _numeric(name: str, series: pd.Series, reference: NumericProfile,
             ordered: np.ndarray | None, rows: np.ndarray | None, bands: Bands) -> FeatureDrift:
    values = numeric_values(series)
    counts, missing = bin_counts(values, reference.cuts)
    if missing == len(values):
        raise DriftInputError(f"column {name!r}: every value in the current data is missing")
    sample = np.sort(take(values, rows))
    sample = sample[:np.searchsorted(sample, np.nan)]
    if ordered is None:  # against a profile's quantiles
        statistic = _ks_against_quantiles(np.asarray(reference.quantiles), sample)
        p_value = ks_pvalue(statistic, reference.sample, len(sample))
    elif max(len(ordered), len(sample)) <= EXACT_KS:
        from scipy import stats

        result = stats.ks_2samp(ordered, sample)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        statistic = ks_statistic(ordered, sample)
        p_value = ks_pvalue(statistic, len(ordered), len(sample))
    return _feature(name, reference, np.append(counts, missing), "ks", statistic, p_value,
                    bands, approximate=ordered is None)


def _categorical(name: str, series: pd.Series, reference: CategoricalProfile,
                 bands: Bands) -> FeatureDrift:
    try:
        found, missing = category_counts(series, name)
    except _Unsupported as error:  # the reference's values were counted: a changed dtype
        raise DriftInputError(f"column {name!r}: the current data holds {error.dtype} values, "
                              "the reference categories") from None
    if not found:
        raise DriftInputError(f"column {name!r}: every value in the current data is missing")
    kept = [found.get(label, 0) for label in reference.categories]
    counts = np.array([*kept, sum(found.values()) - sum(kept), missing])
    statistic, p_value = _chi_square(np.append(reference.counts, reference.missing), counts)
    return _feature(name, reference, counts, "chi2", statistic, p_value, bands)


def _chi_square(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity on the bins either side has rows in; one such bin
    means both sides are all in it: no difference (statistic 0, p-value 1)."""
    from scipy import stats

    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def _feature(name: str, reference: ColumnProfile, counts: np.ndarray, test: str,
             statistic: float, p_value: float, bands: Bands,
             approximate: bool = False) -> FeatureDrift:
    """The drift of one feature from its reference and current rows per bin (missing last)."""
    before = np.append(reference.counts, reference.missing)
    index = psi(before, counts)
    characteristic = None if reference.scores is None else csi(before, counts, reference.scores)
    if not np.isfinite([index, statistic, p_value, characteristic or 0.0]).all():
        raise DriftInputError(f"column {name!r}: too few values to compare ({int(counts.sum())} "
                              f"current, {int(before.sum())} reference rows)")
    return FeatureDrift(
        name=name, kind=reference.kind, psi=index, csi=characteristic, test=test,
        statistic=statistic, p_value=p_value, band=bands.of(index), labels=reference.labels,
        reference=tuple(_shares(before).tolist()), current=tuple(_shares(counts).tolist()),
        approximate=approximate)


def _prediction_drift(predictions: Any, current: pd.DataFrame, source: _Reference,
                      rows: np.ndarray | None, bands: Bands) -> FeatureDrift | None:
    scores = prediction_series(predictions, len(current), "current")
    if scores is None:
        return None
    reference, ordered = source.prediction_column()
    if reference is None:
        return None
    now = kind_of(scores, "predictions")
    if now != reference.kind:
        raise DriftInputError(f"the predictions are {now} now, {reference.kind} in the reference")
    if isinstance(reference, NumericProfile):
        return _numeric("prediction", scores, reference, ordered, rows, bands)
    return _categorical("prediction", scores, reference, bands)


def _ks_against_quantiles(quantiles: np.ndarray, sample: np.ndarray) -> float:
    """KS statistic of a sorted sample against the CDF the quantiles at LEVELS describe: linear
    between distinct quantiles, with a jump where several levels share a value (a point mass).
    Both CDFs are compared at every sample value and quantile, from the right and the left."""
    levels = np.linspace(0.0, 1.0, len(quantiles))
    knots, first = np.unique(quantiles, return_index=True)
    last = len(quantiles) - 1 - np.unique(quantiles[::-1], return_index=True)[1]
    below, at = levels[first], levels[last]  # CDF just left of a knot, and at it
    points = np.concatenate([sample, knots])
    j = np.searchsorted(knots, points, "right") - 1  # the knot at or left of each point
    inside = (j >= 0) & (j < len(knots) - 1)
    k = np.clip(j, 0, len(knots) - 2) if len(knots) > 1 else np.zeros_like(j)
    width = knots[np.minimum(k + 1, len(knots) - 1)] - knots[k]
    slope = np.divide(below[np.minimum(k + 1, len(knots) - 1)] - at[k], width,
                      out=np.zeros_like(width), where=width > 0)
    between = at[k] + slope * (points - knots[k])
    exact = (j >= 0) & (knots[np.maximum(j, 0)] == points)
    right = np.where(j < 0, 0.0, np.where(exact, at[np.maximum(j, 0)],
                                          np.where(inside, between, 1.0)))
    left = np.where(exact, below[np.maximum(j, 0)], right)
    n = len(sample)
    ecdf_right = np.searchsorted(sample, points, "right") / n
    ecdf_left = np.searchsorted(sample, points, "left") / n
    return float(max(np.abs(ecdf_right - right).max(), np.abs(ecdf_left - left).max()))


def _shares(counts: ArrayLike) -> np.ndarray:
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    return values / total if total else values


def _notes(source: _Reference, rows: np.ndarray | None, ks_sample: int, seed: int,
           features: list[FeatureDrift], predictions: Any, current_rows: int,
           prediction: FeatureDrift | None) -> tuple[str, ...]:
    """How the report was computed, where it is not what a reader would assume."""
    notes = []
    if rows is not None or source.sampled is not None:
        sides = [side for side, sampled in (("current", rows), ("reference", source.sampled))
                 if sampled is not None]
        notes.append(f"KS on a seeded sample of {ks_sample:,} rows per side (seed {seed}) of "
                     f"the {' and the '.join(sides)} data; PSI, CSI and chi-square count every "
                     "row")
    if source.profile is not None and any(f.approximate for f in features):
        notes.append("KS against the stored profile: the reference distribution is read from "
                     "its 101 quantiles per column (estimated from a sample), so the numeric "
                     "features' KS statistics and p-values are approximate")
    if features and all(f.csi is None for f in features):
        notes.append("CSI needs the model's predictions on the reference data: "
                     + ("the profile holds none" if source.profile is not None
                        else "give reference_predictions="))
    few = [f"{side} {count:,}" for side, count in (("current", current_rows),
                                                   ("reference", source.rows))
           if count < FEW_ROWS]
    if few:
        notes.append(f"few rows ({', '.join(few)}; fewer than {FEW_ROWS} a side): PSI and the "
                     "bands mostly measure sampling noise, read the p-values instead")
    if predictions is not None and prediction is None:
        notes.append("no prediction drift: the reference has no predictions to compare with")
    return tuple(notes) + _column_notes(source, features, prediction)


def _column_notes(source: _Reference, features: list[FeatureDrift],
                  prediction: FeatureDrift | None) -> tuple[str, ...]:
    """Columns compared as seconds, columns skipped, predictions profiled on a sample."""
    notes = []
    for kind, unit in IN_SECONDS.items():
        named = [f.name for f in features if f.kind == kind]
        if named:
            notes.append(f"{kind} columns compared as {unit}: {', '.join(named)}")
    if source.skipped:
        notes.append(f"not compared: {_listed(source.skipped)}; {MEASURED}")
    profile = source.profile
    if (prediction is not None and profile is not None and profile.prediction_rows is not None
            and profile.prediction_rows < profile.rows):
        notes.append(f"the reference's predictions come from a seeded sample of "
                     f"{profile.prediction_rows:,} of its {profile.rows:,} rows")
    return tuple(notes)
