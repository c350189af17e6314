"""Small notebooks built in code: a list of (source, tags) pairs, markdown cells as strings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from jupyter_mlops.notebook import StepGraph, build_graph

Spec = list["tuple[str, list[str]] | str"]


def make_notebook(cells: Spec, metadata: dict | None = None) -> nbformat.NotebookNode:
    built = []
    for item in cells:
        if isinstance(item, str):
            built.append(new_markdown_cell(item))
        else:
            source, tags = item
            cell = new_code_cell(source)
            if tags:
                cell.metadata["tags"] = list(tags)
            built.append(cell)
    notebook = new_notebook(metadata=metadata or {})
    notebook.cells = built  # after new_notebook, which validates, as our comma tags fail it
    return notebook


def graph_of(cells: Spec, metadata: dict | None = None, path: str = "test.ipynb") -> StepGraph:
    return build_graph(make_notebook(cells, metadata), path)


@pytest.fixture
def write_notebook(tmp_path: Path) -> Callable[..., Path]:
    def write(cells: Spec, name: str = "nb.ipynb", metadata: dict | None = None) -> Path:
        path = tmp_path / name
        # json, not nbformat.write: nbformat's schema rejects the commas our tags may hold
        path.write_text(json.dumps(make_notebook(cells, metadata)))
        return path

    return write
