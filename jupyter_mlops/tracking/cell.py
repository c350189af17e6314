"""`%%mlops track`: run a cell's code in the user namespace as a child run of the session."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_mlops.tracking import limits, notebook_info
from jupyter_mlops.tracking.capture import captured
from jupyter_mlops.tracking.client import RunRef, Tracker
from jupyter_mlops.tracking.session import Session, parameter_values

_EXAMPLE_NAMES = ("X_test", "X_val", "X_train", "X")


@dataclass
class CellOptions:
    name: str | None = None
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # ["auto"] for the cell's numeric scalars
    model: str | None = None
    input_example: str | None = None
    register: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def track_cell(shell: Any, session: Session, options: CellOptions, source: str) -> Any:
    """Execute `source` as a tracked run; returns the last expression's value like a cell."""
    __tracebackhide__ = True  # IPython hides this frame: the user sees their own traceback
    ns = shell.user_ns
    parent = session.ensure(ns)
    tracker = session.tracker
    name = options.name or f"cell-{shell.execution_count}"
    run = tracker.start_run(name, session.experiment or "notebooks", parent=parent,
                            tags={"mlops.kind": "cell", **options.tags,
                                  **notebook_info.notebook_tags(session.notebook)})
    # IPython's syntax (magics, `!cmd`, `x?`) inside the cell; plain Python needs no pass.
    code = shell.transform_cell(source) if any(c in source for c in "%!?") else source
    tracker.log_text(run, "cell.py", source)
    if len(source) < 7000:  # shown on the run's page in MLflow's UI
        tracker.set_tags(run, {"mlflow.note.content": f"```python\n{source}\n```"})
    card = _run_card(shell, name, tracker, run)
    logged: dict[str, dict[str, Any]] = {}
    error: BaseException | None = None
    session.stack.append(run)
    try:
        with captured(tracker, run, shell):
            try:
                return execute(shell, code)
            except BaseException as exc:
                error = exc
                raise
            finally:
                logged = _log_values(tracker, run, session, options, ns, code)
    finally:
        session.stack.remove(run)
        if card is not None:  # after captured(): run.status is settled
            if options.model:
                card.watch_model(options.model, _model_fate(tracker, run, options, ns))
            card.finish(run.status, error=f"{type(error).__name__}: {error}" if error else None,
                        **logged)


def _run_card(shell: Any, name: str, tracker: Tracker, run: RunRef) -> Any:
    """The live run card under the cell (jupyter_mlops.widgets); None without a frontend."""
    if getattr(shell, "kernel", None) is None:  # terminal IPython: no widgets
        return None
    try:
        from jupyter_mlops.tracking.delivery import run_problems
        from jupyter_mlops.widgets.run_card import cell_card

        # The store's verdict on the run's records comes after the cell: the card asks.
        return cell_card(name, run_id=lambda: tracker.run_id(run), tracking_uri=tracker.uri,
                         problems=lambda: run_problems(tracker, run))
    except Exception:  # a view must never break tracking
        return None


def _model_fate(tracker: Tracker, run: RunRef, options: CellOptions,
                ns: dict[str, Any]) -> Callable[[], tuple[str, bool]]:
    """What the card says of the cell's model once the store answered (delivery.py)."""
    if options.model not in ns:
        return lambda: ("NOT LOGGED: no such variable", True)
    from jupyter_mlops.tracking.delivery import model_fate

    return lambda: model_fate(tracker, run, options.register)


def execute(shell: Any, code: str) -> Any:
    """exec the cell like IPython would, returning the value of a trailing expression."""
    __tracebackhide__ = True
    filename = shell.compile.cache(code, shell.execution_count)
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


def _log_values(tracker: Tracker, run: RunRef, session: Session, options: CellOptions,
                ns: dict[str, Any], code: str) -> dict[str, dict[str, Any]]:
    params = parameter_values(session.notebook, ns)
    params.update(_pick(ns, options.params, "param"))
    if params:
        tracker.log_params(run, params)
    if options.metrics == ["auto"]:
        names = notebook_info.assigned_names(code)
        metrics = {n: ns[n] for n in names
                   if n not in params and n in ns and limits.is_scalar_number(ns[n])}
    else:
        metrics = _pick(ns, options.metrics, "metric")
    if metrics:
        tracker.log_metrics(run, metrics)
    if options.model:
        _log_model(tracker, run, options, ns)
    return {"params": params, "metrics": metrics}


def _pick(ns: dict[str, Any], names: list[str], kind: str) -> dict[str, Any]:
    picked = {}
    for name in names:
        if name in ns:
            picked[name] = ns[name]
        else:
            warnings.warn(f"jupyter-mlops: {kind} {name!r} is not defined; not logged",
                          limits.LimitWarning, stacklevel=2)
    return picked


def _log_model(tracker: Tracker, run: RunRef, options: CellOptions, ns: dict[str, Any]) -> None:
    assert options.model is not None
    if options.model not in ns:
        _pick(ns, [options.model], "model")
        return
    tracker.log_model(run, ns[options.model], input_example=_example(ns, options.input_example),
                      register=options.register)


def _example(ns: dict[str, Any], name: str | None) -> Any:
    """A few rows for the model's input example: the named variable, else X_test/X_train/X."""
    names = [name] if name else list(_EXAMPLE_NAMES)
    for candidate in names:
        value = ns.get(candidate)
        if value is not None and hasattr(value, "shape") and len(value):
            return value[:5] if not hasattr(value, "head") else value.head(5)
    return None
