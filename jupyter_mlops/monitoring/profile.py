"""Reference profiles: what drift is measured against, small enough to store with a model.

A `Profile` summarises a training frame column by column. A numeric column keeps 101 quantiles
(levels 0, 0.01, ..., 1) and its row counts in the PSI bins, which are cut at its deciles; a
categorical column keeps the counts of its `MAX_CATEGORIES` most frequent categories and an
"other" bucket; every column keeps its missing count. When the model's predictions on the frame
are given, the profile also holds their distribution and, per bin of each feature, the mean
prediction of the rows in it (CSI needs it, see drift.py). Predictions may cover a seeded sample
of the rows only (`predicted_rows`; reference.py's capture predicts on at most PREDICT_ROWS):
the profile says from how many rows they come (`prediction_rows`).

Datetime and timedelta columns are profiled as numbers, in seconds (since the epoch, UTC, for a
datetime; a float32 quantile of an epoch is exact to about two minutes, fine for ten bins), and
keep their kind, so new data of another kind is a changed dtype and the report names them. A
column of any other dtype (complex numbers, an object column of dicts or lists), or one with no
value in the reference (all missing), is skipped, named in `Profile.skipped` with its dtype and
why, and never costs the rest of the profile.

The bin counts are exact. The quantiles, which place the cuts and stand in for the reference
distribution in KS, come from a seeded sample of `SAMPLE` rows (all rows below that): sorting
every value of a 100,000 x 50 frame would cost ten times the capture's budget. Quantiles are
rounded to float32 before the cuts are taken from them and the counts made, so a profile read
back from JSON bins new data exactly as the one written; 100 columns take well under 100 KB.

Speed (a tracked cell waits for it): numeric columns are profiled in groups, one per thread,
each column sampled, sorted and counted while it is in the cache; the counts, ten comparisons
of every value, are most of the time. Only the mean prediction per bin needs the predictions:
a capture profiles the columns on the threads while the model predicts (`predict`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache, partial
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from jupyter_mlops.errors import MlopsError

FORMAT = "jupyter-mlops/profile@1"
LEVELS = np.linspace(0.0, 1.0, 101)  # the quantile levels kept per numeric column
DECILES = slice(10, 100, 10)  # LEVELS[DECILES] = 0.1, ..., 0.9: where the PSI bins are cut
MAX_CATEGORIES = 30  # categories kept per column, by frequency; the rest count as "other"
SAMPLE = 8_192  # rows the quantiles are estimated from
SEED = 0
WORKERS = min(4, os.cpu_count() or 1)  # threads profiling or comparing columns
BLOCK = 1 << 16  # values compared at a time when counting rows per bin
GROUP = 64  # numeric columns profiled together (their samples: 64 x SAMPLE floats, 4 MB)
CHUNK = 16  # sampled columns binned at a time (16 x SAMPLE floats: 1 MB, in the cache)
T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
OTHER = "(other)"
MISSING = "(missing)"
NUMERIC, DATETIME, TIMEDELTA, CATEGORICAL = "numeric", "datetime", "timedelta", "categorical"
IN_SECONDS = {DATETIME: "epoch seconds", TIMEDELTA: "seconds"}  # how those kinds are measured
SUPPORTED = "numeric, datetime, timedelta and categorical columns"
MEASURED = f"drift is measured on {SUPPORTED} with values"  # why a column is left out
CONTAINERS = (dict, list, set, tuple, np.ndarray)  # object values that are no category


class DriftInputError(MlopsError, ValueError):
    """Data drift cannot be measured on: names the columns at fault and what is wrong."""


class UnsupportedColumn(DriftInputError):
    """A column of a dtype drift is not measured on, or with no value in the reference; a
    profile skips it and says so. `dtype` is what the profile says of it."""

    def __init__(self, column: str, dtype: str, why: str = "") -> None:
        self.column, self.dtype = column, dtype
        super().__init__(f"column {column!r}: {why}" if why else
                         f"column {column!r} has dtype {dtype}: drift is measured on "
                         f"{SUPPORTED}; convert it or leave it out")


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column: quantiles, rows per PSI bin (`cuts`), missing rows, and the mean
    prediction per bin then of the missing rows (`scores`, when predictions were given)."""

    dtype: str
    quantiles: tuple[float, ...]  # at LEVELS, float32 values, of the non-missing rows
    counts: tuple[int, ...]  # rows per bin: (-inf, c1], (c1, c2], ..., (ck, inf)
    missing: int
    sample: int  # non-missing rows the quantiles come from
    scores: tuple[float, ...] | None = None
    kind: str = NUMERIC  # or DATETIME, TIMEDELTA: values in seconds

    @cached_property
    def cuts(self) -> np.ndarray:
        """The PSI bins' inner edges, from the quantiles (cuts_of)."""
        return cuts_of(np.asarray(self.quantiles))

    @property
    def missing_rate(self) -> float:
        return self.missing / max(sum(self.counts) + self.missing, 1)

    @property
    def labels(self) -> tuple[str, ...]:
        """A label per bin, the missing rows' last."""
        ends = [_seconds_label(c, self.kind) for c in self.cuts]
        inner = [f"({lo}, {hi}]" for lo, hi in zip(ends, ends[1:], strict=False)]
        return (f"≤ {ends[0]}", *inner, f"> {ends[-1]}", MISSING)


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical column: rows per kept category then "other", missing rows, and the mean
    prediction per category, of "other" and of the missing rows (when predictions were given)."""

    kind: ClassVar[str] = CATEGORICAL
    dtype: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]  # per category, then "other"
    missing: int
    scores: tuple[float, ...] | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.categories, OTHER, MISSING)

    @property
    def missing_rate(self) -> float:
        return self.missing / max(sum(self.counts) + self.missing, 1)


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    """The reference a model's drift is measured against: its training data, column by column,
    and the model's predictions on it."""

    rows: int
    columns: Mapping[str, ColumnProfile] = field(default_factory=dict)
    predictions: ColumnProfile | None = None
    prediction_rows: int | None = None  # training rows the predictions come from (a sample)
    skipped: Mapping[str, str] = field(default_factory=dict)  # column -> its unsupported dtype

    @property
    def warnings(self) -> list[str]:
        """The columns the profile leaves out, as the user is told when it is captured."""
        return [f"column {name!r} ({dtype}) left out of the reference profile: {MEASURED}"
                for name, dtype in self.skipped.items()]

    def to_json(self) -> str:
        body = {"format": FORMAT, "rows": self.rows,
                "columns": {name: _column_json(c) for name, c in self.columns.items()},
                "predictions": _column_json(self.predictions) if self.predictions else None,
                "prediction_rows": self.prediction_rows, "skipped": dict(self.skipped)}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        try:
            body = json.loads(text)
            if body.get("format") != FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT!r}")
            columns = {name: _column_from(c) for name, c in body["columns"].items()}
            predictions = _column_from(body["predictions"]) if body["predictions"] else None
            predicted = body.get("prediction_rows")
            skipped = {str(k): str(v) for k, v in (body.get("skipped") or {}).items()}
            return cls(int(body["rows"]), columns, predictions,
                       None if predicted is None else int(predicted), skipped)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise DriftInputError(f"not a reference profile: {error}") from error


