"""One module per `jupyter-mlops` subcommand; each stays cheap to import.

Modules are named after the subcommand they run (graph, monitor, submit, sync), even where
another package has a module of that name: here the name is the command's.
"""

from __future__ import annotations

import sys


def say(text: str) -> None:
    """A progress line on stderr before what can take seconds (importing mlflow and opening a
    store, loading a model), so a slow command is not silent; scripts reading stdout see only
    the results."""
    print(f"{text}...", file=sys.stderr, flush=True)
