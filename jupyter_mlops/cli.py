"""`jupyter-mlops` (also `jupyter mlops`): a thin dispatcher over one module per subcommand."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from importlib import import_module

from jupyter_mlops import settings
from jupyter_mlops._version import __version__
from jupyter_mlops.errors import MlopsError

# Subcommand -> module under jupyter_mlops.commands. Each module defines HELP,
# add_arguments(parser) and run(args) -> int, and imports nothing heavy at module level.
COMMANDS: dict[str, str] = {
    "graph": "graph",
    "run": "run",
    "compile": "compile",
    "submit": "submit",
    "sync": "sync",
    "models": "models",
    "serve": "serve",
    "deploy": "deploy",
    "monitor": "monitor",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter-mlops",
        description="Tracked runs, local pipelines and Kubeflow pipelines from one notebook.",
    )
    parser.add_argument("--version", action="version", version=f"jupyter-mlops {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help=f"log more: -v info, -vv debug (else {settings.LOG_LEVEL.name})")
    for name, module_name in COMMANDS.items():
        module = import_module(f"jupyter_mlops.commands.{module_name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP,
                                    parents=[common])
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # jsonschema's optional IRI check builds a grammar at import (about 2 s here); notebook
    # schemas use no IRI formats, so the command line goes without it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        settings.check()
        configure_logging(args.verbose)
        return int(args.handler(args) or 0)
    except MlopsError as error:  # one line: a message quoting a library's may span several
        print("error: " + " ".join(line.strip() for line in str(error).splitlines()),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class _Stderr(logging.Handler):
    """`level: message` lines on the current sys.stderr (a test may have replaced it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {self.format(record)}\n")
        except Exception:  # noqa: BLE001 - logging's own policy for a handler that fails
            self.handleError(record)


def configure_logging(verbose: int = 0) -> None:
    """jupyter_mlops.* messages on stderr from JUPYTER_MLOPS_LOG_LEVEL, one level lower per -v;
    once per process however often `main` runs."""
    level = logging.getLevelName(settings.LOG_LEVEL.get()) - 10 * verbose
    logger = logging.getLogger("jupyter_mlops")
    logger.setLevel(max(level, logging.DEBUG))
    if not any(isinstance(handler, _Stderr) for handler in logger.handlers):
        logger.addHandler(_Stderr())


def console_main() -> int:
    """The `jupyter-mlops` command: `main`, then an exit without the final garbage collection.

    At exit the interpreter collects every object the process ever made, 0.1 s here once
    papermill, nbformat and jupyter_client are loaded, to reclaim memory the exit returns
    anyway. Freezing them skips it; `atexit` handlers still run and streams are flushed.
    Only for the process's own command: `main` called in a longer-lived process keeps its
    collector.
    """
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
