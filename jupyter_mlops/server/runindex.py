"""An in-memory summary of each experiment's runs, refreshed incrementally, searched in memory.

Why: `MlflowClient.search_runs` ordered by a metric joins the metrics table for every run of the
experiment on each call (~4.5 s at 10,000 runs on SQLite), and the panel polls every few seconds.
The index loads an experiment's runs once, then each request fetches only what can have changed
with two cheap default-order queries: runs started since the newest one seen, and the runs it
holds as still RUNNING/SCHEDULED (a finished tracked cell does not change). A background full
reload every `full_refresh_seconds` catches the rest (deleted runs, tags edited on finished runs).
Ordering is MLflow's own (`SearchUtils.sort`: missing and NaN last, then start_time descending,
then run_id), so pages are identical to `search_runs` with the same order_by.
Works against any tracking store (SQLite file or MLflow server), since it only uses the client.

The same holds for a notebook's runs across experiments: a `Scope` names the experiments (or
every active one) and the tag values a run must carry (any of them: MLflow's filter has no OR,
so one query per value); loading, the incremental refresh and the sort are the same.

The first request for a scope does not wait for its runs to load (minutes at 100,000 runs):
the load runs in a thread, one at a time (`load_lock`), newest first, and meanwhile requests
in the default order (newest first) are answered from memory once the load has read past
their page (`ExperimentRuns.held_from`; a page it is about to read waits for it), else
straight from the store with a query per page that starts after the previous page's last run
(a cursor in the page token), while other orders sort the runs loaded so far and say so
(`RunPage.loading`). What is kept of a run is an `IndexedRun`
(a quarter of an MLflow Run's memory), and the scopes used least recently are dropped
when all together hold more than `max_runs` runs.

A store's tag filter joins the tags of every run (on SQLite 10x the cost of a plain page):
a notebook's newest page, and the runs started since the last refresh, are read without it
and kept by their tags when the notebook's runs are most of those read; the newest page by
windows of start time (`_windows`), as MLflow's query sorts every run selected. The store
is asked what changed at most once per `min_refresh_seconds`; requests meanwhile answer from
memory.
The full load, too, reads by windows of start time (`_load_pages`), each holding about
`_LOAD_WINDOW_RUNS` runs: paging one query over every run would sort them all for each page;
without the tag filter while the scope's runs are most of those read.
A load or refresh that fails is reported in every answer (`RunPage.error`) until one succeeds.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import functools
import hashlib
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jupyter_mlops.server.errors import bad_request

_log = logging.getLogger(__name__)

LIVE_STATUSES = ("RUNNING", "SCHEDULED")
_PAGE = 10_000  # runs per search_runs call
# Runs per search_runs call of a full load: between two, the load waits while a request is
# being answered (in Python, the load's work would slow every request it overlaps). Small, as
# an MLflow server takes seconds to send 1,000 runs under load (past the 10 s HTTP timeout
# tracking/destination.py sets at load average 15); a page that fails is asked again.
_LOAD_PAGE = 250
# A full load's first page: the panel's first two pages and one more (panel.ts FIRST_PAGE),
# for its next page, which waits for the load, soon.
_LOAD_FIRST_PAGE = 101
_LOAD_ATTEMPTS = 3
_LOAD_WINDOW_RUNS = 2_000  # runs a full load's window of start time aims to hold
_PLACED_AT_MOST = 1_000  # runs arriving together placed in sorted orders; more: sorted anew
_HELD_WAIT_S = 1.0  # how long a newest-first page waits for the first load to read it
_SEED = 100  # newest runs read for another order's first answer while loading
# Runs started since the last refresh, across the scope's experiments, read in one query
# without the tag filter when there are no more than this many (else the filtered queries).
_FEW_NEW = 100
# Newest-first pages read runs started in the last hour, then back to 4, 16 and 64 hours ago,
# then older: a window more only costs a scan where a sort of every run costs 4-8x more.
_WINDOWS_MS = tuple(h * 3_600_000 for h in (1, 4, 16, 64))
_IDS_PER_QUERY = 100
# Runs held by all scopes together before the least recently used are dropped: about 240 MiB
# of IndexedRuns of 10 params, 10 metrics and 5 tags (1.6 KiB a run, benchmarks/README.md,
# "index").
MAX_RUNS = 150_000
# A full reload at most once per this many of its own durations (at 100,000 runs a reload
# takes a minute of a core: not every `full_refresh_seconds`).
RELOAD_SPACING = 10
_INTERNED_CHARS = 24  # parameter and tag values this short repeat across runs: shared


@dataclass(frozen=True)
class Scope:
    """The runs an index entry holds: those of `experiment_ids` (None: every active
    experiment), and when `any_tags` is given only runs with one of those tag values."""

    experiment_ids: tuple[str, ...] | None
    any_tags: tuple[tuple[str, str], ...] = ()  # (tag key, value) pairs, any one matches

    def filters(self) -> list[str]:
        """MLflow filter strings whose results together are the scope ('' for all runs)."""
        return [tag_filter(key, value) for key, value in self.any_tags] or [""]

    def holds(self, run: Any) -> bool:
        """Exact match (a LIKE filter may return more)."""
        tags = run.data.tags
        return not self.any_tags or any(tags.get(k) == v for k, v in self.any_tags)


@dataclass(frozen=True)
class RunQuery:
    """What a client asks of a scope's runs."""

    order_by: tuple[str, ...] = ()
    tags: tuple[tuple[str, tuple[str, ...]], ...] = ()  # tag key -> accepted values
    max_results: int = 100
    offset: int = 0
    experiment_ids: tuple[str, ...] = ()  # only runs of these experiments; () for all
    after: tuple[int, str] | None = None  # default order: (start_time, run_id) of the last
    #                                       run of the previous page; the page starts after it

    def fingerprint(self) -> str:
        raw = json.dumps([self.order_by, self.tags, self.experiment_ids]).encode()
        return hashlib.sha1(raw).hexdigest()[:12]

    @property
    def newest_first(self) -> bool:
        """MLflow's default order, which the store answers cheaply page by page."""
        return not self.order_by


