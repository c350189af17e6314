"""`jupyter-mlops compile NOTEBOOK`: write the notebook's Kubeflow Pipelines v2 spec (YAML);
`--sweep grid.yaml` fans the grid out in it (kfp/sweep.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jupyter_mlops.errors import counted

HELP = "compile a tagged notebook into a Kubeflow Pipelines v2 pipeline spec (YAML)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="a tagged .ipynb notebook or py:percent script")
    parser.add_argument("-o", "--output", help="where to write the YAML (default: NOTEBOOK.yaml)")
    add_compile_options(parser)


def add_compile_options(parser: argparse.ArgumentParser) -> None:
    """The options `submit` shares when it compiles a notebook itself."""
    parser.add_argument("--name", help="pipeline name (default: the notebook's, DNS-safe)")
    parser.add_argument("--image", help="base image of every step (default: the notebook's "
                                        "Kale docker_image, else python:X.Y of this Python)")
    parser.add_argument("--packages", nargs="+", default=[], metavar="REQ",
                        help="extra pip requirements every step installs")
    parser.add_argument("--no-install", dest="install_packages", action="store_false",
                        help="steps pip-install nothing: the image (or kfp.local's environment) "
                             "already holds papermill, kfp and the notebook's packages")
    parser.add_argument("--accelerator", default=None,
                        help="accelerator type for resources:gpu=N (default nvidia.com/gpu)")
    parser.add_argument("--pip-index-url", dest="pip_index_urls", action="append", default=[],
                        metavar="URL", help="package index the steps pip-install from; repeatable")
    parser.add_argument("--env", action="append", default=[], type=_environment_variable,
                        metavar="NAME=VALUE", help="environment variable of every step, e.g. "
                        "MLFLOW_TRACKING_URI=http://mlflow:5000; repeatable. Not for secrets: "
                        "the value is written into the YAML; tag the step "
                        "secret:NAME:KEY:ENV to read a Kubernetes Secret instead")
    parser.add_argument("--sweep", metavar="GRID", help="a grid file (YAML: each parameter "
                        "and a list of values, e.g. 'alpha: [0.1, 1.0]'): the steps reading a "
                        "swept parameter run once per combination, in a dsl.ParallelFor; the "
                        "others once, before it")
    parser.add_argument("--parallelism", type=int, metavar="N",
                        help="with --sweep: combinations running at once (default: no limit)")


def _environment_variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def compile_options(args: argparse.Namespace):  # -> CompileOptions, imported lazily
    from jupyter_mlops.kfp import CompileOptions
    from jupyter_mlops.runner.grid import read_grid

    fields = {"name": args.name, "image": args.image, "packages": tuple(args.packages),
              "install_packages": args.install_packages,
              "pip_index_urls": tuple(args.pip_index_urls), "env": dict(args.env),
              "sweep": read_grid(args.sweep) if args.sweep else None,
              "parallelism": args.parallelism}
    if args.accelerator:
        fields["accelerator"] = args.accelerator
    return CompileOptions(**fields)


def run(args: argparse.Namespace) -> int:
    from jupyter_mlops.kfp import compile_notebook

    output = Path(args.output) if args.output else Path(args.notebook).with_suffix(".yaml")
    result = compile_notebook(args.notebook, output, compile_options(args))
    for note in result.warnings:
        print(f"warning: {note}", file=sys.stderr)
    print(f"pipeline {result.name}: {counted(len(result.graph.steps), 'step')}"
          f"{_sweep_line(result)} -> {output}")
    return 0


def _sweep_line(result) -> str:
    """What the fan-out holds, said where the user looks: the combinations, the steps in it."""
    if result.sweep is None:
        return ""
    return (f", sweeping {', '.join(result.sweep.parameters)} over "
            f"{counted(len(result.sweep.items), 'combination')} (per combination: "
            f"{', '.join(sorted(result.sweep.steps))})")
