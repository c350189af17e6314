"""`jupyter-mlops sync`: replay spooled records to their store and settle runs of dead kernels."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("replay spooled tracking records and mark runs of dead kernels FAILED; fails while "
        "records the store rejected are kept in a quarantine file")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spool-dir", action="append", type=Path, default=[],
        help="spool folder to replay (repeatable; default: the spool of MLFLOW_TRACKING_URI "
             "or ./mlflow.db, and every server's spool under ~/.jupyter_mlops/spool)")
    parser.add_argument("--no-recover", action="store_true",
                        help="only replay; leave RUNNING runs alone")


def run(args: argparse.Namespace) -> int:
    lines, ok = summary(args.spool_dir, recover=not args.no_recover)
    for line in lines:
        print(line)
    return 0 if ok else 1


def summary(spool_dirs: list[Path] | None, recover: bool = True,
            exclude: frozenset[str] = frozenset()) -> tuple[list[str], bool]:
    """What the command does and says, also for `%mlops sync`: the lines, and whether all is
    well (nothing failed, nothing kept as rejected)."""
    from jupyter_mlops.tracking.sync import sync

    report = sync(spool_dirs, recover=recover, exclude=exclude)
    lines = report.lines()
    if recover:
        lines += _settle_local_runs()
    return lines, report.ok


def _settle_local_runs() -> list[str]:
    """Local pipeline runs (./.mlops) whose runner process died are marked failed too."""
    from jupyter_mlops.runner.rundir import DEAD, settle_dead_runs

    return [f"local run {run_id} marked failed: {DEAD}" for run_id in settle_dead_runs()]
