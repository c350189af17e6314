"""`%mlops` / `%%mlops`: a thin command layer over the fluent session (tracking/session.py).

The magics sit above tracking and the widgets: they hand the run card in to the tracked cell,
so tracking itself never imports a view. `%load_ext jupyter_mlops` only registers the magics;
mlflow is imported by the background writer, never on the cell's critical path.
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from jupyter_mlops import settings
from jupyter_mlops.commands.models import PROMOTE_HELP, promote_arguments
from jupyter_mlops.errors import MlopsError, did_you_mean
from jupyter_mlops.tracking import delivery
from jupyter_mlops.tracking import session as session_mod
from jupyter_mlops.tracking.cell import CellOptions, TrackedCell, logged_run, track_cell
from jupyter_mlops.tracking.client import STATUSES
from jupyter_mlops.tracking.destination import masked
from jupyter_mlops.tracking.limits import as_metric


class _Exit(Exception):
    """argparse wanted to exit (after --help): the magic just returns."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports instead of exiting: no SystemExit traceback in a cell."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage()}Try `%mlops --help`.")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message)
        raise _Exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%mlops", description="Track notebook cells as MLflow runs.",
                     exit_on_error=False)
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    start = sub.add_parser("start", help="open the notebook's session run (parent of cell runs)")
    start.add_argument("--experiment", help="experiment name (default: the notebook's name)")
    start.add_argument("--run-name", help="session run name (default: the notebook's name)")
    track = sub.add_parser("track", help="%%%%mlops track: log the cell as a child run")
    track.add_argument("name", nargs="?", help="run name (default: cell-N)")
    track.add_argument("--params", default="", help="variables to log as params: a,b")
    track.add_argument("--metrics", default="", help="variables to log as metrics: x,y or auto")
    track.add_argument("--model", help="variable holding the model to log")
    track.add_argument("--input-example", help="variable with model input rows (default: X_test/X)")
    track.add_argument("--register", help="register the model under this name")
    track.add_argument("--reference", metavar="VARIABLE", help="the model's training frame, "
                       "profiled and stored with it for drift reports (default: X_train, X)")
    track.add_argument("--inputs", default="", help="variables (DataFrame, Series, array) to "
                       "log as the run's MLflow dataset inputs: X_train,df")
    track.add_argument("--tags", nargs="*", default=[], metavar="K=V", help="run tags")
    log = sub.add_parser("log", help="log k=v into the active run: numbers as metrics, else tags")
    log.add_argument("pairs", nargs="+", metavar="K=V")
    log.add_argument("--step", type=int, help="metric step (default: counts up per key)")
    params = sub.add_parser("params", help="log params: k=v, or NAME for a variable's value")
    params.add_argument("pairs", nargs="+", metavar="K=V|NAME")
    end = sub.add_parser("end", help="end the session run and flush everything to the store")
    end.add_argument("--status", default="FINISHED", choices=STATUSES)
    sub.add_parser("status", help="show the session run, the store and the writer's state")
    sync = sub.add_parser("sync", help="send what waits in the spool, as `jupyter-mlops sync`: "
                          "this notebook's records, what closed notebooks left; runs of dead "
                          "kernels marked FAILED")
    sync.add_argument("--no-recover", action="store_true",
                      help="only send; leave RUNNING runs alone")
    runs = sub.add_parser("runs", help="table of the experiment's recent runs")
    runs.add_argument("--last", type=int, default=10, help="how many runs (default 10)")
    sub.add_parser("ui", help="how to open the MLflow UI on this store")
    register = sub.add_parser("register", help="register a variable's model, or a run's "
                              "logged model, as a new version of MODEL")
    register.add_argument("source", metavar="VARIABLE|RUN_ID",
                          help="a variable holding a model (its tracked cell's if unchanged since, "
                               "else logged now), or a run id")
    register.add_argument("--name", required=True, metavar="MODEL", help="registered model")
    register.add_argument("--alias", help="give the new version this alias (e.g. challenger)")
    models = sub.add_parser("models", help="registered models: versions, aliases, metrics, "
                            "source run and notebook")
    models.add_argument("model", nargs="?", help="one registered model")
    promote_arguments(sub.add_parser("promote", help=PROMOTE_HELP))
    drift = sub.add_parser("drift", help="compare a frame with a model's training data "
                           "profile: shows the report and logs a monitor run")
    drift.add_argument("current", metavar="CURRENT", help="variable holding the new data")
    drift.add_argument("--model", required=True, metavar="MODEL@ALIAS",
                       help="the reference: MODEL@ALIAS, MODEL/VERSION or a run id")
    drift.add_argument("--predictions", metavar="VARIABLE",
                       help="variable holding the model's predictions on CURRENT")
    drift.add_argument("--threshold", type=float, metavar="PSI",
                       help="PSI above which a feature has drifted (default 0.25)")
    return parser