@dataclass
class RunPage:
    runs: list[Any]
    total: int  # while loading: the runs seen so far, at least
    next_offset: int | None
    loading: bool = False  # the scope's runs are still loading: other orders than newest
    #                        first sort only the runs loaded so far
    error: str | None = None  # why the runs could not all be read (the store named)

    def cursor(self) -> tuple[int, str] | None:
        """The last run's place in the default order, for the next page's `after`."""
        return newest_key_of(self.runs[-1]) if self.runs else None


class IndexedRun:
    """What the index keeps of a run: the fields MLflow sorts and filters by and the panel
    shows, under the names of an MLflow Run (`run.info.start_time`, `run.data.metrics`), so
    `SearchUtils.sort` and `run_row` take it as one. An MLflow Run also keeps a Metric object
    per metric: 6.1 KiB at 10 params, 10 metrics and 5 tags against 1.6 KiB for this (keys
    and short values shared between runs)."""

    __slots__ = ("run_id", "run_name", "experiment_id", "user_id", "status", "start_time",
                 "end_time", "lifecycle_stage", "artifact_uri", "metrics", "params", "tags")

    def __init__(self, run: Any) -> None:
        info, data = run.info, run.data
        self.run_id: str = info.run_id
        self.run_name: str | None = info.run_name
        self.experiment_id: str = sys.intern(info.experiment_id)
        self.user_id: str | None = _shared(info.user_id)
        self.status: str = sys.intern(info.status)
        self.start_time: int = info.start_time or 0
        self.end_time: int | None = info.end_time
        self.lifecycle_stage: str = sys.intern(info.lifecycle_stage)
        self.artifact_uri: str | None = info.artifact_uri
        self.metrics = {sys.intern(k): v for k, v in data.metrics.items()}
        self.params = {sys.intern(k): _shared(v) for k, v in data.params.items()}
        self.tags = {sys.intern(k): _shared(v) for k, v in data.tags.items()}

    @property
    def info(self) -> IndexedRun:
        return self

    @property
    def data(self) -> IndexedRun:
        return self


def _shared(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) and len(value) <= _INTERNED_CHARS \
        else value


def newest_key_of(run: Any) -> tuple[int, str]:
    """(start_time, run_id): a run's place in MLflow's default order."""
    return run.info.start_time or 0, run.info.run_id


def _newest_order(run: Any) -> tuple[int, str]:
    """The sort key of MLflow's default order: start_time descending, then run_id."""
    return -(run.info.start_time or 0), run.info.run_id


