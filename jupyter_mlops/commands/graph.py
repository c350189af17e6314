"""`jupyter-mlops graph NOTEBOOK`: print the step graph, its edges, parameters and warnings."""

from __future__ import annotations

import argparse

HELP = "print a notebook's step graph: steps, edges with the names they carry, warnings"
FORMAT_NAMES = ("text", "json", "mermaid", "dot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="a tagged .ipynb notebook or py:percent script")
    parser.add_argument("--format", choices=FORMAT_NAMES, default="text")


def run(args: argparse.Namespace) -> int:
    from jupyter_mlops.notebook import read_graph
    from jupyter_mlops.notebook.render import FORMATS

    print(FORMATS[args.format](read_graph(args.notebook)))
    return 0
