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
    from jupyter_mlops.tracking.sync import sync

    report = sync(args.spool_dir, recover=not args.no_recover)
    for line in report.lines():
        print(line)
    if not args.no_recover:
        _settle_local_runs()
    return 0 if report.ok else 1


def _settle_local_runs() -> None:
    """Local pipeline runs (./.mlops) whose runner process died are marked failed too."""
    from jupyter_mlops.runner.rundir import DEAD, settle_dead_runs

    for run_id in settle_dead_runs():
        print(f"local run {run_id} marked failed: {DEAD}")