@magics_class
class MlopsMagics(Magics):
    """The `%mlops` line magic and the `%%mlops track` cell magic."""

    _parser = build_parser()

    @line_cell_magic
    def mlops(self, line: str, cell: str | None = None) -> Any:
        """Track notebook cells as MLflow runs. `%mlops --help` lists the subcommands."""
        __tracebackhide__ = True
        # A cell whose first line is refused does not run: said, or the user thinks it ran.
        not_run = "\nThe cell did not run." if cell is not None else ""
        try:
            args, extra = self._parser.parse_known_args(shlex.split(line))
        except _Exit:
            return None
        except (ValueError, argparse.ArgumentError) as error:
            raise UsageError(f"{error}{not_run}\nTry `%mlops --help`.") from None
        except UsageError as error:
            raise UsageError(f"{error}".replace("\n", f"{not_run}\n", 1)) from None
        if extra:
            raise UsageError(_unknown(self._parser, args.command, extra, not_run))
        if args.command is None:
            self._parser.print_help()
            return None
        if (cell is None) == (args.command == "track"):
            raise UsageError("`track` is a cell magic: start the cell with `%%mlops track ...`;"
                             " the other subcommands are line magics (`%mlops ...`).")
        args.line = f"%%mlops {line.strip()}"  # as written: a tracked cell's run keeps it
        try:
            return getattr(self, f"_{args.command}")(args, cell)
        except MlopsError as error:  # said in the cell, without a traceback
            raise UsageError(str(error)) from None

    @property
    def _user_ns(self) -> dict[str, Any]:
        assert self.shell is not None  # magics run inside a shell
        return self.shell.user_ns

    @property
    def _session(self) -> session_mod.Session:
        return session_mod.current()

    def _start(self, args: argparse.Namespace, cell: None) -> None:
        run = self._session.start(args.experiment, args.run_name, self._user_ns)
        # nbconvert --execute and plain IPython say nothing of the notebook: say how to tell it
        where = self._session.notebook or ("(notebook path not detected: set "
                                           f"{settings.NOTEBOOK.name} to its path, or the "
                                           "MLOps panel does not list these runs)")
        print(f"mlops: session run {run.name!r} in experiment {run.experiment!r} - {where}")

    def _track(self, args: argparse.Namespace, cell: str) -> Any:
        __tracebackhide__ = True
        for flag in ("register", "reference", "input_example"):  # each is about the model
            if getattr(args, flag) and not args.model:
                raise UsageError(f"--{flag.replace('_', '-')} {getattr(args, flag)} needs "
                                 "--model VARIABLE, the variable holding the cell's model\n"
                                 "The cell did not run.")
        options = CellOptions(
            name=args.name, params=_names(args.params), metrics=_names(args.metrics),
            model=args.model, input_example=args.input_example, register=args.register,
            tags=dict(_pairs(args.tags)), inputs=_names(args.inputs),
            profile=_profiler(args.reference) if args.model else None,
            line=args.line)
        return track_cell(self.shell, self._session, options, cell, _card_observer(self.shell))

    def _log(self, args: argparse.Namespace, cell: None) -> None:
        pairs = _pairs(args.pairs)
        session = self._session
        session.ensure(self._user_ns)
        values = {k: self._value(v) for k, v in pairs}
        metrics = {k: v for k, v in values.items() if as_metric(v) is not None}
        tags = {k: v for k, v in values.items() if k not in metrics}
        if metrics:
            run = session.active()
            session.tracker.log_metrics(run, metrics, args.step)
            session.logged_metrics.setdefault(run.key, {}).update(metrics)  # for its card
        if tags:
            session.tracker.set_tags(session.active(), tags)

    def _params(self, args: argparse.Namespace, cell: None) -> None:
        pairs = [_split_pair(i) if "=" in i else (i, None) for i in args.pairs]
        _once([key for key, _ in pairs])
        session = self._session
        session.ensure(self._user_ns)
        values = {}
        for key, raw in pairs:
            if raw is not None:
                values[key] = self._value(raw)
            elif key in self._user_ns:
                values[key] = self._user_ns[key]
            else:
                raise UsageError(f"{key!r} is neither K=V nor a defined variable")
        session.tracker.log_params(session.active(), values)

    def _end(self, args: argparse.Namespace, cell: None) -> None:
        session = self._session
        run = session.end(args.status)
        if run is None:
            print("mlops: no session run to end")
            return
        tracker = session.tracker
        stored = delivery.flush_while_progressing(tracker)
        run_id = tracker.run_id(run) or "not created yet"
        rejected = tracker.rejections()
        state, stored_ok = delivery.outcome(tracker, stored, rejected[tracker.reported:])
        tracker.reported = len(rejected)
        _settle_cards()
        # How the cells ended and what the store holds are two facts: both said.
        runs, values, cells_ok = session.outcomes()
        parts = (runs, values, state) if "\n" in state else (runs, state, values)
        said = "; ".join(part for part in parts if part)
        # A failure goes to stderr: frontends show it in red.
        print(f"mlops: ended {run.name!r} ({run_id}) {args.status}; {said}",
              file=sys.stdout if stored_ok and cells_ok else sys.stderr)

    def _status(self, args: argparse.Namespace, cell: None) -> None:
        session = self._session
        tracker = session.tracker
        run = session.run
        lines = [f"store:      {masked(tracker.uri)}",
                 f"notebook:   {session.notebook or '(not detected)'}"]
        if run is None:
            lines.append("session:    none (run `%mlops start`)")
        else:
            run_id = tracker.run_id(run) or "(being created)"
            lines.append(f"session:    {run.name!r} in {run.experiment!r}, run id {run_id}")
        lines += delivery.status_lines(tracker)
        print("\n".join(lines))

    def _sync(self, args: argparse.Namespace, cell: None) -> None:
        """`jupyter-mlops sync` in the cell, with its summary. This kernel's own records are
        its sender's to send: flushed and said first, and left out of the replay."""
        from jupyter_mlops.commands.sync import summary

        tracker = self._session.tracker
        lines, own = [], frozenset[str]()
        if tracker.sending:
            state, _ = delivery.outcome(tracker, delivery.flush_while_progressing(tracker), [])
            lines, own = [f"this notebook: {state}"], frozenset({tracker.session_id})
        found, ok = summary(None, recover=not args.no_recover, exclude=own)
        # The command's lines as it prints them; a failure goes to stderr (red), as `%mlops end`'s.
        print("\n".join(lines + found), file=sys.stdout if ok else sys.stderr)

    def _runs(self, args: argparse.Namespace, cell: None) -> Any:
        from jupyter_mlops.tracking.views import runs_table

        session = self._session
        experiment = session.experiment or session_mod.default_experiment(
            session_mod.notebook_info.detect_path(self._user_ns))
        if getattr(self.shell, "kernel", None) is not None:  # a frontend: the runs browser
            from jupyter_mlops.widgets import runs

            # the session's own records are stored before the read, in the browser's thread
            return runs(experiment, session.tracker.uri, max_results=args.last,
                        settle=lambda: session.tracker.flush(timeout=10))
        session.tracker.flush(timeout=10)
        return runs_table(session.tracker.uri, experiment, args.last)

    def _ui(self, args: argparse.Namespace, cell: None) -> None:
        from jupyter_mlops.tracking.views import ui_hint

        print(ui_hint(self._session.tracker.uri))

    def _register(self, args: argparse.Namespace, cell: None) -> None:
        from jupyter_mlops.models import registry

        session, ns = self._session, self._user_ns
        tracked = logged_run(session, args.source, ns)
        if tracked is not None:  # a tracked cell's model: its run has the metrics and data
            stored = session.tracker.flush(timeout=60)
            run_id = session.tracker.run_id(tracked) if stored else None
            if run_id is None:
                raise registry.RegistryError(
                    f"{args.source}: the run that logged it has not reached "
                    f"{session.tracker.uri} yet; try again (`jupyter-mlops sync` says why)")
            version = registry.register(run_id, args.name, alias=args.alias,
                                        store=session.tracker.uri)
        elif args.source in ns:  # a variable: logged on a run of its own, now
            notebook = session.notebook or session_mod.notebook_info.detect_path(ns)
            version = registry.log_and_register(
                ns[args.source], args.name, alias=args.alias, store=session.tracker.uri,
                experiment=session.experiment or session_mod.default_experiment(notebook),
                run_name=f"register {args.source}", tags=self._register_tags(notebook))
        else:
            if session.run is not None:  # a tracked cell's model reaches the store first
                session.tracker.flush(timeout=60)
            version = registry.register(args.source, args.name, alias=args.alias,
                                        store=session.tracker.uri)
        aliases = "".join(f" @{a}" for a in version.aliases)
        print(f"mlops: registered {version.label}{aliases} from run {version.run_id}")

    def _register_tags(self, notebook: Any) -> dict[str, str]:
        """Where the variable's run comes from: the notebook, git, and the session run."""
        from jupyter_mlops.steps import mlflow_vocabulary as vocab
        from jupyter_mlops.tracking.gitinfo import source_tags

        session = self._session
        tags = source_tags(str(notebook or ""))
        parent = session.tracker.run_id(session.run, timeout=30) if session.run else None
        return tags | ({vocab.PARENT_RUN_TAG: parent} if parent else {})

    def _models(self, args: argparse.Namespace, cell: None) -> Any:
        session = self._session
        if session.run is not None:  # versions the sender is registering are listed too
            session.tracker.flush(timeout=30)
        if getattr(self.shell, "kernel", None) is not None:  # a frontend: the models view
            from IPython.display import display

            from jupyter_mlops.widgets.models_view import models

            # shown from any line of the cell, not only from its last
            display(models(args.model, session.tracker.uri))
            return None
        from jupyter_mlops.models.registry import table

        return table(args.model, store=session.tracker.uri)

    def _promote(self, args: argparse.Namespace, cell: None) -> None:
        from jupyter_mlops.models.registry import promote

        done = promote(args.model, to=args.to, version=args.version, alias=args.alias,
                       condition=args.condition, store=self._session.tracker.uri)
        print(f"mlops: {done.message()}")

    def _drift(self, args: argparse.Namespace, cell: None) -> Any:
        from jupyter_mlops.widgets.drift_view import drift

        ns, session = self._user_ns, self._session
        missing = [n for n in (args.current, args.predictions) if n and n not in ns]
        if missing:
            raise UsageError(f"{', '.join(missing)}: no such variable")
        if session.run is not None:  # a model tracked in this session reaches the store first
            session.tracker.flush(timeout=60)
        result = drift(ns[args.current], args.model,
                       ns[args.predictions] if args.predictions else None,
                       threshold=args.threshold, store=session.tracker.uri)
        verdict = "DRIFTED" if result.drifted else "stable"
        print(f"mlops: {args.current} against {args.model}: {verdict} (max PSI "
              f"{result.max_psi:.3f}); monitor run {result.run_id}")
        return result

    def _value(self, raw: str) -> Any:
        """A literal, else an expression over the user's variables, else the text itself."""
        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            pass  # a literal too deep for the parser is logged as text, not a traceback
        try:
            return eval(raw, self._user_ns)  # noqa: S307 - the user's own notebook
        except Exception:
            return raw