def build_profile(frame: pd.DataFrame, predictions: Any = None, *,
                  predict: Callable[[], Any] | None = None,
                  predicted_rows: np.ndarray | None = None,
                  sample: int = SAMPLE, seed: int = SEED) -> Profile:
    """The profile of `frame` (a model's training data) and of the model's `predictions` on it
    (scores, one per row; of a two-column `predict_proba`, the second column): on every row,
    or on the rows at the sorted positions `predicted_rows` (a sample of the frame). Instead
    of the predictions, `predict` may give them (or None): it is called on this thread while
    the other threads profile the columns, so that the model predicts meanwhile."""
    check_frame(frame, "reference")
    predicted = len(frame) if predicted_rows is None else len(predicted_rows)
    if predicted and predicted_rows is not None and not (
            0 <= predicted_rows[0] and predicted_rows[-1] < len(frame)):
        raise DriftInputError(f"predicted_rows: sorted positions among the {len(frame)} rows")
    scored = predictions is not None or predict is not None
    # the quantiles' (and CSI's) sample: of the predicted rows when the model predicts
    inner = sample_rows(predicted if scored else len(frame), sample, seed)
    rows = inner if not scored or predicted_rows is None else take(predicted_rows, inner)
    tasks, unsupported = _column_tasks(frame, rows, scored)
    binned, given = alongside(tasks, predict or (lambda: predictions))
    scores = prediction_series(given, predicted, "reference")
    score_sample = None
    if scores is not None and kind_of(scores, "predictions") == NUMERIC:
        score_sample = take(numeric_values(scores), inner)
    found = dict(unsupported)
    found.update(pair for group in binned for pair in group.scored(score_sample))
    profiled = None if scores is None else profile_column(scores, "predictions", inner, None)
    return _assembled(frame, found, profiled, None if scores is None else predicted)


