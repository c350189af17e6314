"""`jupyter-mlops models list|show|promote`: the model registry from the command line.

Exit codes: 0 done, 1 an error (unknown model, version or alias, a malformed condition, no
store), 2 a usage error, 3 when a promotion's `--if` did not hold (nothing moved): the code of
a pipeline whose gate failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from jupyter_mlops.commands import say
from jupyter_mlops.errors import counted
from jupyter_mlops.models.registry import PAGE_SIZE
from jupyter_mlops.runner.results import GATE_FAILED_EXIT as EXIT_REFUSED
from jupyter_mlops.steps.mlflow_vocabulary import PREVIOUS_HOLDER_PREFIX, PREVIOUS_NOBODY

HELP = ("registered models: list versions with aliases, metrics and lineage, show one, "
        "promote a version to an alias (champion)")
METRICS_SHOWN = 3  # in a list row; `show` gives them all
PROMOTE_HELP = "give an alias (champion) to a version, if a condition holds"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--tracking-uri", metavar="URI",
                       help="the MLflow store (default: MLFLOW_TRACKING_URI, else ./mlflow.db)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[store], help="versions of every model, or "
                                 "of MODEL: aliases, key metrics, source run, notebook, commit")
    listing.add_argument("model", nargs="?", help="one registered model")
    listing.add_argument("--max-results", type=_positive, default=PAGE_SIZE, metavar="N",
                         help=f"versions in a page, newest first (default {PAGE_SIZE})")
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument("--page-token", metavar="TOKEN",
                       help="the next page: the token the previous page printed")
    pages.add_argument("--all", action="store_true", help="every version, in one table")
    show = actions.add_parser("show", parents=[store], help="a model's versions in full, or one")
    show.add_argument("model")
    _version_options(show, required=False)
    promote_arguments(actions.add_parser("promote", parents=[store], help=PROMOTE_HELP))


def promote_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a promotion, here and in `%mlops promote`."""
    parser.add_argument("model")
    _version_options(parser, required=True)
    parser.add_argument("--to", required=True, metavar="ALIAS", help="the alias to move, e.g. "
                        "champion (promoting an earlier version rolls back)")
    parser.add_argument("--if", dest="condition", metavar="EXPR",
                        help="promote only if this holds: accuracy>=0.8, f1>=champion+0.01 "
                             "(else nothing moves; the command exits with "
                             f"{EXIT_REFUSED})")


def _version_options(parser: argparse.ArgumentParser, required: bool) -> None:
    which = parser.add_mutually_exclusive_group(required=required)
    which.add_argument("--version", type=int, metavar="N", help="version number")
    which.add_argument("--alias", metavar="ALIAS", help="the version holding this alias")


def run(args: argparse.Namespace) -> int:
    from jupyter_mlops.models import registry
    from jupyter_mlops.models.lineage import lineage
    from jupyter_mlops.tracking.destination import masked, open_client, tracking_uri

    store = args.tracking_uri or tracking_uri()
    say(f"opening the registry at {masked(store)}")
    client = open_client(store, create=False)
    if args.action == "list":
        _list(client, args)
    elif args.action == "show":
        if args.version is None and args.alias is None:
            shown = registry.versions(args.model, store=client)
        else:
            shown = [registry.describe(args.model, version=args.version, alias=args.alias,
                                       store=client)]
        print("\n\n".join(_details(v, lineage(client, v.model, v.version)) for v in shown))
    else:
        try:
            done = registry.promote(args.model, to=args.to, version=args.version,
                                    alias=args.alias, condition=args.condition, store=client)
        except registry.PromotionRefused as refused:
            print(refused, file=sys.stderr)
            return EXIT_REFUSED
        print(done.message())
    return 0


def _list(client: Any, args: argparse.Namespace) -> None:
    """A page of versions, and how to see the next: never fewer rows than there are, unsaid."""
    from jupyter_mlops.models import registry

    if args.all:
        shown = registry.VersionPage(registry.versions(args.model, store=client))
    else:
        shown = registry.page(args.model, store=client, max_results=args.max_results,
                              page_token=args.page_token)
    rows = shown.versions
    where = f" of {args.model}" if args.model else ""
    from jupyter_mlops.tracking.destination import masked

    print(_table(rows) if rows else f"no registered model versions{where} in "
                                    f"{masked(client.tracking_uri)}")
    if shown.next_page_token:
        size = ["--max-results", str(args.max_results)] if args.max_results != PAGE_SIZE else []
        again = " ".join(["jupyter-mlops models list", *([args.model] if args.model else []),
                          *size, "--page-token", shown.next_page_token])
        print(f"showing {counted(len(rows), 'version')}, newest first; more: {again} (or --all)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of 1 or more")
    return int(text)


def _table(rows: list[Any]) -> str:
    header = ("MODEL", "VERSION", "ALIASES", "STATUS", "METRICS", "RUN", "NOTEBOOK", "COMMIT")
    cells = [header] + [(
        v.model, str(v.version), " ".join(f"@{a}" for a in v.aliases), v.status,
        _metrics(v, METRICS_SHOWN), (v.run_id or "")[:8],
        (v.notebook or "").rpartition("/")[2], (v.git_commit or "")[:8],
    ) for v in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def _details(v: Any, origin: Any) -> str:
    created = dt.datetime.fromtimestamp(v.created_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
    previous = [f"@{a} (first)" if v.previous(a) == PREVIOUS_NOBODY else f"@{a} from "
                f"v{v.previous(a)}" for a in sorted(_promoted(v.tags))]
    lines = [
        f"{v.label}  {' '.join(f'@{a}' for a in v.aliases)}".rstrip(),
        f"  status:     {v.status}, created {created}",
        f"  run:        {v.run_id or '-'}",
        f"  notebook:   {v.notebook or '-'}",
        f"  git commit: {v.git_commit or '-'}",
        f"  metrics:    {_metrics(v) or '-'}",
        f"  gates:      {_gates(v) or '-'}",
        f"  params:     {' '.join(f'{k}={x}' for k, x in sorted(origin.params.items())) or '-'}",
        f"  data:       {_data(origin.datasets) or '-'}",
        f"  source:     {v.source}",
    ]
    if previous:
        lines.append(f"  promoted:   {', '.join(previous)}")
    return "\n".join(lines)


def _gates(v: Any) -> str:
    """Each gate's verdict, as the pipeline that registered the version judged it."""
    return "\n              ".join(r.message for r in v.gates)


def _data(datasets: list[Any]) -> str:
    """Each dataset of the version's run: name (`output:` for a step's), digest, rows."""
    from jupyter_mlops.models.lineage import dataset_label

    return "; ".join(f"{dataset_label(d)} {d.digest[:8]}"
                     + (f", {d.rows} rows" if d.rows is not None else "") for d in datasets)


def _promoted(tags: dict[str, str]) -> list[str]:

    return [k.removeprefix(PREVIOUS_HOLDER_PREFIX) for k in tags
            if k.startswith(PREVIOUS_HOLDER_PREFIX)]


def _metrics(v: Any, limit: int | None = None) -> str:
    shown = v.key_metrics(limit)
    more = " ..." if limit is not None and len(v.metrics) > limit else ""
    return " ".join(f"{k}={x:.4g}" for k, x in shown) + more
