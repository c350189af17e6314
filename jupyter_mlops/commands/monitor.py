"""`jupyter-mlops monitor DATA --model MODEL@ALIAS`: drift for cron and CI, and retraining.

Reads the new data (Parquet or CSV), compares it with the model version's reference profile,
logs a monitor run beside the model, prints the verdict, tells a webhook, and on drift runs
the training notebook again as a local pipeline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from jupyter_mlops.commands import say
from jupyter_mlops.errors import MlopsError

HELP = "compare new data with a model's training data: log a monitor run, retrain on drift"
DRIFTED_EXIT = 4  # distinct from the run command's 1 (a step failed) and 3 (a gate failed)
EPILOG = (f"exit codes: 0 stable; {DRIFTED_EXIT} drifted (a feature's or the predictions' PSI "
          "above --threshold), also when --retrain then ran or submitted the notebook; 1 an "
          "error (unreadable data, mismatched columns, a model without a reference profile, a "
          "webhook that refused the summary (said after any retraining), a KFP server that "
          "refused the run); 2 bad usage; "
          "with --retrain run here, the run's own code when the retraining failed (1 a step "
          "failed, 3 a gate failed).")
READERS = {".parquet": "read_parquet", ".pq": "read_parquet", ".csv": "read_csv",
           ".gz": "read_csv"}
SHOWN = 5  # features listed in the verdict


class MonitorError(MlopsError):
    """The data cannot be read, or the webhook did not take the summary."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("data", metavar="DATA", help="the new data: a .parquet or .csv file")
    reference = parser.add_mutually_exclusive_group(required=True)
    reference.add_argument("--model", metavar="MODEL@ALIAS",
                           help="the reference: a registered version (MODEL@ALIAS, MODEL/N) or "
                                "a run id, whose stored training data profile is compared")
    reference.add_argument("--reference", metavar="FILE",
                           help="the reference data itself, a .parquet or .csv file")
    parser.add_argument("--predictions", metavar="COLUMN",
                        help="a column of DATA holding the model's predictions (prediction "
                             "drift); left out of the features")
    parser.add_argument("--threshold", type=float, default=0.25, metavar="PSI",
                        help="PSI above which a feature has drifted (default 0.25)")
    parser.add_argument("--retrain", metavar="NOTEBOOK",
                        help="on drift, run this training notebook as a local pipeline")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a parameter of the retraining run")
    parser.add_argument("--submit", action="store_true",
                        help="with --retrain: compile the notebook and submit it to Kubeflow "
                             "Pipelines instead of running it here")
    parser.add_argument("--host", help="with --submit: the KFP API URL (else KFP_HOST, else "
                                       "the config file)")
    parser.add_argument("--notify", metavar="URL",
                        help="POST a JSON summary (verdict, max PSI, drifted features, run id)")
    parser.add_argument("--experiment", help="experiment of the monitor run (default: the "
                                             "model's training run's)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="the MLflow store (default: MLFLOW_TRACKING_URI, else ./mlflow.db)")


def run(args: argparse.Namespace) -> int:
    from jupyter_mlops.models.registry import client_for
    from jupyter_mlops.monitoring.monitor import bands_for, log_run, measure, summary
    from jupyter_mlops.tracking.destination import masked, tracking_uri
    from jupyter_mlops.widgets.drift_view import report_page

    if args.submit and not args.retrain:
        print("error: --submit submits the --retrain notebook; give --retrain NOTEBOOK",
              file=sys.stderr)
        return 2
    if args.parameter and not args.retrain:
        print("error: -p sets a parameter of the --retrain notebook; give --retrain NOTEBOOK",
              file=sys.stderr)
        return 2
    if args.notify and not args.notify.startswith(("http://", "https://")):
        print(f"error: --notify {args.notify}: expected an http:// or https:// URL",
              file=sys.stderr)
        return 2
    check_retrain(args)
    store = args.tracking_uri or tracking_uri()
    current = read_data(args.data)
    predictions = None
    if args.predictions:
        if args.predictions not in current.columns:
            raise MonitorError(f"{args.data} has no column {args.predictions!r} (--predictions)")
        predictions = current.pop(args.predictions)
    reference = args.model or read_data(args.reference)
    say(f"opening the registry at {masked(store)}")
    client = client_for(store)  # once, for the reference and the monitor run
    report, source = measure(current, reference, predictions, bands=bands_for(args.threshold),
                             store=client)
    if args.reference:
        source = dataclasses.replace(source, label=args.reference)
    title = f"Drift of {Path(args.data).name} against {source.label}"
    run_id = log_run(report, source, html=report_page(report, title), store=client,
                     experiment=args.experiment)
    print(verdict(report, source.label, args.data))
    print(f"monitor run {run_id} at {store}")
    undelivered = None
    if args.notify:
        try:
            notify(args.notify, {**summary(report, source, run_id), "data": args.data})
            print(f"notified {args.notify}")
        except MonitorError as error:  # said last: a webhook that is down stops no retraining
            undelivered = error
    code = act(report, args, store)
    if undelivered is not None:
        raise undelivered
    return code


def check_retrain(args: argparse.Namespace) -> None:
    """The --retrain notebook and its -p values, read before the drift is measured: a typo
    found only on the day drift comes (from cron) would stop the retraining it was for."""
    if not args.retrain:
        return
    from jupyter_mlops.notebook import read_graph
    from jupyter_mlops.runner import RunOptions

    graph = read_graph(args.retrain)
    RunOptions(cli_parameters=tuple(tuple(p) for p in args.parameter)).parameter_values(graph)


def act(report: Any, args: argparse.Namespace, store: str) -> int:
    """What the verdict calls for: nothing, the drift code, or retraining."""
    if not report.drifted:
        return 0
    if args.submit:
        return submit(args, store)
    return retrain(args, store) if args.retrain else DRIFTED_EXIT


def read_data(path: str) -> Any:
    """A Parquet or CSV file as a DataFrame, or MonitorError naming the file."""
    import pandas as pd

    reader = READERS.get(Path(path).suffix.lower())
    if reader is None:
        raise MonitorError(f"{path}: expected a .parquet or .csv file")
    try:
        return getattr(pd, reader)(path)
    except FileNotFoundError:
        raise MonitorError(f"{path} does not exist") from None
    except Exception as error:  # pyarrow's and the CSV parser's errors alike
        raise MonitorError(f"{path} cannot be read: {type(error).__name__}: {error}") from None


def verdict(report: Any, label: str, data: str) -> str:
    """`DRIFTED: ...` or `stable: ...`, with the largest PSIs."""
    frame = report.to_frame().head(SHOWN)
    head = "DRIFTED" if report.drifted else "stable"
    lines = [f"{head}: {data} against {label}: max PSI {report.max_psi:.3f} (threshold "
             f"{report.bands.significant:g}), {report.current_rows:,} rows"]
    lines += [f"  {row.feature:<24} PSI {row.psi:7.3f}  {row.band}" for row in frame.itertuples()]
    lines += [f"note: {note}" for note in report.notes]  # how far to trust the numbers above
    return "\n".join(lines)


def notify(url: str, body: dict[str, Any]) -> None:
    """POST the summary as JSON; anything but a 2xx answer is a MonitorError."""
    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - the user's URL
            reply.read()
    except (urllib.error.URLError, OSError) as error:
        raise MonitorError(f"--notify {url}: the summary was not delivered ({error})") from None


def retrain(args: argparse.Namespace, store: str) -> int:
    """Run the training notebook locally; the drift code when it passed, else its own."""
    from jupyter_mlops.runner import RunOptions, run_pipeline

    print(f"retraining: {args.retrain}", flush=True)
    result = run_pipeline(args.retrain, RunOptions(
        cli_parameters=tuple(tuple(p) for p in args.parameter), tracking_uri=store,
        quiet=True, wait_for_store=True))
    for failure in result.failures:
        print(f"\n{failure.details}", file=sys.stderr)
    if result.gate_error is not None:
        print(f"error: {result.gate_error}", file=sys.stderr)
    outcome = "passed" if result.exit_code == 0 else f"failed (exit {result.exit_code})"
    print(f"retraining {outcome}: run folder {result.run_dir}")
    return DRIFTED_EXIT if result.exit_code == 0 else int(result.exit_code)


def submit(args: argparse.Namespace, store: str) -> int:
    """Compile the training notebook and submit it to KFP, the monitor's store as its
    MLflow store; the drift code once the run is created."""
    from jupyter_mlops.kfp import compile_notebook
    from jupyter_mlops.kfp.arguments import typed_arguments
    from jupyter_mlops.kfp.connection import resolve_connection
    from jupyter_mlops.kfp.names import TRACKING_PARAMETER
    from jupyter_mlops.kfp.submit import submit_package

    connection = resolve_connection(args.host)
    with tempfile.TemporaryDirectory(prefix="mlops-retrain-") as folder:
        package = Path(folder) / f"{Path(args.retrain).stem}.yaml"
        compiled = compile_notebook(args.retrain, package)
        given = [*(tuple(p) for p in args.parameter), (TRACKING_PARAMETER, store)]
        arguments = typed_arguments(given, package.read_text("utf-8"), str(package),
                                    compiled.graph)
        submission = submit_package(package, connection, arguments=arguments,
                                    experiment=compiled.graph.experiment or compiled.graph.name,
                                    run_name=f"retrain on drift ({Path(args.data).name})")
    print(f"retraining submitted: {submission.kind} {submission.id}: {submission.url}")
    return DRIFTED_EXIT