@dataclass
class ExperimentRuns:
    """The active runs of one scope (an experiment, a notebook's) as IndexedRuns, by run id."""

    scope: Scope
    runs: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    watermark: int = 0  # newest start_time seen
    complete: bool = False  # every run loaded once
    loaded: threading.Event = field(default_factory=threading.Event)  # set once complete
    loaded_at: float = 0.0
    load_seconds: float = 0.0  # how long the last full load took
    refreshed_at: float = 0.0
    loading: bool = False
    reading: bool = False  # its load is reading (not waiting for another scope's to end)
    # While the first load runs: every run of the scope started at or after this is held, so
    # a newest-first page above it is answered from memory (None: not known yet).
    held_from: int | None = None
    error: str | None = None  # the last load's or refresh's failure, until one succeeds
    sparse: bool = False  # the scope's runs are few among their experiments' (until a reload)
    lock: threading.RLock = field(default_factory=threading.RLock)
    grown: threading.Condition = field(init=False)  # notified as the first load adds runs
    sorted_cache: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    counts: tuple[int, dict[str, int]] = (-1, {})  # (version, runs per experiment)

    def __post_init__(self) -> None:
        self.grown = threading.Condition(self.lock)

    def grow(self, runs: list[Any], held_from: int | None) -> None:
        """Runs of the first load, and the start time down to which every run is now held."""
        with self.lock:
            if runs:
                self.upsert(runs)
            if held_from is not None:
                self.held_from = held_from if self.held_from is None \
                    else min(self.held_from, held_from)
            self.grown.notify_all()

    def replace(self, runs: Iterable[Any]) -> None:
        with self.lock:
            self.runs = {run.info.run_id: run for run in runs}
            self.watermark = max((r.info.start_time or 0 for r in self.runs.values()), default=0)
            self._changed()

    def upsert(self, runs: Iterable[Any]) -> None:
        """Add or update runs; a few are placed in the sorted orders held (a sort of 100,000
        runs by a metric takes 0.2 s, and runs arrive every few seconds), many re-sorted."""
        with self.lock:
            arrived = list(runs)
            if len(arrived) > _PLACED_AT_MOST:
                self.sorted_cache.clear()
            keys = {ordering: _order_key(ordering[0]) for ordering in self.sorted_cache}
            for run in arrived:
                before = self.runs.get(run.info.run_id)
                for ordering, key in keys.items():
                    if not _place(self.sorted_cache[ordering], ordering, key, before, run):
                        self.sorted_cache.pop(ordering)  # not where it should be: sort anew
                        keys = {o: k for o, k in keys.items() if o in self.sorted_cache}
                        break
                self.runs[run.info.run_id] = run
                self.watermark = max(self.watermark, run.info.start_time or 0)
            self.version += 1

    def live_ids(self) -> list[str]:
        return [rid for rid, run in self.runs.items() if run.info.status in LIVE_STATUSES]

    def _changed(self) -> None:
        self.version += 1
        self.sorted_cache.clear()


def _place(ordered: list[Any], ordering: tuple[Any, ...], key: Any, before: Any | None,
           run: Any) -> bool:
    """Move `run` (`before`: its previous version, if any) to its place in `ordered`, a list
    sorted for `ordering` (order_by, tags, experiment ids); False if `before` is not found."""
    _, tags, experiment_ids = ordering
    if before is not None and _kept(before, tags, experiment_ids):
        at = bisect.bisect_left(ordered, key(before), key=key)
        if at == len(ordered) or ordered[at] is not before:
            return False
        del ordered[at]
    if _kept(run, tags, experiment_ids):
        bisect.insort(ordered, run, key=key)
    return True


