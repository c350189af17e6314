"""`jupyter-mlops deploy MODEL@ALIAS --kserve`: a KServe InferenceService manifest, not applied."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("write a KServe InferenceService for a registered model version (apply it with "
        "kubectl; nothing is sent to a cluster from here)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL@ALIAS", help="e.g. churn@champion or churn/3")
    parser.add_argument("--kserve", action="store_true", required=True,
                        help="the target: a KServe InferenceService (the only one so far)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="YAML file to write (default: standard output)")
    parser.add_argument("--name", default=None,
                        help="the InferenceService's name (default: from the model's name)")


def run(args: argparse.Namespace) -> int:
    import yaml

    from jupyter_mlops.models.serving import inference_service

    manifest, warnings = inference_service(args.model, name=args.name)
    text = yaml.safe_dump(manifest, sort_keys=False)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: InferenceService {manifest['metadata']['name']!r}",
          file=sys.stderr)
    return 0
