"""The model registry on MLflow: register a logged model, list versions with their lineage, and
move aliases by promotion.

MLflow's aliases only (its stages are deprecated). A version answers where it came from: the
run that logged its model, that run's metrics (models/gates.py's reading), and the notebook and
git commit of the run or of its session or pipeline parent, copied onto the version's tags
when it is registered here (versions registered elsewhere are looked up through their run),
and the gates' verdicts when a pipeline registered it. Versions are read a page at a time in
MLflow's own paging, newest first, and described together: their runs read in batches.

A promotion moves the alias in one registry call, so it is atomic as a user sees it: a refused
condition or a failed call leaves the alias where it was. The version taking the alias records
the version it took it from (`mlops.previous.champion=3`); a rollback is the promotion of that
earlier version. mlflow is imported by the functions that talk to the store.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from jupyter_mlops.errors import MlopsError, did_you_mean
from jupyter_mlops.models import gates
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking.destination import masked

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_LINEAGE_TAGS = (vocab.NOTEBOOK_TAG, vocab.GIT_COMMIT_TAG)
_T = TypeVar("_T")
_P = ParamSpec("_P")
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
PAGE_SIZE = 50  # versions in a page of `models list`
_READ_PAGE = 500  # versions in each page `versions` reads
_NEWEST = ["creation_timestamp DESC", "name ASC", "version_number DESC"]  # of every model
_LINEAGE_DEPTH = 4  # parents walked for a run's notebook and commit (cell, session, ...)
# Says "Waiting up to 300 seconds for model version to finish creation" in the user's cell
# on every registration through a server, though a version with a logged model is READY.
_AWAIT_LOGGER = "mlflow.store.model_registry.abstract_store"


class RegistryError(MlopsError):
    """A registered model, version, alias or logged model that is not there, or a name MLflow
    refuses: the message names it and, where it helps, what there is instead."""


class PromotionRefused(gates.GateFailed):
    """`promote --if` did not hold: each failing condition with the metric, its value and the
    threshold; the alias has not moved."""


@dataclass(frozen=True)
class Version:
    """A registered model version, its aliases and its lineage, flattened for display."""

    model: str
    version: int
    aliases: tuple[str, ...] = ()
    status: str = ""
    created_ms: int = 0
    run_id: str | None = None
    source: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    notebook: str | None = None
    git_commit: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} v{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"

    def key_metrics(self, limit: int | None = None) -> list[tuple[str, float]]:
        """Its metrics in the order they are shown (`metric_order`), the first `limit`."""
        return [(k, self.metrics[k]) for k in metric_order([self])][:limit]

    @property
    def gated_metrics(self) -> list[str]:
        """The metrics its pipeline's gates judged when it registered this version."""
        return [m for m in (r.metric for r in self.gates) if m]

    def previous(self, alias: str) -> str | None:
        """The version that held `alias` before this one took it ('none': nobody did)."""
        return self.tags.get(vocab.previous_holder_tag(alias))

    @property
    def gates(self) -> list[gates.Recorded]:
        """The gates' verdicts recorded when a pipeline registered this version."""
        return gates.recorded(self.tags)


def _judged(versions: list[Version], gated: Iterable[str]) -> list[str]:
    """The gated metrics: `gated` (a condition's), then those the versions' own gates judged;
    never the runner's bookkeeping (vocab.STEP_METRICS: a step's duration, cache hit)."""
    judged = [*gated, *(m for v in versions for m in v.gated_metrics)]
    return [m for m in dict.fromkeys(judged) if m not in vocab.STEP_METRICS]


def metric_order(versions: Iterable[Version], gated: Iterable[str] = ()) -> list[str]:
    """The order the metrics of `versions` are shown in, by the CLI, the widgets and the
    panel alike: the gated ones first, the others by name, the runner's bookkeeping last."""
    versions = list(versions)
    first = _judged(versions, gated)
    held = {k for v in versions for k in v.metrics} - set(first)
    return [*(m for m in first if any(m in v.metrics for v in versions)),
            *sorted(held, key=lambda k: (k in vocab.STEP_METRICS, k))]


def shown_metrics(versions: Iterable[Version], gated: Iterable[str] = (),
                  limit: int = 3) -> list[str]:
    """The metric columns of a table of `versions`: every gated one (held or not: a
    condition's metric has its column), then the others in `metric_order` up to `limit` in
    all; the runner's bookkeeping never."""
    versions = list(versions)
    first = _judged(versions, gated)
    rest = [m for m in metric_order(versions) if m not in first and m not in vocab.STEP_METRICS]
    return first + rest[:max(0, limit - len(first))]


