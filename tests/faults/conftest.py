"""The fault catalogue: every case is a test marked with what its failure would mean.

`@pytest.mark.fault("traceback")` (a bare traceback from our code reaches the user),
`"lost"` (a value or record is lost) or `"wrong"` (a wrong result is served as right). The
session's summary counts the cases tried and, per kind, the cases that failed: the three
counts must be 0. Helpers here check what the user sees: one line, the file or field named,
a non-zero exit.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

KINDS = ("traceback", "lost", "wrong")
_TRIED: list[str] = []
_FAILED: Counter[str] = Counter()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(kind): a fault-catalogue case; kind is one of "
                            + ", ".join(KINDS))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("fault")
    if marker is None or report.when != "call":
        return
    kind = marker.args[0]
    if kind not in KINDS:
        raise ValueError(f"{item.nodeid}: unknown fault kind {kind!r}")
    _TRIED.append(item.nodeid)
    if report.failed:
        _FAILED[kind] += 1


def summary() -> str:
    counts = ", ".join(f"{_FAILED[kind]} {label}" for kind, label in
                       zip(KINDS, ("bare tracebacks", "values lost", "wrong results"), strict=True))
    return f"fault catalogue: {len(_TRIED)} cases tried, {counts}"


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if _TRIED:
        terminalreporter.write_line(summary())


def wait_for(predicate, timeout: float) -> bool:  # noqa: ANN001
    """Whether `predicate()` comes true within `timeout` seconds, polled every 0.1 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def cli(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`jupyter-mlops ARGS` as a user runs it, in `cwd`."""
    argv = [sys.executable, "-m", "jupyter_mlops.cli", *map(str, args)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_clear_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    """A non-zero exit, no traceback, and a message that names each of `names`."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback (most recent call last)" not in output, output
    for name in names:
        assert name in output, f"{name!r} not named in:\n{output}"
