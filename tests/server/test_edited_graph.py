"""POST /graph: the step graph of a notebook as the editor holds it, unsaved: what the cells'
step badges and warnings show while the user edits."""

from __future__ import annotations

import json

from .conftest import fetch_json


def _edited(cells: list[tuple[list[str], str]]) -> dict[str, object]:
    """Notebook JSON as the frontend sends it: a markdown cell first, outputs stripped."""
    code = [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags}, "source": source,
             "outputs": [], "execution_count": None} for i, (tags, source) in enumerate(cells)]
    title = {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Churn"}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [title, *code]}


async def _post(jp_fetch, path: str, notebook: object) -> tuple[int, dict]:  # noqa: ANN001
    return await fetch_json(jp_fetch, "mlops", "api", "graph", method="POST",
                            body=json.dumps({"path": path, "notebook": notebook}))


async def test_the_graph_is_of_the_content_sent_not_of_the_file(jp_fetch, notebooks) -> None:
    edited = _edited([(["parameters"], "seed = 7"), (["setup"], "import math"),
                      (["step:load-data"], "rows = list(range(seed))"),
                      (["skip"], "rows[:3]"),
                      (["step:fit", "colour:red"], "model = sum(rows) + scale"),
                      (["metrics"], "score = model / 2")])
    saved = (notebooks / "example.ipynb").read_bytes()  # its steps are load, features, ...
    code, graph = await _post(jp_fetch, "example.ipynb", edited)
    assert code == 200
    assert [(s["name"], s["cells"]) for s in graph["steps"]] == [("load-data", [3]),
                                                                ("fit", [5, 6])]
    assert graph["path"] == "example.ipynb"
    assert graph["cells"] == {"1": ["parameters"], "2": ["setup"], "3": ["step"], "4": ["skip"],
                              "5": ["step"], "6": ["metrics"]}
    warnings = {w["code"]: w["cell_index"] for w in graph["warnings"]}
    assert warnings == {"unknown-tag": 5, "unbound-name": 5}
    assert (notebooks / "example.ipynb").read_bytes() == saved


async def test_a_cells_fault_names_the_cell(jp_fetch, notebooks) -> None:
    edited = _edited([(["step:a"], "x = 1"), (["step:Not A Name"], "y = x")])
    code, body = await _post(jp_fetch, "example.ipynb", edited)
    assert code == 400 and body["code"] == "invalid-notebook"
    assert body["cell"] == 2 and "cell 3 (" in body["message"]  # as JupyterLab counts, from 1
    assert str(notebooks) not in body["message"]


async def test_what_is_not_a_notebook_is_refused(jp_fetch, notebooks) -> None:
    code, body = await _post(jp_fetch, "example.ipynb", ["cells"])
    assert (code, body["code"]) == (400, "bad-notebook")
    code, body = await _post(jp_fetch, "example.ipynb", {"cells": "none"})
    assert (code, body["code"]) == (400, "invalid-notebook") and body["cell"] is None
    code, body = await _post(jp_fetch, "../outside.ipynb", _edited([]))
    assert code == 404
