"""`jupyter-mlops run NOTEBOOK`: run a tagged notebook's steps as a local pipeline."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "run a tagged notebook as a local pipeline: parallel steps, data passing, cache, MLflow"
EPILOG = ("exit codes: 0 the run passed; 1 a step failed; 2 bad usage; 3 a gate failed "
          "(gate:METRIC>=VALUE; its metric, value and threshold are printed) or its model "
          "could not be registered; 130 interrupted. Errors in the notebook, its tags or "
          "parameters also exit 1 before anything runs.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("notebook", help="a tagged .ipynb notebook or py:percent script")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="set a parameter; VALUE is read by the parameter's declared type "
                             "(1e-3, true, [1, 2], {'a': 1})")
    parser.add_argument("-f", "--params-file", metavar="FILE",
                        help="a YAML file of name: value parameters (-p wins over it)")
    parser.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                        help="steps run at the same time (default: the CPU count)")
    parser.add_argument("--no-cache", action="store_true",
                        help="run every step, even when a cached result matches")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--from", dest="from_step", metavar="STEP",
                       help="run STEP and everything after it; reuse cached upstream results")
    start.add_argument("--only", metavar="STEP",
                       help="run only STEP, its inputs taken from cached upstream results")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="folder for runs/ and cache/ (default: .mlops)")
    parser.add_argument("--fresh-kernels", action="store_true",
                        help="start a new kernel for every step instead of reusing a reset one")
    parser.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    parser.add_argument("--quiet", "-q", action="store_true", help="print no progress")
    parser.add_argument("--report", metavar="FILE",
                        help="write a Markdown summary for CI: parameters, metrics against the "
                             "champion, gate results, links")


def run(args: argparse.Namespace) -> int:
    from jupyter_mlops.runner import RunOptions, run_pipeline

    if args.jobs is not None and args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    result = run_pipeline(args.notebook, RunOptions(
        params_file=args.params_file, cli_parameters=tuple(tuple(p) for p in args.parameter),
        jobs=args.jobs, cache=not args.no_cache, from_step=args.from_step, only=args.only,
        out=args.out, track=not args.no_track, quiet=args.quiet,
        fresh_kernels=args.fresh_kernels, wait_for_store=False, report=args.report))
    for failure in result.failures:
        print(f"\n{failure.details}", file=sys.stderr)
    if result.gate_error is not None:
        print(f"error: {result.gate_error}", file=sys.stderr)
    if args.report:
        print(f"report: {args.report}")
    print(f"run folder: {result.run_dir}")
    if result.tracking_uri is not None:
        _where_tracked(result)
    return result.exit_code


def _where_tracked(result: Any) -> None:
    """The command does not wait for MLflow: say where the run will appear."""
    from jupyter_mlops.tracking.destination import masked, view_hint

    run = f"run {result.mlflow_run_id}" if result.mlflow_run_id else f"run pipeline-{result.run_id}"
    print(f"MLflow: {run} in experiment {result.mlflow_experiment!r} at "
          f"{masked(result.tracking_uri)} (sent in the background; `jupyter-mlops sync` "
          "reports what the store did not take)")
    print(f"  view it: {view_hint(result.tracking_uri)}")
