"""Real runs for runner tests: notebooks copied from tests/data/runner into tmp_path, executed by
papermill in real IPython kernels, tracked into a SQLite MLflow store in tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.runner import PipelineResult, RunOptions, run_pipeline

DATA = Path(__file__).resolve().parents[1] / "data" / "runner"


def copy_notebook(name: str, folder: Path) -> Path:
    """tests/data/runner/<name>.ipynb copied into `folder`: kernels start beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.ipynb"
    shutil.copy(DATA / f"{name}.ipynb", target)
    return target


def run(notebook: Path, out: Path, **options: Any) -> PipelineResult:
    """run_pipeline quietly into `out`, untracked unless a tracking_uri is given; `options` are
    RunOptions fields."""
    options.setdefault("track", "tracking_uri" in options)
    options.setdefault("quiet", True)
    options.setdefault("jobs", 2)
    return run_pipeline(notebook, RunOptions(out=out, **options))


def statuses(result: PipelineResult) -> dict[str, str]:
    return {name: step.status for name, step in result.steps.items()}


def set_cell_source(notebook: Path, tag: str, source: str) -> None:
    """Replace the source of the cell tagged `tag` (a user editing the notebook)."""
    content = json.loads(notebook.read_text())
    for cell in content["cells"]:
        if tag in cell.get("metadata", {}).get("tags", []):
            cell["source"] = source
    notebook.write_text(json.dumps(content, indent=1))


def sqlite_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="session")
def mlflow_client_for():
    """An MlflowClient on a store URI (imports mlflow once per session)."""
    from mlflow import MlflowClient

    return lambda uri: MlflowClient(tracking_uri=uri)


@pytest.fixture(autouse=True, scope="module")
def _close_tracking_clients():
    """Each module's MLflow stores get their records, and their sender stops, at its end."""
    yield
    from jupyter_mlops.runner.mlflow_runs import close_trackers

    close_trackers()