def _assembled(frame: pd.DataFrame, found: Mapping[str, ColumnProfile | UnsupportedColumn],
               predictions: ColumnProfile | None, predicted: int | None) -> Profile:
    """The profile of the columns `found`, in the frame's order, or DriftInputError when no
    column has one."""
    profiles = [found[name] for name in map(str, frame.columns)]
    columns = {name: c for name, c in zip(map(str, frame.columns), profiles, strict=True)
               if not isinstance(c, UnsupportedColumn)}
    skipped = {c.column: c.dtype for c in profiles if isinstance(c, UnsupportedColumn)}
    if not columns:
        raise DriftInputError(f"the reference data has no column drift is measured on ({SUPPORTED}"
                              f"): {', '.join(f'{k} ({v})' for k, v in skipped.items())}")
    return Profile(len(frame), columns, predictions, predicted, skipped)


Profiled = list[tuple[str, "ColumnProfile | UnsupportedColumn"]]


@dataclass(frozen=True)
class _Binned:
    """Column profiles taken before the predictions are known, and the bin of each sampled row
    in them (`index`, a row per profiled column, its bins below `bins`): once the predictions
    are known, the mean prediction per bin (CSI) comes from these."""

    profiles: Profiled
    index: np.ndarray | None = None
    bins: tuple[int, ...] = ()

    def scored(self, scores: np.ndarray | None) -> Profiled:
        """The profiles with the mean of `scores` (the sampled rows' predictions) per bin."""
        if scores is None or self.index is None:
            return self.profiles
        means = iter(_means_per_bin(self.index, self.bins, scores))
        return [(name, c if isinstance(c, UnsupportedColumn) else replace(c, scores=next(means)))
                for name, c in self.profiles]