class _RunCardObserver:
    """The run card under a tracked cell (widgets/run_card.py), as the cell's observer."""

    def __init__(self) -> None:
        self.card: Any = None

    def started(self, cell: TrackedCell) -> None:
        from jupyter_mlops.widgets.run_card import cell_card

        # The store's verdict on the run's records comes after the cell: the card asks.
        self.card = cell_card(cell.name, run_id=cell.run_id, tracking_uri=cell.tracker.uri,
                              problems=cell.problems)
        if self.card is not None:  # the run's clock, as MLflow and the panel show its duration
            self.card.started = cell.run.start / 1000

    def finished(self, cell: TrackedCell) -> None:
        if self.card is None:
            return
        if cell.options.model:
            self.card.watch_model(cell.options.model, cell.model_fate)
        self.card.datasets = cell.datasets
        self.card.not_logged = [(k, n) for k, n in cell.not_logged if k != "model"]
        error = f"{type(cell.error).__name__}: {cell.error}" if cell.error else None
        self.card.ended = cell.run.end / 1000 if cell.run.end else None
        self.card.finish(cell.run.status, error=error, params=cell.params, metrics=cell.metrics)


def _card_observer(shell: Any) -> _RunCardObserver | None:
    """A run card under the cell; none in a terminal IPython, which has no frontend for it."""
    return _RunCardObserver() if getattr(shell, "kernel", None) is not None else None


