"""A run's Markdown summary for CI (`jupyter-mlops run --report report.md`).

What a reviewer of a pull request wants in one comment: did it pass, with which parameters,
how its metrics compare with the champion's, each gate's verdict, what was registered or
promoted, and where to look further (the MLflow run, the run folder).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import RunnerError
from jupyter_mlops.runner.results import PipelineResult


def check_report_path(path: str | Path) -> None:
    """Before the run: a folder given as the report would be found only once the run ended."""
    if Path(path).is_dir():
        raise RunnerError(f"the report {path} is a folder; give a file, such as "
                          f"{Path(path) / 'report.md'}")


def write_report(result: PipelineResult, path: str | Path) -> Path:
    """Write `result` as Markdown to `path` (folders created) and return the path."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_report(result), encoding="utf-8")
    except OSError as error:
        raise RunnerError(f"cannot write the report {target}: {error.strerror}") from None
    return target


def render_report(result: PipelineResult) -> str:
    release = result.release
    verdict = "passed" if result.ok else "FAILED"
    parts = [f"# {Path(result.notebook).name}: {verdict}",
             f"Run `{result.run_id}`, {result.status}, exit code {result.exit_code}, "
             f"{result.duration:.1f} s."]
    if result.gate_error is not None:
        parts.append(f"> **{result.gate_error}**")
    parts += _section("Parameters", ["parameter", "value"],
                      [[name, f"`{value!r}`"] for name, value in sorted(result.parameters.items())])
    parts += _section(*_metrics(result.metrics, getattr(release, "champion", None)))
    if release is not None:
        parts += _section("Gates", ["gate", "value", "threshold", "result"], [
            [f"`{r.gate}`", _number(r.value), _number(r.threshold),
             ("passed" if r.passed else "**failed**") + _why(r)] for r in release.results])
        if release.notes:
            parts += ["## Model", "\n".join(f"- {note}" for note in release.notes)]
    parts += _section("Steps", ["step", "status", "duration"], [
        [name, step.status + (f": {step.error}" if step.error else ""), f"{step.duration:.1f} s"]
        for name, step in result.steps.items()])
    parts += ["## Links", "\n".join(f"- {link}" for link in _links(result))]
    return "\n\n".join(parts) + "\n"


def _metrics(metrics: dict[str, float], champion: Any) -> tuple[str, list[str], list[list[str]]]:
    """This run's metrics, beside the champion's when the registry has one."""
    if champion is None or not champion.version:
        return "Metrics", ["metric", "this run"], [[k, _number(v)] for k, v in
                                                   sorted(metrics.items())]
    rows = []
    for name, value in sorted(metrics.items()):
        theirs = champion.metrics.get(name)
        delta = "" if theirs is None else f"{value - theirs:+.4g}"
        rows.append([name, _number(value), _number(theirs), delta])
    return "Metrics", ["metric", "this run", champion.label, "difference"], rows


def _links(result: PipelineResult) -> list[str]:
    links = [f"run folder: `{result.run_dir}`"]
    from jupyter_mlops.tracking.destination import masked, ui_url

    if result.tracking_uri is None:
        return links + ["MLflow: not tracked"]
    run = result.mlflow_run_id or f"pipeline-{result.run_id}"
    url = _run_url(result)
    links.append(f"MLflow run: {url}" if url else
                 f"MLflow run `{run}` in experiment `{result.mlflow_experiment}` at "
                 f"`{masked(result.tracking_uri)}`")

    ui = ui_url(result.tracking_uri).rstrip("/")
    registered = getattr(result.release, "registered", {})
    links += [f"{model} v{version}: {ui}/#/models/{model}/versions/{version}"
              for model, version in sorted(registered.items())]
    return links


def _run_url(result: PipelineResult) -> str | None:
    """The run's page in the MLflow UI (`#/experiments/ID/runs/RUN_ID`), once the store has it."""
    if not result.tracking_uri or not result.mlflow_run_id:
        return None
    from jupyter_mlops.tracking.destination import open_client, ui_url

    try:  # create=False: a store the sender is still creating is not touched
        client = open_client(result.tracking_uri, create=False)
        experiment = client.get_run(result.mlflow_run_id).info.experiment_id
    except Exception:  # noqa: BLE001 - the run may still be on its way to the store
        return None
    return f"{ui_url(result.tracking_uri).rstrip('/')}/#/experiments/{experiment}/runs/" \
           f"{result.mlflow_run_id}"


def _section(title: str, header: list[str], rows: Iterable[list[str]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return [f"## {title}", "\n".join(lines)]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _why(result: Any) -> str:
    """What the message adds to the columns: no champion, or the champion's value."""
    _, _, detail = result.message.partition("; ")
    if not detail:
        _, _, detail = result.message.partition(" (")
        detail = detail.rstrip(")")
    return f" ({detail})" if detail else ""
