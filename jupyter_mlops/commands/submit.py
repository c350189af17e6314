"""`jupyter-mlops submit NOTEBOOK|pipeline.yaml`: a run or a recurring run on Kubeflow Pipelines."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops.commands.compile import add_compile_options, compile_options

if TYPE_CHECKING:
    from jupyter_mlops.notebook import StepGraph

HELP = "submit a notebook or a compiled pipeline.yaml to Kubeflow Pipelines (run or schedule)"
PACKAGE_SUFFIXES = (".yaml", ".yml", ".json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="a tagged notebook (compiled first) or a pipeline.yaml")
    parser.add_argument("--host", help="KFP API URL (else KFP_HOST, else the config file)")
    parser.add_argument("--token", help="bearer token (else KFP_TOKEN, else the config file)")
    parser.add_argument("--namespace", help="Kubernetes namespace of a multi-user KFP")
    parser.add_argument("--config", help="JSON config with host/token/namespace/cookies "
                                         "(default ~/.config/jupyter-mlops/kfp.json)")
    parser.add_argument("--experiment", help="KFP experiment (default: the notebook's, "
                                             "else 'Default')")
    parser.add_argument("--run-name", help="display name of the run")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="a pipeline parameter, read by its declared type; repeatable")
    parser.add_argument("--schedule", metavar="CRON",
                        help="create a recurring run on this cron schedule: KFP's 6 fields "
                        "(seconds minute hour day-of-month month day-of-week), or a 5-field "
                        "crontab line, e.g. '0 6 * * *'")
    add_compile_options(parser)


def run(args: argparse.Namespace) -> int:
    from jupyter_mlops.kfp.arguments import typed_arguments
    from jupyter_mlops.kfp.connection import resolve_connection
    from jupyter_mlops.kfp.submit import experiment_name, kfp_cron, submit_package

    if args.schedule:
        kfp_cron(args.schedule)  # a malformed schedule is named before anything is compiled
    connection = resolve_connection(args.host, args.token, args.namespace, args.config)
    with tempfile.TemporaryDirectory(prefix="mlops-submit-") as folder:
        package, graph = _package(args, Path(folder))
        arguments = typed_arguments([tuple(pair) for pair in args.parameter],
                                    _text(package), str(package), graph)
        submission = submit_package(package, connection, arguments=arguments,
                                    experiment=experiment_name(graph, args.experiment),
                                    run_name=args.run_name, schedule=args.schedule)
    print(f"created {submission.kind} {submission.id}: {submission.url}")
    return 0


def _text(package: Path) -> str:
    from jupyter_mlops.errors import KfpSubmitError

    try:
        return package.read_text("utf-8")
    except UnicodeDecodeError as error:
        raise KfpSubmitError(f"{package} is not UTF-8 text: {error}") from None
    except OSError as error:
        raise KfpSubmitError(f"{package} cannot be read: {error}") from None


def _package(args: argparse.Namespace, folder: Path) -> tuple[Path, StepGraph | None]:
    """The YAML to send and the notebook's graph; a notebook is compiled into `folder`."""
    from jupyter_mlops.errors import KfpSubmitError

    target = Path(args.target)
    if not target.is_file():
        raise KfpSubmitError(f"{target} does not exist")
    if target.suffix.lower() in PACKAGE_SUFFIXES:
        if args.sweep:
            raise KfpSubmitError(f"--sweep needs the notebook, not the compiled {target}")
        return target, None
    from jupyter_mlops.kfp import compile_notebook

    output = folder / f"{target.stem}.yaml"
    result = compile_notebook(target, output, compile_options(args))
    for note in result.warnings:
        print(f"warning: {note}", file=sys.stderr)
    return output, result.graph
