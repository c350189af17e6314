"""`%%mlops track`: run a cell's code in the user namespace as a child run of the session.

Whoever shows the cell (the run card under it) is an observer the caller passes in, as the
runner's `Listener` is: tracking never imports a view.
"""

from __future__ import annotations

import ast
import sys
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from jupyter_mlops.errors import did_you_mean
from jupyter_mlops.steps import datasets
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.steps.datasets import DatasetDescription
from jupyter_mlops.tracking import limits, notebook_info
from jupyter_mlops.tracking.capture import captured
from jupyter_mlops.tracking.client import RunRef, Tracker, model_digest
from jupyter_mlops.tracking.session import LoggedModel, Session, parameter_values

_EXAMPLE_NAMES = ("X_test", "X_val", "X_train", "X")
# The option that asked for each kind of value: named when a value it asked for is missing.
OPTION_OF = {"param": "--params", "metric": "--metrics", "model": "--model", "input": "--inputs"}


@dataclass
class CellOptions:
    name: str | None = None
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # ["auto"] for the cell's numeric scalars
    model: str | None = None
    input_example: str | None = None
    register: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)  # values logged as MLflow dataset inputs
    # The model's reference profile (JSON) from the model and the namespace, or None: built by
    # the monitoring layer, which sits above tracking, so the magic hands it in.
    profile: Callable[[Any, dict[str, Any]], str | None] | None = None
    # The cell's first line as the user wrote it (`%%mlops track NAME --flags`): the cell.py
    # artifact holds the body, and "Insert into notebook" puts the two back together.
    line: str = ""


@dataclass
class TrackedCell:
    """A tracked cell as its observer sees it; `params`, `metrics` and `error` are set when
    the cell has run, and `run.status` is settled by then."""

    name: str
    tracker: Tracker
    run: RunRef
    options: CellOptions
    model_defined: bool = False  # `options.model` names a variable the cell left defined
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    datasets: list[DatasetDescription] = field(default_factory=list)  # `inputs` as logged
    error: BaseException | None = None
    # (kind, name) of each value an option asked for that the cell left undefined
    not_logged: list[tuple[str, str]] = field(default_factory=list)
    # (option and name, why) of each value the cell defined that cannot be logged
    refused: list[tuple[str, str]] = field(default_factory=list)

    def run_id(self) -> str | None:
        """The MLflow run id once the sender created the run (cheap: no waiting)."""
        return self.tracker.run_id(self.run)

    def problems(self) -> tuple[list[str], bool]:
        """The store's verdict on the run's records, known after the cell (delivery.py)."""
        from jupyter_mlops.tracking.delivery import run_problems

        return run_problems(self.tracker, self.run)

    def model_fate(self) -> tuple[str, bool]:
        """What became of the cell's model once the store answered (delivery.py)."""
        if not self.model_defined or self.options.model is None:
            return "NOT LOGGED: no such variable", True
        from jupyter_mlops.tracking.delivery import model_fate

        return model_fate(self.tracker, self.run, self.options.register, self.options.model)


class CellObserver(Protocol):
    """Told of a tracked cell as it starts and as it settles (the run card under it)."""

    def started(self, cell: TrackedCell) -> None: ...

    def finished(self, cell: TrackedCell) -> None: ...


