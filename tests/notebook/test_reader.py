"""Reading notebooks: valid input, py:percent, and every malformed input as NotebookFormatError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_mlops.errors import MlopsError, NotebookFormatError
from jupyter_mlops.notebook import read_graph, read_notebook


def write(tmp_path: Path, text: str, name: str = "bad.ipynb") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def valid_notebook(cells: list | None = None) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": cells if cells is not None else [
                {"cell_type": "code", "id": "a1", "metadata": {}, "source": ["x = 1\n", "y = 2"],
                 "outputs": [], "execution_count": None}]}


def test_reads_a_valid_notebook_and_joins_line_lists(tmp_path):
    notebook = read_notebook(write(tmp_path, json.dumps(valid_notebook())))
    assert notebook.cells[0].source == "x = 1\ny = 2"


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("{not json", "not valid JSON (line 1"),
        ("[1, 2]", "top level is not a JSON object"),
        (json.dumps({"cells": []}), "no integer 'nbformat' version field"),
        (json.dumps(valid_notebook() | {"nbformat": 99}), "unsupported nbformat version 99"),
        (json.dumps(valid_notebook() | {"nbformat": "4"}), "no integer 'nbformat'"),
        (json.dumps(valid_notebook() | {"cells": {"a": 1}}), "'cells' is not a list"),
        (json.dumps(valid_notebook(["x"])), "cell 1 is not a JSON object"),
        (json.dumps(valid_notebook([{"cell_type": "code", "source": 5, "metadata": {},
                                     "outputs": [], "execution_count": None}])),
         "invalid notebook: cell 1, source: 5"),
        (json.dumps(valid_notebook([{"cell_type": "bogus", "source": "", "metadata": {}}])),
         "invalid notebook"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (json.dumps(valid_notebook() | {"metadata": {"deep": json.loads("[" * 200 + "]" * 200)}}),
         "nested more than"),
    ],
)
def test_malformed_input_is_one_clear_error_naming_the_file(tmp_path, text, fault):
    path = write(tmp_path, text)
    with pytest.raises(NotebookFormatError) as caught:
        read_notebook(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ": ")
    assert fault in message
    assert isinstance(caught.value, MlopsError)


def test_missing_file_is_a_notebook_error(tmp_path):
    with pytest.raises(NotebookFormatError, match="no such file"):
        read_notebook(tmp_path / "absent.ipynb")


def test_binary_garbage_is_a_notebook_error(tmp_path):
    path = tmp_path / "garbage.ipynb"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(NotebookFormatError, match="cannot be read"):
        read_notebook(path)


def test_nbformat_3_is_converted(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "a = 1", "language": "python",
                                     "metadata": {}, "outputs": [], "collapsed": False}],
                          "metadata": {}}]}
    notebook = read_notebook(write(tmp_path, json.dumps(v3)))
    assert notebook.nbformat == 4
    assert notebook.cells[0].source == "a = 1"


PERCENT_SCRIPT = '''# %% tags=["parameters"]
alpha = 0.5

# %% tags=["step:prepare"]
data = [alpha * i for i in range(10)]

# %% [markdown]
# Then a model.

# %% tags=["step:fit"]
total = sum(data)
'''


def test_py_percent_scripts_are_read_with_their_tags(tmp_path):
    graph = read_graph(write(tmp_path, PERCENT_SCRIPT, "pipeline.py"))
    assert [s.name for s in graph.steps] == ["prepare", "fit"]
    assert graph.parameters["alpha"].default == 0.5
    assert graph.step("fit").inputs == {"data": "prepare"}


def test_commas_in_tags_are_accepted_though_nbformat_forbids_them(tmp_path):
    notebook = valid_notebook()
    notebook["cells"][0]["metadata"]["tags"] = ["step:b", "needs:a,c"]
    notebook["cells"][0]["metadata"]["other"] = {"must": "stay"}
    read = read_notebook(write(tmp_path, json.dumps(notebook)))
    assert read.cells[0].metadata.tags == ["step:b", "needs:a,c"]
    notebook["cells"][0]["metadata"]["tags"] = ["needs:a,c", 5]
    with pytest.raises(NotebookFormatError, match="tags"):
        read_notebook(write(tmp_path, json.dumps(notebook)))