@dataclass(frozen=True)
class VersionPage:
    """A page of versions, newest first, and MLflow's token for the next (None: the last)."""

    versions: list[Version]
    next_page_token: str | None = None


@dataclass(frozen=True)
class Promotion:
    """What a promotion did: `alias` of `model` now on `version`, taken from `previous`."""

    model: str
    alias: str
    version: int
    previous: int | None
    results: tuple[gates.GateResult, ...] = ()

    @property
    def moved(self) -> bool:
        return self.previous != self.version

    def message(self) -> str:
        if not self.moved:
            head = f"{self.model} v{self.version} already holds @{self.alias}; nothing moved"
        else:
            was = f"v{self.previous}" if self.previous is not None else "nobody"
            head = f"{self.model} v{self.version} is now @{self.alias} (was {was})"
        return "\n".join([head, *(f"  {r.message}" for r in self.results)])


def _said(function: Callable[_P, _T]) -> Callable[_P, _T]:
    """MLflow's own errors (a store that does not answer, a call it refuses) as RegistryError:
    one line where the user looks, not a traceback; nothing has moved."""

    @functools.wraps(function)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            from mlflow.exceptions import MlflowException

            if not isinstance(error, MlflowException):
                raise
            raise RegistryError(f"the model registry: {error.message}") from None

    return call


# --- registering ---------------------------------------------------------------------------
@_said
def register(source: Any, name: str, *, alias: str | None = None, store: Any = None,
             tags: dict[str, str] | None = None) -> Version:
    """Register a logged model as a new version of `name` (created if new), optionally giving
    it `alias` (a promotion: the previous holder is recorded); `tags` go on the version with
    the lineage tags (a pipeline's gate verdicts), in the same call.

    `source`: a run id (its model), `runs:/RUN_ID/NAME`, a logged model id (`m-...`,
    `models:/m-...`), or what `log_model` returned.
    """
    from jupyter_mlops.steps.model_logging import _fluent_uri

    client = client_for(store)
    if alias:
        _check_alias(client, name, alias)
    logged = logged_model(client, source)
    _create_registered_model(client, name)
    run_id = logged.source_run_id
    tags = (_origin_tags(client, [run_id]).get(run_id, {}) if run_id else {}) | (tags or {})
    # The registry resolves a `models:/m-...` source through the global tracking URI: ours,
    # for the call, whatever MLFLOW_TRACKING_URI says.
    with _fluent_uri(client.tracking_uri), _quiet(_AWAIT_LOGGER):
        created = client.create_model_version(
            name, source=f"models:/{logged.model_id}", run_id=logged.source_run_id, tags=tags,
            model_id=logged.model_id)
    if alias:
        holder = client.get_registered_model(name).aliases.get(alias)
        _move_alias(client, name, alias, int(created.version), holder)
    return describe(name, version=created.version, store=client)


@_said
def log_and_register(model: Any, name: str, *, experiment: str, run_name: str,
                     tags: dict[str, str] | None = None, alias: str | None = None,
                     input_example: Any = None, store: Any = None) -> Version:
    """Log an in-memory object as an MLflow model on a new run of `experiment`, then register
    it (`%mlops register VARIABLE`): logged now, not by the background writer, so the version
    exists when the call returns."""
    from jupyter_mlops.steps.model_logging import log_model
    from jupyter_mlops.tracking.destination import artifact_root

    client = client_for(store)
    if alias:
        _check_alias(client, name, alias)
    experiment_id = vocab.get_or_create_experiment(client, experiment,
                                                   artifact_root(client.tracking_uri))
    run = client.create_run(experiment_id, run_name=run_name, tags=tags or {})
    status = "FAILED"
    try:
        info = log_model(client, run.info.run_id, model, input_example=input_example)
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status)
    return register(info.model_id, name, alias=alias, store=client)