def track_cell(shell: Any, session: Session, options: CellOptions, source: str,
               observer: CellObserver | None = None) -> Any:
    """Execute `source` as a tracked run; returns the last expression's value like a cell."""
    __tracebackhide__ = True  # IPython hides this frame: the user sees their own traceback
    ns = shell.user_ns
    parent = session.ensure(ns)
    tracker = session.tracker
    # the In [N] the cell shows: IPython 9 counts the next cell from the start of this one
    name = options.name or f"cell-{shell.displayhook.prompt_count}"
    line = {vocab.TRACK_LINE_TAG: options.line} if options.line else {}
    run = tracker.start_run(name, session.experiment or "notebooks", parent=parent,
                            tags={vocab.KIND_TAG: vocab.KIND_CELL, **options.tags, **line,
                                  **notebook_info.notebook_tags(session.notebook)})
    # IPython's syntax (magics, `!cmd`, `x?`) inside the cell; plain Python needs no pass.
    code = shell.transform_cell(source) if any(c in source for c in "%!?") else source
    tracker.log_text(run, vocab.CELL_SOURCE_ARTIFACT, source)
    if len(source) < 7000:  # shown on the run's page in MLflow's UI
        tracker.set_tags(run, {vocab.NOTE_TAG: vocab.note_text(source)})
    cell = TrackedCell(name, tracker, run, options)
    observer = _tell(observer, "started", cell)
    session.stack.append(run)
    session.cell_runs.append(run)
    try:
        with captured(tracker, run, shell):
            try:
                return execute(shell, code)
            except BaseException as exc:
                cell.error = exc
                raise
            finally:
                cell.params, cell.metrics = _log_values(tracker, run, session, options, ns,
                                                        code, cell.not_logged)
                cell.datasets = _log_inputs(tracker, run, options.inputs, ns, session.notebook,
                                            cell.not_logged, cell.refused)
    finally:
        session.stack.remove(run)
        cell.metrics = {**session.logged_metrics.pop(run.key, {}), **cell.metrics}
        cell.model_defined = options.model in ns
        _say_not_logged(shell, cell)
        session.not_logged += [f"{OPTION_OF[kind]} {n}" for kind, n in cell.not_logged]
        session.not_logged += [asked for asked, _ in cell.refused]
        _tell(observer, "finished", cell)  # after captured(): run.status is settled


def _tell(observer: CellObserver | None, event: str, cell: TrackedCell) -> CellObserver | None:
    """Tell the observer; one that fails is dropped: a view must never break tracking."""
    if observer is None:
        return None
    try:
        getattr(observer, event)(cell)
    except Exception:
        return None
    return observer


def execute(shell: Any, code: str) -> Any:
    """exec the cell like IPython would, returning the value of a trailing expression."""
    __tracebackhide__ = True
    filename = shell.compile.cache(code, shell.displayhook.prompt_count)  # its In [N]
    tree = ast.parse(code, filename)
    tree = shell.transform_ast(tree)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    flags = shell.compile.flags
    exec(compile(tree, filename, "exec", flags, dont_inherit=True), shell.user_ns)  # noqa: S102
    if last is None:
        return None
    return eval(compile(last, filename, "eval", flags, dont_inherit=True), shell.user_ns)  # noqa: S307


def _say_not_logged(shell: Any, cell: TrackedCell) -> None:
    """One line in the cell per value asked for and not logged: not defined (with the variable
    it looks like a misspelling of) or of a kind that cannot be; in red (stderr), as other mlops
    failures, not as a Python warning pointing into our code."""
    for asked, reason in cell.refused:
        print(f"mlops: cell run {cell.name!r}: {asked}: {reason}; not logged", file=sys.stderr)
    if not cell.not_logged:
        return
    hidden = getattr(shell, "user_ns_hidden", {})
    names = [k for k, v in shell.user_ns.items() if not k.startswith("_") and k not in hidden
             and not isinstance(v, types.ModuleType)]
    for kind, name in cell.not_logged:
        hint = did_you_mean(name, names)
        print(f"mlops: cell run {cell.name!r}: {OPTION_OF[kind]} {name}: no such variable, "
              f"not logged{f'; {hint}' if hint else ''}", file=sys.stderr)


