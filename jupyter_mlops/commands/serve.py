"""`jupyter-mlops serve MODEL@ALIAS`: a registered version behind MLflow's scoring server."""

from __future__ import annotations

import argparse

HELP = ("serve a registered model version (MODEL@ALIAS or MODEL/VERSION) with MLflow's "
        "scoring server on 127.0.0.1: POST JSON to /invocations")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL@ALIAS", help="e.g. churn@champion or churn/3")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000)")


def run(args: argparse.Namespace) -> int:
    from jupyter_mlops.models.serving import serve

    return serve(args.model, port=args.port, announce=lambda line: print(line, flush=True))