def logged_model(client: Any, source: Any) -> Any:
    """The READY logged model `source` names (see `register`); RegistryError naming it if none."""
    text = str(getattr(source, "model_id", None) or source).strip().removeprefix("models:/")
    if text.startswith("runs:/"):
        run_id, _, name = text.removeprefix("runs:/").partition("/")
        return _model_of_run(client, run_id, name or None)
    if _RUN_ID.fullmatch(text):
        return _model_of_run(client, text, None)
    if text.startswith("m-"):
        from mlflow.exceptions import MlflowException

        try:
            return client.get_logged_model(text)
        except MlflowException:
            raise RegistryError(f"no logged model {text!r} in "
                                f"{masked(client.tracking_uri)}") from None
    raise RegistryError(f"{source!r} names no logged model: give a run id (32 hex digits), "
                        "runs:/RUN_ID/NAME, or a logged model id (m-...)")


def _model_of_run(client: Any, run_id: str, name: str | None) -> Any:
    """The run's READY logged model (named `name`, else the only one or the one named
    `model`); RegistryError saying why there is none."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise RegistryError(f"no run {run_id} in {masked(client.tracking_uri)}") from None
    query = f"source_run_id = '{run_id}'" + (f" AND name = '{_quoted(name)}'" if name else "")
    models = client.search_logged_models([run.info.experiment_id], filter_string=query)
    ready = [m for m in models if str(m.status).endswith("READY")]
    if name is None and len(ready) > 1:
        ready = [m for m in ready if m.name == vocab.MODEL_ARTIFACT] or ready
    if len(ready) == 1:
        return ready[0]
    what = f"run {run_id} ({run.info.run_name})"
    if ready:
        raise RegistryError(f"{what} logged several models ({_listed(m.name for m in ready)}):"
                            f" name one, runs:/{run_id}/NAME")
    if models:
        state = str(models[0].status).rpartition(".")[2]
        raise RegistryError(f"{what}: its model {models[0].name!r} is {state}, not stored; "
                            "nothing to register")
    named = f" named {name!r}" if name else ""
    raise RegistryError(f"{what} logged no model{named}: track its cell with `--model VARIABLE`,"
                        " or register the variable itself")


def _origin_tags(client: Any, run_ids: Iterable[str],
                 runs: dict[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """By run id, the notebook and git commit tags of the run, or of its parent run (a cell's
    session, a step's pipeline) for those the run itself lacks; a level of parents read at a
    time, in batches (`runs`: runs read already)."""
    runs = {} if runs is None else runs
    found: dict[str, dict[str, str]] = {i: {} for i in run_ids if i}
    at = {i: i for i in found}  # where each run's walk has got to
    for _ in range(_LINEAGE_DEPTH):
        gates.find_runs(client, at.values(), runs)
        following = {}
        for start, current in at.items():
            if current not in runs:
                continue
            tags = runs[current].data.tags
            found[start] = {k: tags[k] for k in _LINEAGE_TAGS if k in tags} | found[start]
            if len(found[start]) < len(_LINEAGE_TAGS) and tags.get(vocab.PARENT_RUN_TAG):
                following[start] = tags[vocab.PARENT_RUN_TAG]
        if not following:
            break
        at = following
    return found


# --- reading -------------------------------------------------------------------------------
@_said
def page(name: str | None = None, *, store: Any = None, max_results: int = PAGE_SIZE,
         page_token: str | None = None) -> VersionPage:
    """A page of versions, newest first: of `name`, or of every model when None (MLflow's own
    paging: pass the page's `next_page_token` for the next)."""
    client = client_for(store)
    models = {name: _registered(client, name)} if name is not None else {}
    query, order = ((f"name = '{_quoted(name)}'", ["version_number DESC"]) if name is not None
                    else (None, _NEWEST))
    found = client.search_model_versions(query, max_results=max_results, order_by=order,
                                         page_token=page_token or None)
    token = found.token.decode() if isinstance(found.token, bytes) else found.token  # SQLite's
    return VersionPage(_described(client, list(found), models), token or None)


@_said
def versions(name: str | None = None, *, store: Any = None) -> list[Version]:
    """Every version of `name` (of every model when None), newest first: page after page,
    none left out."""
    client = client_for(store)
    shown = page(name, store=client, max_results=_READ_PAGE)
    rows = list(shown.versions)
    while shown.next_page_token:
        shown = page(name, store=client, max_results=_READ_PAGE,
                     page_token=shown.next_page_token)
        rows += shown.versions
    return rows


@_said
def describe(name: str, *, version: int | str | None = None, alias: str | None = None,
             store: Any = None) -> Version:
    """One version, named by number or by alias (the newest when neither)."""
    client = client_for(store)
    model = _registered(client, name)
    number = _number(client, model, version, alias)
    return _described(client, [client.get_model_version(name, str(number))], {name: model})[0]


def parse_reference(reference: str) -> tuple[str, str | None, str | None]:
    """MLflow's names for a version: `MODEL@ALIAS` -> (MODEL, ALIAS, None), `MODEL/N` ->
    (MODEL, None, N); `models:/` in front is accepted."""
    text = reference.strip().removeprefix("models:/")
    name, at, alias = text.rpartition("@")
    if at and name and alias:
        return name, alias, None
    name, slash, number = text.rpartition("/")
    if slash and name and number.isdigit():
        return name, None, number
    raise RegistryError(f"model reference {reference!r}: expected MODEL@ALIAS (e.g. "
                        "churn@champion) or MODEL/VERSION (e.g. churn/3)")


def resolve(reference: str, *, store: Any = None) -> Version:
    """The version `MODEL@ALIAS` or `MODEL/N` names (RegistryError naming what is unknown)."""
    name, alias, number = parse_reference(reference)
    return describe(name, version=number, alias=alias, store=store)


def table(name: str | None = None, *, store: Any = None) -> Any:
    """`versions` as a pandas DataFrame: one row a version, its metrics as columns."""
    import pandas as pd

    return pd.DataFrame([{
        "model": v.model, "version": v.version, "aliases": ", ".join(v.aliases),
        "status": v.status, **{f"metrics.{k}": x for k, x in v.key_metrics()},
        "run_id": v.run_id, "notebook": v.notebook, "git_commit": v.git_commit,
    } for v in versions(name, store=store)])


# --- promoting -----------------------------------------------------------------------------
@_said
def promote(name: str, *, to: str = gates.CHAMPION, version: int | str | None = None,
            alias: str | None = None, condition: str | None = None,
            store: Any = None) -> Promotion:
    """Give alias `to` of model `name` to the version numbered `version` or holding `alias`,
    when `condition` (`accuracy>=0.8 and f1>=champion+0.01`) holds for it.

    A failing condition raises PromotionRefused; an unknown model, version or alias, or a
    malformed condition, raises before anything is read or moved.
    """
    if (version is None) == (alias is None):
        raise RegistryError(f"promote {name!r}: name the version to promote by number or by "
                            "alias (--version N or --alias challenger), one of the two")
    conditions = gates.parse_condition(condition) if condition else []
    client = client_for(store)
    _check_alias(client, name, to)
    model = _registered(client, name)
    number = _number(client, model, version, alias)
    holder = (model.aliases or {}).get(to)
    holder = int(holder) if holder is not None else None
    results = tuple(_judge(client, name, number, conditions)) if conditions else ()
    if not all(r.passed for r in results):
        stays = f"v{holder}" if holder is not None else "nobody"
        raise PromotionRefused(results, f"{name} v{number} not promoted to @{to} (@{to} "
                                        f"stays on {stays})")
    if holder != number:
        _move_alias(client, name, to, number, holder)
    return Promotion(name, to, number, holder, results)


def _judge(client: Any, name: str, number: int, conditions: list[gates.Gate]
           ) -> list[gates.GateResult]:
    metrics = gates.version_metrics(client, name, number)
    return gates.check(conditions, metrics, gates.champion_of(client, name))


def _move_alias(client: Any, name: str, alias: str, number: int, holder: int | None) -> None:
    """Record the previous holder on the version, then move the alias in one call; when the
    move fails, the tag is put back and the alias is still where it was."""
    from mlflow.exceptions import MlflowException

    tag = vocab.previous_holder_tag(alias)
    before = client.get_model_version(name, str(number)).tags.get(tag)
    client.set_model_version_tag(name, str(number), tag,
                                 str(holder) if holder is not None else vocab.PREVIOUS_NOBODY)
    try:
        client.set_registered_model_alias(name, alias, str(number))
    except BaseException as error:
        if before is None:
            client.delete_model_version_tag(name, str(number), tag)
        else:
            client.set_model_version_tag(name, str(number), tag, before)
        if isinstance(error, MlflowException):
            raise RegistryError(f"@{alias} of {name!r} not moved: {error.message}") from None
        raise


# --- lookups and their errors ----------------------------------------------------------------
def client_for(store: Any = None, *, create: bool = True) -> Any:
    """An MlflowClient: given, opened on a URI, or on the default store (as `%mlops` uses).
    `create=False` for a read: no store there is an error, and none is made."""
    if store is not None and not isinstance(store, str):
        return store
    from jupyter_mlops.tracking.destination import open_client, tracking_uri

    return open_client(store or tracking_uri(), create=create)


def _registered(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code not in _MISSING:
            raise
    names = [m.name for m in client.search_registered_models(max_results=200)]
    close = did_you_mean(name, names)
    hint = (f"; {close}" if close
            else f"; registered: {_listed(names)}" if names else "; none is registered yet")
    raise RegistryError(f"no registered model {name!r} in {masked(client.tracking_uri)}{hint}")


def _number(client: Any, model: Any, version: int | str | None, alias: str | None) -> int:
    """The version number named by `version` or `alias` (the newest when neither)."""
    aliases = model.aliases or {}
    if alias is not None:
        if alias not in aliases:
            held = _listed(f"@{a} (v{v})" for a, v in sorted(aliases.items()))
            raise RegistryError(f"model {model.name!r} has no alias @{alias}; "
                                + (f"its aliases: {held}" if aliases else "it has no aliases"))
        return int(aliases[alias])
    numbers = sorted((int(v.version) for v in client.search_model_versions(
        f"name = '{_quoted(model.name)}'")), reverse=True)
    if version is None and numbers:
        return numbers[0]
    if str(version).isdigit() and int(str(version)) in numbers:
        return int(str(version))
    raise RegistryError(f"model {model.name!r} has no version {version}; "
                        + (f"its versions: {_listed(map(str, numbers))}" if numbers
                           else "it has none"))


def _described(client: Any, found: list[Any], models: dict[str, Any]) -> list[Version]:
    """MLflow's versions with their aliases (each model read once, `models` those read
    already), metrics and lineage: their runs read together, in batches."""
    for name in {v.name for v in found} - set(models):
        models[name] = client.get_registered_model(name)
    runs: dict[str, Any] = {}
    metrics = gates.run_metrics(client, [v.run_id for v in found], runs)
    origins = _origin_tags(client, [v.run_id for v in found if v.run_id and not all(
        k in (v.tags or {}) for k in _LINEAGE_TAGS)], runs)
    return [_version(v, models[v.name].aliases or {}, metrics.get(v.run_id, {}),
                     origins.get(v.run_id, {})) for v in found]


def _version(found: Any, aliases: dict[str, Any], metrics: dict[str, float],
             origin: dict[str, str]) -> Version:
    tags = origin | dict(found.tags or {})
    return Version(
        model=found.name, version=int(found.version),
        aliases=tuple(sorted(a for a, v in aliases.items() if int(v) == int(found.version))),
        status=str(found.status), created_ms=found.creation_timestamp or 0,
        run_id=found.run_id or None, source=found.source or "", metrics=metrics,
        notebook=tags.get(vocab.NOTEBOOK_TAG), git_commit=tags.get(vocab.GIT_COMMIT_TAG),
        tags=tags)


def _create_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            return
        raise RegistryError(f"cannot register a model named {name!r}: {error.message}") from None


def _check_alias(client: Any, name: str, alias: str) -> None:
    """MLflow's own rule for alias names, and ours, said before anything is written: an alias
    that differs only in case from one model `name` has, or from one of ours (champion), is
    refused: MLflow's aliases are case-sensitive, so it would be a second alias beside it."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_alias_name

    try:
        _validate_model_alias_name(alias)
    except MlflowException as error:
        raise RegistryError(f"alias {alias!r}: {error.message}") from None
    taken = _aliases_of(client, name)
    twins = [a for a in (*taken, *gates.ALIASES) if a.casefold() == alias.casefold()]
    if twins and alias not in twins:
        raise RegistryError(f"alias {alias!r} differs only in case from @{twins[0]}, which "
                            "MLflow would keep beside it as another alias; "
                            + did_you_mean(alias, twins, cutoff=0))


def _aliases_of(client: Any, name: str) -> dict[str, str]:
    """The aliases of model `name` (none when it is not registered yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(name).aliases or {})
    except MlflowException as error:
        if error.error_code not in _MISSING:
            raise
        return {}


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """`logger`'s INFO lines silenced for the block."""
    found = logging.getLogger(logger)
    level = found.level
    found.setLevel(logging.WARNING)
    try:
        yield
    finally:
        found.setLevel(level)


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _listed(items: Iterable[str], limit: int = 10) -> str:
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