def _column_tasks(frame: pd.DataFrame, rows: np.ndarray | None, scored: bool,
                  ) -> tuple[list[Callable[[], _Binned]], Profiled]:
    """The profile's work, for the threads: the numeric columns in groups (one per thread, of
    at most GROUP columns), each categorical column on its own; and the unsupported columns."""
    numeric: list[NumericColumn] = []
    tasks: list[Callable[[], _Binned]] = []
    unsupported: Profiled = []
    for label, series in frame.items():
        name = str(label)
        try:
            kind = kind_of(series, name)
        except UnsupportedColumn as skipped:
            unsupported.append((name, skipped))
            continue
        if kind == CATEGORICAL:
            tasks.append(partial(_categorical_or_skip, series, name, rows, scored))
        else:
            numeric.append(NumericColumn(name, str(series.dtype), kind, numeric_values(series)))
    size = min(GROUP, -(-len(numeric) // WORKERS)) or 1
    for start in range(0, len(numeric), size):
        tasks.append(partial(_bin_numeric, numeric[start:start + size], rows, scored))
    return tasks, unsupported


def _categorical_or_skip(series: pd.Series, name: str, rows: np.ndarray | None,
                         scored: bool) -> _Binned:
    try:
        return _bin_categorical(series, name, rows, scored)
    except UnsupportedColumn as skipped:
        return _Binned([(name, skipped)])


def profile_column(series: pd.Series, name: str, rows: np.ndarray | None,
                   scores: np.ndarray | None) -> ColumnProfile:
    """One column's profile; `rows` the sampled rows, `scores` the predictions on them."""
    kind = kind_of(series, name)
    if kind == CATEGORICAL:
        return categorical_profile(series, name, rows, scores)
    values = numeric_values(series)
    return numeric_profile(values, name, str(series.dtype), rows, scores, kind)[0]


class NumericColumn(NamedTuple):
    """A numeric column as profiled: float64 values (seconds for times), NaN where missing."""

    name: str
    dtype: str
    kind: str
    values: np.ndarray


def numeric_profile(values: np.ndarray, name: str, dtype: str, rows: np.ndarray | None,
                    scores: np.ndarray | None,
                    kind: str = NUMERIC) -> tuple[NumericProfile, np.ndarray]:
    """The profile of a numeric column from all its `values` and those of the sampled `rows`
    (aligned with `scores`); also the sample's non-missing values, sorted, which KS reuses."""
    binned, [ordered] = _bin_numeric_sorted([NumericColumn(name, dtype, kind, values)], rows,
                                            scores is not None)
    [(_, profile)] = binned.scored(scores)
    if isinstance(profile, UnsupportedColumn):
        raise profile
    assert isinstance(profile, NumericProfile)
    return profile, ordered


def _bin_numeric(columns: Sequence[NumericColumn], rows: np.ndarray | None,
                 scored: bool) -> _Binned:
    return _bin_numeric_sorted(columns, rows, scored)[0]


def _bin_numeric_sorted(columns: Sequence[NumericColumn], rows: np.ndarray | None,
                        scored: bool) -> tuple[_Binned, list[np.ndarray]]:
    """The profiles of numeric columns (but the scores per bin) and their samples' non-missing
    values, sorted. A column is sampled, sorted and counted in a row, while it is in the cache
    (a quarter less time than each step for all columns in turn); the sampled rows are binned
    for CSI for all columns at once."""
    sampled = np.empty((len(columns), len(columns[0].values) if rows is None else len(rows)))
    profiles: Profiled = []
    presents, kept, cuts = [], [], []
    for i, (column, row) in enumerate(zip(columns, sampled, strict=True)):
        if rows is None:
            row[:] = column.values
        else:  # no temporary array ("clip": the rows are valid, see build_profile)
            np.take(column.values, rows, out=row, mode="clip")
        outcome = _quantiles(column, np.sort(row))
        if isinstance(outcome, UnsupportedColumn):
            profiles.append((column.name, outcome))
            presents.append(row[:0])
            continue
        quantiles, present = outcome
        kept.append(i)
        cuts.append(cuts_of(quantiles))
        counts, missing = bin_counts(column.values, cuts[-1])
        presents.append(present)
        profiles.append((column.name, NumericProfile(
            dtype=column.dtype, quantiles=tuple(quantiles.tolist()), counts=tuple(counts.tolist()),
            missing=missing, sample=len(present), kind=column.kind)))
    if not scored or not kept:
        return _Binned(profiles), presents
    index = _bin_indices(sampled[kept], cuts)
    return _Binned(profiles, index, tuple(len(c) + 2 for c in cuts)), presents


def _quantiles(column: NumericColumn,
               ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray] | UnsupportedColumn:
    """The quantiles, rounded to float32, of a sorted sample, and its non-missing values; or
    why the column has no profile (no finite value)."""
    present = ordered[:np.searchsorted(ordered, np.nan)]  # NaN sorts last
    finite = present[np.searchsorted(present, -np.inf, "right"):np.searchsorted(present, np.inf)]
    if not len(finite):
        what = "missing" if not len(present) else "infinite"
        return UnsupportedColumn(column.name, f"{column.dtype}, every value {what}",
                                 f"every value in the reference is {what}"
                                 + (" (all NaN)" if what == "missing" else ""))
    return quantiles_of(finite).astype(np.float32).astype(np.float64), present


def categorical_profile(series: pd.Series, name: str, rows: np.ndarray | None,
                        scores: np.ndarray | None) -> CategoricalProfile:
    [(_, profile)] = _bin_categorical(series, name, rows, scores is not None).scored(scores)
    assert isinstance(profile, CategoricalProfile)
    return profile


def _bin_categorical(series: pd.Series, name: str, rows: np.ndarray | None,
                     scored: bool) -> _Binned:
    counts, missing = category_counts(series, name)
    if not counts:
        raise UnsupportedColumn(name, f"{series.dtype}, every value missing",
                                "every value in the reference is missing")
    ranked = sorted(counts, key=lambda label: (-counts[label], label))[:MAX_CATEGORIES]
    kept = [counts[label] for label in ranked]
    profile = CategoricalProfile(dtype=str(series.dtype), categories=tuple(ranked),
                                 counts=(*kept, sum(counts.values()) - sum(kept)),
                                 missing=missing)
    if not scored:
        return _Binned([(name, profile)])
    sampled = series if rows is None else series.iloc[rows]
    codes = pd.Index(ranked).get_indexer(sampled.astype(str))
    codes[codes < 0] = len(ranked)  # "other"
    codes[sampled.isna().to_numpy()] = len(ranked) + 1
    return _Binned([(name, profile)], codes[np.newaxis], (len(ranked) + 2,))


# --- shared with drift.py: the one way a column is read, binned and counted ---

def check_frame(frame: Any, side: str) -> None:
    """A non-empty DataFrame with unique column names, or DriftInputError."""
    if not isinstance(frame, pd.DataFrame):
        raise DriftInputError(f"the {side} data is a {type(frame).__name__}, not a DataFrame")
    if frame.empty:
        raise DriftInputError(f"the {side} data is empty ({len(frame)} rows, "
                              f"{len(frame.columns)} columns)")
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise DriftInputError(f"the {side} data has repeated columns: {', '.join(repeated)}")


def in_threads(function: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
    """`function` of each item, in order, on WORKERS threads: columns are independent, and
    numpy's sorts and comparisons release the GIL. The pool is made once (a thread costs
    about 0.1 ms to start, the whole capture of a profile 20-40 ms)."""
    if WORKERS < 2:
        return [function(item) for item in items]
    return list(_threads().map(function, items))


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="mlops-drift")
    return _pool


def alongside(tasks: Sequence[Callable[[], T]], work: Callable[[], Any]) -> tuple[list[T], Any]:
    """The `tasks`' results, run on the threads while `work` runs on this one, and its own."""
    if WORKERS < 2:
        done = work()
        return [task() for task in tasks], done
    pool = _threads()
    started = [pool.submit(task) for task in tasks]
    done = work()
    return [future.result() for future in started], done


def kind_of(series: pd.Series, name: str) -> str:
    """NUMERIC, DATETIME, TIMEDELTA or CATEGORICAL (booleans, strings, objects, pandas
    categoricals); UnsupportedColumn for any other dtype."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":  # the common case, quickly
        return NUMERIC
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return DATETIME
    if pd.api.types.is_timedelta64_dtype(dtype):
        return TIMEDELTA
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return NUMERIC
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_object_dtype(dtype):
        held = _containers(series)
        if held:
            raise UnsupportedColumn(name, f"{dtype} holding {held}")
        return CATEGORICAL
    raise UnsupportedColumn(name, str(dtype))


def _containers(series: pd.Series, look: int = 100) -> str:
    """The types of containers (dicts, lists, ...) among the column's first `look` values:
    their text is no category (each value its own), and they are not numbers."""
    values = series.to_numpy()[:look]  # an object column's values, not copied
    found = {type(v).__name__ for v in values if isinstance(v, CONTAINERS)}
    return ", ".join(sorted(found))


def numeric_values(series: pd.Series) -> np.ndarray:
    """The column as float64, NaN where missing; no copy for a float64 column. Datetimes are
    seconds since the epoch (UTC), timedeltas seconds."""
    if series.dtype == np.float64:
        return series.to_numpy()
    if series.dtype.kind in "mM":
        return _seconds(series)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _seconds(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    array = series.to_numpy()  # datetime64 or timedelta64, in the column's own unit
    unit = np.datetime_data(array.dtype)[0]
    per_second = int(np.array(1, "m8[s]").astype(f"m8[{unit}]").astype(np.int64))
    seconds = array.view(np.int64) / per_second
    seconds[np.isnat(array)] = np.nan
    return seconds


def _seconds_label(value: float, kind: str) -> str:
    """A bin's edge as the user reads the column: a number, a UTC time or a duration."""
    if kind == DATETIME:
        return str(pd.Timestamp(value, unit="s").floor("s")).removesuffix(" 00:00:00")
    if kind == TIMEDELTA:
        return str(pd.Timedelta(seconds=value).floor("s"))
    return f"{value:.4g}"


def sample_rows(n: int, size: int, seed: int) -> np.ndarray | None:
    """Sorted positions of a seeded sample of `size` of `n` rows; None when n <= size (all)."""
    if n <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def take(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return values if rows is None else values[rows]


def quantiles_of(ordered: np.ndarray) -> np.ndarray:
    """Quantiles at LEVELS of sorted finite values, interpolated linearly (numpy's default)."""
    low, high, fraction = _positions(len(ordered))
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@lru_cache(maxsize=64)
def _positions(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the quantiles at LEVELS of n sorted values lie: the same for most columns."""
    position = LEVELS * (n - 1)
    low = np.floor(position).astype(np.intp)
    return low, np.minimum(low + 1, n - 1), position - low


def cuts_of(quantiles: np.ndarray) -> np.ndarray:
    """The PSI bins' cuts: the distinct deciles; when the lowest is the minimum (a point mass
    there, or a constant column), a cut just below it too, so that new values under the
    reference's range get a bin of their own instead of joining the minimum's."""
    cuts = sorted(set(quantiles[DECILES].tolist()))
    if cuts[0] == quantiles[0]:
        cuts.insert(0, float(np.nextafter(cuts[0], -np.inf)))
    return np.array(cuts)


def bin_counts(values: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows per bin (-inf, c1], ..., (ck, inf), and the missing rows: a NaN is neither <= nor >
    any cut, so the comparisons count them too, with no pass of their own. Comparisons, not
    searchsorted (branch-free: 7x faster on a million values), a block at a time so that each
    block is compared with every cut while it is in the cache."""
    below = [0] * (len(cuts) + 1)  # rows <= each cut, then rows > the last
    scratch = np.empty(min(len(values), BLOCK), bool)
    for start in range(0, len(values), BLOCK):
        block = values[start:start + BLOCK]
        mask = scratch[:len(block)]
        for i, cut in enumerate(cuts):
            below[i] += int(np.count_nonzero(np.less_equal(block, cut, out=mask)))
        below[-1] += int(np.count_nonzero(np.greater(block, cuts[-1], out=mask)))
    # the differences in Python ints: np.diff and np.append cost more than the 12 subtractions
    inner = (high - low for low, high in zip(below, below[1:-1], strict=False))
    counts = [below[0], *inner, below[-1]]
    return np.array(counts, np.int64), len(values) - sum(counts)


def _bin_indices(sampled: np.ndarray, cuts: Sequence[np.ndarray]) -> np.ndarray:
    """Each sampled value's bin, a row per column (row i cut at cuts[i]); len(cuts[i]) + 1 for
    a missing value. The cuts are padded with +inf, above which no value lies, so that rows
    are compared with their k-th cut in one call, CHUNK rows at a time (held in the cache)."""
    padded = np.full((len(cuts), max(len(c) for c in cuts)), np.inf)
    for row, inner in zip(padded, cuts, strict=True):
        row[:len(inner)] = inner
    index = np.zeros(sampled.shape, np.int8)  # at most 10 cuts, 12 bins with the missing
    scratch = np.empty((CHUNK, sampled.shape[1]), bool)
    for start in range(0, len(sampled), CHUNK):
        values, bins = sampled[start:start + CHUNK], index[start:start + CHUNK]
        above = scratch[:len(values)]
        for cut in padded[start:start + CHUNK].T:
            bins += np.greater(values, cut[:, np.newaxis], out=above).view(np.int8)
    missing = np.array([len(c) + 1 for c in cuts], np.int8)[:, np.newaxis]
    np.copyto(index, missing, where=np.isnan(sampled))
    return index


def category_counts(series: pd.Series, name: str) -> tuple[dict[str, int], int]:
    """Rows per category (as text) and missing rows; UnsupportedColumn for values that cannot
    be counted (unhashable ones past the first values kind_of looks at)."""
    try:
        found = series.value_counts(dropna=True, sort=False)
    except TypeError as error:
        raise UnsupportedColumn(name, f"{series.dtype} ({error})") from None
    counts: dict[str, int] = {}
    for value, count in zip(found.index, found.to_numpy().tolist(), strict=True):
        if count:
            counts[str(value)] = counts.get(str(value), 0) + int(count)
    return counts, len(series) - int(found.sum())


def prediction_series(predictions: Any, rows: int, side: str) -> pd.Series | None:
    """Predictions as a Series, one per row of the data; of two columns, the second (the
    positive class's probability)."""
    if predictions is None:
        return None
    if isinstance(predictions, pd.Series):
        values: Any = predictions.reset_index(drop=True)
    else:
        array = np.asarray(predictions)
        if array.ndim == 2 and array.shape[1] in (1, 2):
            array = array[:, -1]
        if array.ndim != 1:
            raise DriftInputError(f"the {side} predictions have shape {array.shape}: give one "
                                  "score or label per row (of predict_proba, one column)")
        values = pd.Series(array)
    if len(values) != rows:
        raise DriftInputError(f"{len(values)} {side} predictions for {rows} rows of {side} data")
    return values


def _means_per_bin(index: np.ndarray, bins: Sequence[int],
                   scores: np.ndarray) -> list[tuple[float, ...]]:
    """Mean score per bin of each row of `index` (the sampled rows' bins in a column, row i's
    below bins[i]), of the rows with a score; a bin without any gets the row's overall mean
    (neutral in CSI)."""
    present = ~np.isnan(scores)
    if not present.all():
        index, scores = index[:, present], scores[present]
    totals, counts = np.zeros((len(index), max(bins))), np.zeros((len(index), max(bins)), int)
    overall = np.empty((len(index), 1))
    for i, (row, size) in enumerate(zip(index, bins, strict=True)):
        totals[i, :size] = np.bincount(row, weights=scores, minlength=size)
        counts[i, :size] = np.bincount(row, minlength=size)
        overall[i] = totals[i, :size].sum() / max(counts[i, :size].sum(), 1)
    means = np.where(counts > 0, totals / np.maximum(counts, 1), overall)
    rounded = means.astype(np.float32).astype(np.float64)
    return [tuple(row[:size].tolist()) for row, size in zip(rounded, bins, strict=True)]


def _short(values: tuple[float, ...] | None) -> list[float] | None:
    """float32 values written with the fewest digits that read back the same."""
    return None if values is None else [float(str(v)) for v in np.asarray(values, np.float32)]


def _column_json(column: ColumnProfile) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": column.kind, "dtype": column.dtype,
                            "counts": list(column.counts), "missing": column.missing}
    if isinstance(column, NumericProfile):
        packed = np.asarray(column.quantiles, "<f4").tobytes()
        body.update(quantiles=base64.b64encode(packed).decode("ascii"), sample=column.sample)
    else:
        body["categories"] = list(column.categories)
    if column.scores is not None:
        body["scores"] = _short(column.scores)
    return body


def _column_from(body: Mapping[str, Any]) -> ColumnProfile:
    scores = body.get("scores")
    if scores is not None:
        scores = tuple(np.asarray(scores, np.float32).astype(np.float64).tolist())
    counts = tuple(int(n) for n in body["counts"])
    if body["kind"] in (NUMERIC, DATETIME, TIMEDELTA):
        packed = np.frombuffer(base64.b64decode(body["quantiles"]), "<f4")
        if len(packed) != len(LEVELS):
            raise ValueError(f"{len(packed)} quantiles, expected {len(LEVELS)}")
        return NumericProfile(str(body["dtype"]), tuple(packed.astype(np.float64).tolist()),
                              counts, int(body["missing"]), int(body["sample"]), scores,
                              str(body["kind"]))
    if body["kind"] == CATEGORICAL:
        return CategoricalProfile(str(body["dtype"]), tuple(str(c) for c in body["categories"]),
                                  counts, int(body["missing"]), scores)
    raise ValueError(f"unknown column kind {body['kind']!r}")