def _log_values(tracker: Tracker, run: RunRef, session: Session, options: CellOptions,
                ns: dict[str, Any], code: str, missing: list[tuple[str, str]],
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    params = parameter_values(session.notebook, ns)
    params.update(_pick(ns, options.params, "param", missing))
    if params:
        tracker.log_params(run, params)
    if options.metrics == ["auto"]:
        names = notebook_info.metric_names(code)
        metrics = {n: ns[n] for n in names
                   if n not in params and n in ns and limits.is_scalar_number(ns[n])}
    else:
        metrics = _pick(ns, options.metrics, "metric", missing)
    if metrics:
        tracker.log_metrics(run, metrics)
    if options.model:
        _log_model(tracker, run, session, options, ns, missing)
    return params, metrics


def _log_inputs(tracker: Tracker, run: RunRef, names: list[str], ns: dict[str, Any],
                notebook: Any, missing: list[tuple[str, str]],
                refused: list[tuple[str, str]]) -> list[DatasetDescription]:
    """Describe each named value as an MLflow dataset, here (digest, schema, row count: tens of
    milliseconds at 100,000 x 50); the writer sends them. A name that is not defined, or a
    value of another type, is said in the cell and left out."""
    described = []
    for name, value in _pick(ns, names, "input", missing).items():
        try:
            described.append(datasets.describe(name, value, str(notebook or "")))
        except datasets.UnsupportedValue as error:
            refused.append((f"--inputs {name}", f"input {error}"))
        except Exception as error:  # a frame that cannot be hashed (duplicate columns...)
            refused.append((f"--inputs {name}", f"could not be described "
                                               f"({type(error).__name__}: {error})"))
    tracker.log_datasets(run, described)
    return described


def _pick(ns: dict[str, Any], names: list[str], kind: str,
          missing: list[tuple[str, str]]) -> dict[str, Any]:
    """The named values the cell defined; the others go to `missing` as (kind, name)."""
    missing += [(kind, name) for name in names if name not in ns]
    return {name: ns[name] for name in names if name in ns}


def _log_model(tracker: Tracker, run: RunRef, session: Session, options: CellOptions,
               ns: dict[str, Any], missing: list[tuple[str, str]]) -> None:
    assert options.model is not None
    if options.model not in ns:
        missing.append(("model", options.model))
        return
    model = ns[options.model]
    # Named by its variable, as a pipeline step's model is: the card, the panel's run details
    # and MLflow's UI all call it what the notebook calls it (`runs:/RUN_ID/forest`).
    digest = tracker.log_model(run, model, name=options.model,
                               input_example=_example(ns, options.input_example),
                               register=options.register)
    session.logged_models[options.model] = LoggedModel(_reference(model),
                                                       options.input_example, digest, run)
    if options.profile is not None:
        _log_profile(tracker, run, options.profile, ns[options.model], ns)


def logged_run(session: Session, variable: str, ns: dict[str, Any]) -> RunRef | None:
    """The run of the tracked cell that logged `variable`'s value as its model, while that
    value is unchanged (not rebound, not refit: the same pickle); None otherwise."""
    found = session.logged_models.get(variable)
    if found is None or variable not in ns or found.value() is not ns[variable]:
        return None
    now = model_digest(ns[variable], _example(ns, found.example))
    return found.run if now == found.digest else None


def _reference(value: Any) -> Callable[[], Any]:
    """A weak reference to `value` where it takes one: a deleted model is not kept alive."""
    try:
        return weakref.ref(value)
    except TypeError:
        return lambda: value


def _log_profile(tracker: Tracker, run: RunRef, profile: Callable[[Any, dict[str, Any]], Any],
                 model: Any, ns: dict[str, Any]) -> None:
    """Store the model's reference profile beside it; a failure is said in the cell."""
    try:
        text = profile(model, ns)
    except Exception as error:
        print(f"mlops: cell run {run.name!r}: no reference profile stored with the model: "
              f"{error}", file=sys.stderr)
        return
    if text is not None:
        tracker.log_text(run, vocab.REFERENCE_PROFILE_ARTIFACT, text)


def _example(ns: dict[str, Any], name: str | None) -> Any:
    """A few rows for the model's input example: the named variable, else X_test/X_train/X."""
    names = [name] if name else list(_EXAMPLE_NAMES)
    for candidate in names:
        value = ns.get(candidate)
        if value is not None and hasattr(value, "shape") and len(value):
            return value[:5] if not hasattr(value, "head") else value.head(5)
    return None
