"""`python -m jupyter_mlops.demo [NOTEBOOK]`: the example notebook as a pipeline, three times.

Once on its defaults, once with another set of parameters (only the steps that read them run
again), once unchanged (every step from the cache), all tracked in the embedded MLflow store.
Then a short table of the runs and how to open them. `make demo` runs this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks" / "02_tagged_pipeline.ipynb"
# The example's second set: both models change, the data and features are reused.
EXAMPLE_VARIANT = {"n_estimators": 60, "max_depth": 5, "C": 0.3}


def variant(notebook: Path, graph: Any) -> dict[str, Any]:
    """Another set of parameters: the example's own, else the first number parameter bumped."""
    if notebook.resolve() == EXAMPLE:
        return dict(EXAMPLE_VARIANT)
    for parameter in graph.parameters.values():
        if parameter.type in ("int", "float"):
            return {parameter.name: parameter.default + 1}
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlops.demo", description=__doc__)
    parser.add_argument("notebook", nargs="?", default=str(EXAMPLE))
    parser.add_argument("--out", default=None, help="folder for runs/ and cache/ (.mlops)")
    args = parser.parse_args(argv)
    # As the command line does: jsonschema's optional IRI grammar costs seconds and no notebook
    # schema uses it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

    from jupyter_mlops.errors import MlopsError
    from jupyter_mlops.notebook import read_graph
    from jupyter_mlops.runner import RunOptions, run_pipeline
    from jupyter_mlops.runner.mlflow_runs import close_trackers
    from jupyter_mlops.tracking.destination import tracking_uri

    notebook = Path(args.notebook)
    uri = tracking_uri()
    try:
        other = variant(notebook, read_graph(str(notebook)))
        plans = [("defaults", {}), ("changed: " + _show(other), other), ("unchanged", {})]
        results = []
        for n, (label, parameters) in enumerate(plans, 1):
            print(f"\n== run {n} of 3: {label}", flush=True)
            options = RunOptions(parameters=parameters, out=args.out, tracking_uri=uri)
            results.append((label, run_pipeline(notebook, options)))
    except MlopsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        close_trackers()
    print(summary(results, uri))
    return 0 if all(result.ok for _, result in results) else 1


def summary(results: list[tuple[str, Any]], uri: str) -> str:
    """The runs as a table, then where to look at them."""
    from jupyter_mlops.tracking.destination import DEFAULT_UI

    rows = [("run", "parameters", "status", "steps run / cached", "metrics", "time")]
    for n, (label, result) in enumerate(results, 1):
        counts = [s.status for s in result.steps.values()]
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(result.metrics.items()))
        rows.append((str(n), label, result.status,
                     f"{counts.count('ok')} / {counts.count('cached')}",
                     metrics or "-", f"{result.duration:.1f} s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["", *(_row(row, widths) for row in rows)]
    lines.insert(2, _row(tuple("-" * width for width in widths), widths))
    last = results[-1][1]
    lines += [
        "",
        f"Run folders (executed step notebooks, values, run.json): {last.run_dir.parent}",
        f"MLflow store: {uri}",
        f"  open the runs:  {_mlflow_ui(uri)}   then {DEFAULT_UI}",
        "  open the notebook in JupyterLab:  make lab",
    ]
    return "\n".join(lines)


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def _mlflow_ui(uri: str) -> str:
    bin_dir = Path(sys.executable).parent
    mlflow = bin_dir / "mlflow" if (bin_dir / "mlflow").exists() else "mlflow"
    return f"{mlflow} ui --backend-store-uri {uri} --host 127.0.0.1"


def _show(parameters: dict[str, Any]) -> str:
    return " ".join(f"{name}={value!r}" for name, value in parameters.items()) or "none"


if __name__ == "__main__":
    sys.exit(main())
