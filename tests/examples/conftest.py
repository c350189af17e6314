"""Fixtures for executing the example notebooks: copies in a tmp folder and a tmp store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass
class Examples:
    """The example notebooks copied into `folder`, run there against a tmp SQLite store."""

    folder: Path
    uri: str

    def execute(self, name: str, **parameters: Any) -> nbformat.NotebookNode:
        """Top to bottom with papermill, as `papermill NAME out/NAME -p ...` would."""
        import papermill

        output = self.folder / "executed" / name
        output.parent.mkdir(exist_ok=True)
        papermill.execute_notebook(str(self.folder / name), str(output), parameters=parameters,
                                   cwd=str(self.folder), kernel_name="python3",
                                   progress_bar=False, execution_timeout=240)
        return nbformat.read(output, as_version=4)

    def client(self) -> Any:
        from jupyter_mlops.tracking.destination import open_client

        return open_client(self.uri)


def _prepare(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Examples:
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, folder / notebook.name)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the kernels inherit it
    monkeypatch.chdir(folder)
    return Examples(folder, uri)


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Examples:
    return _prepare(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Examples, Any]]:
    """01 executed once (small data) for the tests that read what it left."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        examples = _prepare(tmp_path_factory.mktemp("quickstart"), monkeypatch)
        yield examples, examples.execute("01_tracking_quickstart.ipynb", n_samples=600)


def outputs(nb: nbformat.NotebookNode, mime: str = "text/html") -> list[str]:
    """Every output of `mime` in the notebook, in cell order."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            value = output.get("data", {}).get(mime)
            if value is not None:
                found.append(value if isinstance(value, str) else str(value))
    return found


def text(nb: nbformat.NotebookNode) -> str:
    """All stream output and plain-text results, joined."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)