def _settle_cards() -> None:
    """Redraw the run cards above now, with what the flush settled (rejections included),
    rather than at their next tick: the saved notebook then holds their final state."""
    run_card = sys.modules.get("jupyter_mlops.widgets.run_card")
    if run_card is not None:
        run_card.tick_cards()


def _profiler(variable: str | None) -> Any:
    """The reference profile's capture for a tracked cell's model (monitoring/reference.py)."""
    from jupyter_mlops.monitoring.reference import capture

    return lambda model, ns: capture(model, ns, variable)


def _unknown(parser: argparse.ArgumentParser, command: str | None, extra: list[str],
             not_run: str) -> str:
    """The first word the (sub)command does not take, with the option it looks like and the
    subcommand's own usage (argparse would show the top-level one)."""
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    own = subcommands.choices[command] if command else parser
    word = extra[0]
    if word.startswith("-"):
        hint = did_you_mean(word, own._option_string_actions, quote=False)
        said = f"unknown option {word}{f'; {hint}' if hint else ''}"
    else:
        said = f"unexpected argument {word!r}"
    return f"{said}{not_run}\n{own.format_usage()}Try `{own.prog} --help`."


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    """The K=V items of one line, each name given once."""
    pairs = [_split_pair(item) for item in items]
    _once([key for key, _ in pairs])
    return pairs


def _once(names: list[str]) -> None:
    """`a=1 a=2` in one line is refused before anything is logged (it was stored as 2)."""
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        raise UsageError(f"{twice!r} is given twice in one line; give each name once "
                         "(nothing was logged)")


def _split_pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UsageError(f"expected K=V, got {item!r}")
    return key.strip(), value


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(MlopsMagics)


def unload_ipython_extension(ipython: Any) -> None:
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("mlops", None)