class RunIndex:
    """Run summaries of every experiment (and notebook) asked about, for one tracking URI."""

    def __init__(self, client: Any, full_refresh_seconds: float = 30.0,
                 min_refresh_seconds: float = 0.5, max_runs: int = MAX_RUNS) -> None:
        self.client = client
        self.full_refresh_seconds = full_refresh_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.max_runs = max_runs
        self._entries: dict[Scope, ExperimentRuns] = {}  # least recently used first
        self._lock = threading.Lock()
        # One full load at a time: several notebooks opened together load one after the other
        # (memory, and the store's and this process's CPU); a test holds it to see a load wait.
        self.load_lock = threading.Lock()
        self._answering = 0  # searches in progress, which a load's next page waits for
        self._quiet = threading.Condition()
        self.experiment_names: dict[str, str] = {}  # of the active experiments last listed
        self._listed_at = -math.inf

    def search(self, scope: Scope | str, query: RunQuery) -> RunPage:
        """A page of runs, as `search_runs(order_by=..., page_token=...)` would return it;
        `scope` may be one experiment's id. While the scope loads, a newest-first page comes
        from the store and other orders sort what has loaded (`loading` says so)."""
        entry = self._entry(scope if isinstance(scope, Scope) else Scope((scope,)))
        self._await_held(entry, query)  # not counted as answering: the load goes on
        with self._answer():
            page = self._page(entry, query)
        page.error = entry.error
        return page

    def _page(self, entry: ExperimentRuns, query: RunQuery) -> RunPage:
        from mlflow.exceptions import MlflowException

        if entry.complete:
            self._refresh(entry)
        elif self._held(entry, query):  # the load has read past this page: from memory,
            self._refresh(entry)  # with the runs started since, and live ones' status
        elif not query.tags and (query.newest_first or len(entry.runs) < _SEED):
            # The newest page from the store: the answer in the default order; for
            # another, the newest runs are among those sorted, however few have loaded
            # (once that many have, the sort answers from memory while the load goes on).
            try:
                newest = self._newest(entry, query if query.newest_first else RunQuery(
                    max_results=max(query.max_results, _SEED),
                    experiment_ids=query.experiment_ids))
            except MlflowException as error:  # answered from what has loaded, saying why
                entry.error = self.problem(error)
            else:
                self._load_in_background(entry)  # only now: it does not slow the first answer
                if query.newest_first or not newest.loading:  # not: the store had no more
                    return newest if query.newest_first else self._sorted(entry, query, False)
        self._load_in_background(entry)
        return self._sorted(entry, query, not entry.complete)

    def _held(self, entry: ExperimentRuns, query: RunQuery) -> bool:
        """Whether the runs held answer a newest-first page exactly while the scope loads:
        every run down to the page's last is held, and one more."""
        if not query.newest_first or query.tags or entry.held_from is None:
            return False
        with entry.lock:
            ordered = self._ordered(entry, query)
            end = self._start(ordered, query) + query.max_results
            return len(ordered) > end and (ordered[end - 1].info.start_time or 0) \
                >= entry.held_from

    def _await_held(self, entry: ExperimentRuns, query: RunQuery) -> None:
        """While the first load reads (not while it waits for another scope's), a newest-first
        page it is about to read waits for it (up to `_HELD_WAIT_S`) rather than asking the
        store beside it."""
        if entry.complete or not entry.reading or not query.newest_first or query.tags:
            return
        with entry.grown:
            entry.grown.wait_for(lambda: self._held(entry, query) or not entry.reading,
                                 timeout=_HELD_WAIT_S)

    def problem(self, error: BaseException) -> str:
        """Why the runs could not be read, in one line naming the store (password masked)."""
        from jupyter_mlops.tracking.destination import masked
        from jupyter_mlops.tracking.sink import reason

        uri = str(getattr(self.client, "tracking_uri", "") or "the tracking store")
        why = reason(error).splitlines()[0][:300] if str(error) else type(error).__name__
        return f"the runs could not all be read from {masked(uri)}: {why}"

    def _sorted(self, entry: ExperimentRuns, query: RunQuery, loading: bool) -> RunPage:
        with entry.lock:
            ordered = self._ordered(entry, query)
            start = self._start(ordered, query)
            end = start + query.max_results
            return RunPage(ordered[start:end], len(ordered), end if end < len(ordered) else None,
                           loading=loading)

    @contextlib.contextmanager
    def _answer(self) -> Iterator[None]:
        with self._quiet:
            self._answering += 1
        try:
            yield
        finally:
            with self._quiet:
                self._answering -= 1
                self._quiet.notify_all()

    def _wait_quiet(self) -> None:
        """Before a load's next page: until no request is being answered (at most a second,
        so that a steady stream of requests does not stop the load)."""
        with self._quiet:
            self._quiet.wait_for(lambda: not self._answering, timeout=1.0)

    def wait_loaded(self, scope: Scope | str, timeout: float | None = None) -> bool:
        """Wait until every run of the scope is held (a load must have been started by a
        search); False on timeout."""
        return self._entry(scope if isinstance(scope, Scope) else Scope((scope,))) \
            .loaded.wait(timeout)

    def experiments_of(self, scope: Scope) -> dict[str, int]:
        """Experiment id -> how many of the scope's runs it holds (as of the last search)."""
        entry = self._entry(scope)
        with entry.lock:
            if entry.counts[0] != entry.version:  # counted once per change, not per request
                counts: dict[str, int] = {}
                for run in entry.runs.values():
                    counts[run.info.experiment_id] = counts.get(run.info.experiment_id, 0) + 1
                entry.counts = (entry.version, counts)
            return dict(entry.counts[1])

    def _entry(self, scope: Scope) -> ExperimentRuns:
        with self._lock:
            entry = self._entries.pop(scope, None) or ExperimentRuns(scope)
            self._entries[scope] = entry  # the most recently used, last
            self._evict(entry)
        return entry

    def _evict(self, keep: ExperimentRuns) -> None:
        """Drop the least recently used scopes while all hold more than `max_runs` runs (a
        scope being loaded stays: its thread is filling it)."""
        held = sum(len(e.runs) for e in self._entries.values())
        for scope, entry in list(self._entries.items()):
            if held <= self.max_runs:
                return
            if entry is not keep and not entry.loading:
                del self._entries[scope]
                held -= len(entry.runs)

    def _load_in_background(self, entry: ExperimentRuns) -> None:
        with entry.lock:
            if not entry.complete and not entry.loading:
                self._start_load(entry)

    def _refresh(self, entry: ExperimentRuns) -> None:
        """What changed, asked of the store at most once per `min_refresh_seconds` (requests
        meanwhile, and those waiting on the lock, answer from memory)."""
        from mlflow.exceptions import MlflowException

        now = time.monotonic()
        with entry.lock:
            if now - entry.refreshed_at >= self.min_refresh_seconds:
                try:
                    self._incremental(entry)
                    entry.error = None
                except MlflowException as error:  # the runs held are answered, with why
                    entry.error = self.problem(error)
                entry.refreshed_at = time.monotonic()
            spacing = max(self.full_refresh_seconds, RELOAD_SPACING * entry.load_seconds)
            if now - entry.loaded_at >= spacing and not entry.loading:
                self._start_load(entry)

    def _start_load(self, entry: ExperimentRuns) -> None:
        entry.loading = True
        threading.Thread(target=self._load, args=(entry,), daemon=True,
                         name="mlops-run-index").start()

    def _load(self, entry: ExperimentRuns) -> None:
        """Every run of the scope, off the request path. The first load adds each page as it
        arrives (sorts cover what has come); a reload swaps the whole set at the end, keeping
        runs changed meanwhile reachable (newer ones by the watermark, live ones by status)."""
        try:
            with self.load_lock:
                entry.reading = True
                started = time.monotonic()
                first = not entry.complete
                runs: list[Any] = []
                ids = self._experiment_ids(entry.scope)
                dense = bool(entry.scope.any_tags) and not entry.sparse
                for page, held_from in self._load_pages(entry.scope, ids, dense):
                    entry.error = None  # the store answers again
                    if first:
                        entry.grow(page, held_from)
                    else:
                        runs += page
                    self._wait_quiet()
                with entry.lock:
                    if not first:
                        entry.replace(runs)
                    entry.sparse = False
                    self._incremental(entry)
                    entry.complete = True
                    entry.error = None
                entry.loaded.set()
                entry.load_seconds = time.monotonic() - started
        except Exception as error:  # noqa: BLE001 - any failure reaches the responses
            # The next request starts the load again; until one succeeds, answers say why.
            entry.error = self.problem(error)
            _log.warning("jupyter_mlops: %s", entry.error)
        finally:
            entry.loaded_at = entry.refreshed_at = time.monotonic()
            with entry.grown:
                entry.loading = entry.reading = False
                entry.grown.notify_all()

    def _newest(self, entry: ExperimentRuns, query: RunQuery) -> RunPage:
        """A newest-first page straight from the store: per filter of the scope, the first
        runs after the cursor (one more than the page, to know whether another follows)."""
        ids = self._experiment_ids(entry.scope)
        if query.experiment_ids:
            ids = [eid for eid in ids if eid in query.experiment_ids]
        found = self._newest_runs(entry, ids, query.after, query.max_results + 1)
        ordered = sorted(found, key=_newest_order)
        page = ordered[:query.max_results]
        end = query.offset + len(page)
        more = len(ordered) > len(page)
        # The newest runs take part in other orders while the rest loads; those started after
        # the page's last are all in it.
        held_from = None
        if query.after is None and not query.experiment_ids:
            entry.refreshed_at = time.monotonic()  # the newest runs, as they are now
            if page:
                held_from = (page[-1].info.start_time or 0) + 1 if more else 0
        entry.grow(page, held_from)
        wanted = set(query.experiment_ids)
        with entry.lock:
            known = sum(1 for r in entry.runs.values()
                        if not wanted or r.info.experiment_id in wanted)
        # The first page holding every run (of the experiments asked for): nothing is missing.
        loading = more or query.after is not None
        return RunPage(page, max(known, end + more), end if more else None, loading=loading)

    def _newest_runs(self, entry: ExperimentRuns, experiment_ids: list[str],
                     after: tuple[int, str] | None, wanted: int) -> list[Any]:
        """The scope's first `wanted` runs after `after` in the default order, or a few more.
        Where the scope's runs are most of their experiments' (a notebook's sweep), newest
        pages of every run are read and kept by their tags: a store's tag filter joins the
        tags of every run (10x the cost on SQLite). Else one tag-filtered query per value."""
        scope = entry.scope
        since = f"attributes.start_time <= {after[0]}" if after else ""
        if scope.any_tags and not entry.sparse:
            found = self._first_after(scope, experiment_ids, _windows(after), after, wanted,
                                      dense=True)
            if found is not None:
                return found
            entry.sparse = True
        runs: dict[str, Any] = {}
        for base in scope.filters():
            clause = " AND ".join(c for c in (base, since) if c)
            runs.update((r.info.run_id, r) for r in self._first_after(
                scope, experiment_ids, [clause], after, wanted) or [])
        return list(runs.values())

    def _first_after(self, scope: Scope, experiment_ids: list[str], clauses: list[str],
                     after: tuple[int, str] | None, wanted: int,
                     dense: bool = False) -> list[Any] | None:
        """The first `wanted` runs of the scope matching `clauses` (disjoint, newest first)
        that come after `after` in the default order (runs sharing its start_time may come
        before it: skipped). `dense`: None as soon as fewer than half the runs read are the
        scope's."""
        found: list[Any] = []
        read = 0
        for clause in clauses:
            for page, _ in self._pages(experiment_ids, clause, wanted):
                read += len(page)
                found += [r for r in page if scope.holds(r)
                          and (after is None or newest_key_of(r)[0] < after[0]
                               or r.info.run_id > after[1])]
                if len(found) >= wanted:
                    return found[:wanted]
                if dense and 2 * len(found) < read:
                    return None
        return found

    def _incremental(self, entry: ExperimentRuns) -> None:
        ids = self._experiment_ids(entry.scope)
        new = self._started_since(entry, ids)
        fresh = [r for r in new if r.info.run_id not in entry.runs]
        live = self._by_ids(ids, entry.live_ids())
        if fresh or live:
            entry.upsert([*fresh, *live])

    def _started_since(self, entry: ExperimentRuns, experiment_ids: list[str]) -> list[Any]:
        """The scope's runs started since its newest: when the experiments hold few such runs
        (a refresh every few seconds), from one query without the tag filter (which joins the
        tags of every run); else by the scope's filters."""
        scope, since = entry.scope, f"attributes.start_time >= {entry.watermark}"
        if scope.any_tags and experiment_ids and not entry.sparse:
            page = self._search_page(experiment_ids, since, _FEW_NEW, None)
            if not page.token:
                return [r for r in map(IndexedRun, page) if scope.holds(r)]
            entry.sparse = True  # others' runs keep coming: the filters, until a reload
        return self._in_scope(scope, experiment_ids, since)

    def _by_ids(self, experiment_ids: list[str], run_ids: list[str]) -> list[Any]:
        found: list[Any] = []
        for start in range(0, len(run_ids), _IDS_PER_QUERY):
            chunk = ", ".join(f"'{rid}'" for rid in run_ids[start:start + _IDS_PER_QUERY])
            found += self._search(experiment_ids, f"attributes.run_id IN ({chunk})")
        return found

    def _in_scope(self, scope: Scope, experiment_ids: list[str], extra: str) -> list[Any]:
        """The scope's runs that also match `extra`, one query per tag value."""
        found: dict[str, Any] = {}
        for base in scope.filters():
            clause = " AND ".join(c for c in (base, extra) if c)
            for page, _ in self._pages(experiment_ids, clause):
                found.update((r.info.run_id, r) for r in page if scope.holds(r))
        return list(found.values())

    def _load_pages(self, scope: Scope, experiment_ids: list[str], dense: bool,
                    ) -> Iterator[tuple[list[Any], int | None]]:
        """Every run of the scope, newest first, by windows of start time that hold about
        `_LOAD_WINDOW_RUNS` runs each: a store sorts every run a query selects, so paging one
        query over all runs sorts them all again for each page (40 min at 100,000 runs).
        `dense`: the scope's runs are most of their experiments': windows are read without
        the tag filter (which joins the tags of every run), until one holds mostly others'.
        With each page, the start time down to which every run has been read (or None)."""
        oldest: int | None = None  # asked after the first window, which the panel waits for
        upper: int | None = None  # the first window is open above: clocks differ
        width = _WINDOWS_MS[0]
        size = _LOAD_FIRST_PAGE
        while True:
            lower = (int(time.time() * 1000) if upper is None else upper) - width
            clauses = [f"attributes.start_time >= {lower}"]
            if upper is not None:
                clauses.append(f"attributes.start_time < {upper}")
            kept = read = 0
            filters = [""] if dense else scope.filters()
            for page, held_from, count in self._window_pages(
                    scope, experiment_ids, " AND ".join(clauses), size, filters):
                kept, read = kept + len(page), read + count
                yield page, held_from
            size = _LOAD_PAGE
            if upper is None:  # where the windows stop (dense: any run's, without the join)
                oldest = self._oldest_start(filters, experiment_ids)
            dense = dense and 2 * kept >= read
            yield [], lower
            if oldest is None or lower <= oldest:
                return
            width = _next_width(width, read)
            upper = lower

    def _window_pages(self, scope: Scope, experiment_ids: list[str], window: str,
                      first_size: int, filters: list[str],
                      ) -> Iterator[tuple[list[Any], int | None, int]]:
        """The scope's runs in a window of start time, a page of each filter's query in turn
        (the first `first_size` runs), and with each page the start time down to which every
        query has read (None until each has read a page) and how many runs the page read."""
        queries = {base: self._pages(experiment_ids, " AND ".join(c for c in (base, window) if c),
                                     first_size, _LOAD_PAGE, _LOAD_ATTEMPTS)
                   for base in filters}
        reached: dict[str, int | None] = dict.fromkeys(queries)  # of the queries not done
        while queries and experiment_ids:
            for base, pages in list(queries.items()):
                page, last = next(pages)
                if last:  # every run of this filter in the window is read
                    del queries[base], reached[base]
                elif page:
                    reached[base] = (page[-1].start_time or 0) + 1
                marks = list(reached.values())
                yield ([r for r in page if scope.holds(r)],
                       None if not marks or None in marks else min(m or 0 for m in marks),
                       len(page))

    def _oldest_start(self, filters: list[str], experiment_ids: list[str]) -> int | None:
        """The start time of the oldest run matching one of `filters` (None: there is none)."""
        starts = []
        for base in filters:
            if not experiment_ids:
                break
            oldest = self.client.search_runs(experiment_ids, filter_string=base, max_results=1,
                                             order_by=["attributes.start_time ASC"])
            starts += [run.info.start_time or 0 for run in oldest]
        return min(starts, default=None)

    def _experiment_ids(self, scope: Scope) -> list[str]:
        """The scope's experiments; every active one is listed afresh (new ones appear) at
        most once per `min_refresh_seconds`."""
        if scope.experiment_ids is not None:
            return list(scope.experiment_ids)
        if time.monotonic() - self._listed_at < self.min_refresh_seconds:
            return list(self.experiment_names)
        listed: dict[str, str] = {}
        token = None
        while True:
            page = self.client.search_experiments(max_results=_PAGE, page_token=token)
            listed.update((e.experiment_id, e.name) for e in page)
            token = page.token
            if not token:
                break
        self.experiment_names, self._listed_at = listed, time.monotonic()
        return list(listed)

    def _search(self, experiment_ids: list[str], filter_string: str) -> list[Any]:
        return [run for page, _ in self._pages(experiment_ids, filter_string) for run in page]

    def _pages(self, experiment_ids: list[str], filter_string: str, size: int = _PAGE,
               then: int | None = None, attempts: int = 1) -> Iterator[tuple[list[Any], bool]]:
        """search_runs's pages in the default order, as IndexedRuns, each with whether it is
        the last: `size` runs, then `then` a page (each asked up to `attempts` times)."""
        token = None
        while experiment_ids:
            page = self._search_page(experiment_ids, filter_string, size, token, attempts)
            token, size = page.token, then or size
            yield [IndexedRun(run) for run in page], not token
            if not token:
                break

    def _search_page(self, experiment_ids: list[str], filter_string: str, size: int,
                     token: str | None, attempts: int = 1) -> Any:
        """One search_runs page, asked up to `attempts` times (a full load's: a slow server's
        timeout would otherwise restart the whole load)."""
        from mlflow.exceptions import MlflowException

        for attempt in range(1, attempts + 1):
            try:
                return self.client.search_runs(experiment_ids, filter_string=filter_string,
                                               max_results=size, page_token=token)
            except MlflowException:
                if attempt == attempts:
                    raise
                time.sleep(attempt)
        return None  # not reached

    @staticmethod
    def _start(ordered: list[Any], query: RunQuery) -> int:
        """Where the page starts: after the cursor in the default order, else the offset."""
        if query.after is None or not query.newest_first:
            return query.offset
        start, run_id = query.after
        return bisect.bisect_right(ordered, (-start, run_id), key=_newest_order)

    @staticmethod
    def _ordered(entry: ExperimentRuns, query: RunQuery) -> list[Any]:
        key = (query.order_by, query.tags, query.experiment_ids)
        cached = entry.sorted_cache.get(key)
        if cached is None:
            from mlflow.utils.search_utils import SearchUtils

            runs = [r for r in entry.runs.values()
                    if _kept(r, query.tags, query.experiment_ids)]
            cached = entry.sorted_cache[key] = SearchUtils.sort(runs, list(query.order_by))
        return cached


