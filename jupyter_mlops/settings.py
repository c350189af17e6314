"""Every `JUPYTER_MLOPS_*` environment variable, declared once with its default and help.

Code reads a setting through its declaration (`settings.STDOUT_CAP.get()`), when it needs the
value, so a variable set after import still counts. The README's table of settings is
`markdown_table()`; a test keeps the two the same. Standard library only: every layer and the
KFP step containers may import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from jupyter_mlops.errors import MlopsError

T = TypeVar("T")


class SettingError(MlopsError, ValueError):
    """An environment variable holds a value its setting cannot use; names the variable."""


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: its name, its default as text ("" for none), what it does."""

    name: str
    default: str
    help: str
    parse: Callable[[str], T]
    kind: str  # what the value is, in words, for the README and error messages

    def get(self) -> T:
        """The variable's value when set and not blank, else the default, parsed."""
        text = os.environ.get(self.name, "").strip() or self.default
        try:
            return self.parse(text)
        except ValueError:
            raise SettingError(f"{self.name}={text!r}: not {self.kind} ({self.help})") from None


def _optional_text(text: str) -> str | None:
    return text or None


def _optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text else None


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # also NaN
        raise ValueError(text)
    return value


def _level(text: str) -> str:
    if text.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(text)
    return text.upper()


NOTEBOOK = Setting(
    "JUPYTER_MLOPS_NOTEBOOK", "",
    "the notebook a kernel runs, for front ends that do not say (JupyterLab and Notebook 7 "
    "set JPY_SESSION_NAME); tracked runs are tagged with it",
    _optional_text, "a path")
SPOOL_DIR = Setting(
    "JUPYTER_MLOPS_SPOOL_DIR", "",
    "folder of the tracking spool, the records kept while the MLflow store is unreachable; "
    "empty: `.jupyter_mlops/spool` beside a SQLite store, else "
    "`~/.jupyter_mlops/spool/<store hash>`",
    _optional_path, "a path")
SENDER_IDLE = Setting(
    "JUPYTER_MLOPS_SENDER_IDLE", "60",
    "seconds an idle background sender process waits for new records before it exits",
    _positive_float, "a positive number of seconds")
STDOUT_CAP = Setting(
    "JUPYTER_MLOPS_STDOUT_CAP", "100000",
    "characters of a tracked cell's stdout kept in its MLflow run; the rest is cut with a note",
    _positive_int, "a positive whole number")
STEP_OUTPUT_CAP = Setting(
    "JUPYTER_MLOPS_STEP_OUTPUT_CAP", str(10 * 2**20),
    "bytes of a pipeline step's outputs kept in its executed notebook; the rest goes to "
    "`logs/<step>.output.log` in the run folder",
    _positive_int, "a positive whole number")
KFP_CONFIG = Setting(
    "JUPYTER_MLOPS_KFP_CONFIG", "~/.config/jupyter-mlops/kfp.json",
    "JSON file with the Kubeflow Pipelines host, token and namespace used by submit when "
    "neither arguments nor KFP_* variables give them",
    _path, "a path")
UI_URL = Setting(
    "JUPYTER_MLOPS_UI_URL", "",
    "base URL of the MLflow UI that run links open (run card, runs browser, JupyterLab panel; "
    "the server's MlopsExtension.mlflow_ui_url wins there); empty: the tracking server itself "
    "for http(s) stores, else http://127.0.0.1:5000 where `mlflow ui` serves",
    _optional_text, "a URL")
LOG_LEVEL = Setting(
    "JUPYTER_MLOPS_LOG_LEVEL", "WARNING",
    "level of the jupyter_mlops.* log messages the command line prints (DEBUG, INFO, WARNING, "
    "ERROR); each -v of a command is one level lower",
    _level, "a log level")

ALL: tuple[Setting[Any], ...] = (NOTEBOOK, SPOOL_DIR, SENDER_IDLE, STDOUT_CAP, STEP_OUTPUT_CAP,
                                 KFP_CONFIG, UI_URL, LOG_LEVEL)


def check() -> None:
    """Every setting's value parsed, so a bad one is named before any work starts."""
    for setting in ALL:
        setting.get()


def markdown_table() -> str:
    """The settings as the README lists them."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {f'`{s.default}`' if s.default else '(none)'} | {s.help} |"
             for s in ALL]
    return "\n".join(rows) + "\n"