def _next_width(width: int, held: int) -> int:
    """The next load window's width, from how many runs this one held: wider across gaps
    (years of quiet cost a few queries), narrower where runs are dense."""
    if held < _LOAD_WINDOW_RUNS // 4:
        return width * 4
    if held > 2 * _LOAD_WINDOW_RUNS:
        return max(width // 2, 1)
    return width


def _windows(after: tuple[int, str] | None) -> list[str]:
    """Filters for the runs at or before `after` (else any), by disjoint windows of start
    time, newest first (`_WINDOWS_MS`). A store sorts every run it selects (MLflow's query is
    DISTINCT, so no top-N shortcut): a window that holds the page keeps that sort small
    (100,000 runs on PostgreSQL: 60 ms against 300)."""
    anchor = after[0] if after else int(time.time() * 1000)
    clauses, upper = [], f"attributes.start_time <= {after[0]}" if after else ""
    for lower in (anchor - w for w in _WINDOWS_MS):
        clauses.append(" AND ".join(c for c in (upper, f"attributes.start_time >= {lower}")
                                    if c))
        upper = f"attributes.start_time < {lower}"
    return [*clauses, upper]


def tag_filter(key: str, value: str) -> str:
    """An MLflow filter for tag `key` equal to `value`. MLflow's grammar has no escapes: a
    value with both quote kinds (or a backslash) becomes a LIKE with `_` in their place,
    which may match more; `Scope.holds` keeps the exact ones."""
    if "\\" not in value and "'" not in value:
        return f"tags.`{key}` = '{value}'"
    if "\\" not in value and '"' not in value:
        return f'tags.`{key}` = "{value}"'
    pattern = "".join("_" if c in "'\"\\" else c for c in value)
    return f"tags.`{key}` LIKE '{pattern}'"


def _kept(run: Any, tags: tuple[tuple[str, tuple[str, ...]], ...],
          experiment_ids: tuple[str, ...]) -> bool:
    """Whether a query's tags and experiments keep the run."""
    return all(run.data.tags.get(key) in values for key, values in tags) and (
        not experiment_ids or run.info.experiment_id in experiment_ids)


def _order_key(order_by: tuple[str, ...]) -> Any:
    """A sort key ordering runs as `SearchUtils.sort(runs, order_by)` does (each clause in
    turn, missing and NaN last, then newest first, then by run id), to place one run."""
    from mlflow.utils.search_utils import SearchUtils

    clauses = [SearchUtils.parse_order_by_for_search_runs(c) for c in order_by]

    def compare(a: Any, b: Any) -> int:
        for key_type, key, ascending in clauses:
            first = SearchUtils._get_value_for_sort(a, key_type, key, ascending)
            second = SearchUtils._get_value_for_sort(b, key_type, key, ascending)
            if first != second:
                return (-1 if first < second else 1) * (1 if ascending else -1)
        first, second = _newest_order(a), _newest_order(b)
        return -1 if first < second else int(first > second)

    return functools.cmp_to_key(compare)


def check_order_by(order_by: list[str]) -> None:
    """Reject what MLflow would reject, with a 400 instead of a 500."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    seen = set()
    for clause in order_by:
        try:
            key_type, key, _ = SearchUtils.parse_order_by_for_search_runs(clause)
        except MlflowException:
            raise bad_request("order_by must read like 'metrics.accuracy DESC'",
                              "bad-order-by") from None
        if (key_type, key) in seen:
            raise bad_request("order_by names a field twice", "bad-order-by")
        seen.add((key_type, key))


def encode_token(query: RunQuery, page: RunPage) -> str | None:
    """The next page's token (None on the last page). In the default order it also holds the
    page's last run, where the next page starts while the store answers (or runs came)."""
    if page.next_offset is None:
        return None
    data: dict[str, Any] = {"o": page.next_offset, "q": query.fingerprint()}
    cursor = page.cursor() if query.newest_first else None
    if cursor is not None:
        data["a"] = list(cursor)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def decode_token(token: str | None, query: RunQuery) -> tuple[int, tuple[int, str] | None]:
    """The offset (and the default order's cursor) a page token stands for; it must come
    from the same query."""
    if not token:
        return 0, None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
        same = data["q"] == query.fingerprint()
        after = _cursor(data.get("a"))
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError,
            RecursionError):  # 1e400 -> inf
        raise bad_request("invalid page token", "bad-page-token") from None
    if not same or offset < 0:
        raise bad_request("the page token belongs to another query", "bad-page-token")
    return offset, after


def _cursor(value: Any) -> tuple[int, str] | None:
    if value is None:
        return None
    start, run_id = value
    if not isinstance(start, int) or not isinstance(run_id, str) or not run_id.isalnum():
        raise ValueError("a cursor is a start time and a run id")
    return start, run_id
