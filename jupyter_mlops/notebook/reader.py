"""Reading notebooks (.ipynb and jupytext py:percent) into validated nbformat v4 objects.

nbformat is imported by the functions that need it: its validator pulls in jsonschema's IRI
grammar (seconds), a cost a kernel that only wants the code cells (tracking) must not pay.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from jupyter_mlops.errors import NotebookFormatError, cell_ref
from jupyter_mlops.notebook.layout import code_cells
from jupyter_mlops.notebook.model import Cell

if TYPE_CHECKING:
    import nbformat

SUPPORTED_MAJOR_VERSIONS = (3, 4)
PERCENT_SUFFIXES = (".py",)
MAX_BYTES = 256 * 2**20  # larger files are refused: reading them would exhaust memory


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read and validate the notebook at `path`; any fault raises NotebookFormatError."""
    return reads_notebook(_read_text(Path(path)), str(path))


def read_code_cells(path: str | Path) -> list[Cell]:
    """The code cells of the notebook at `path`, structure-checked but not schema-validated.

    For a kernel that tracks cells: a v4 .ipynb is read as JSON, without importing nbformat;
    other formats go through read_notebook. Faults raise NotebookFormatError as there.
    """
    path = Path(path)
    text = _read_text(path)
    if str(path).endswith(PERCENT_SUFFIXES):
        return code_cells(reads_notebook(text, str(path)))
    data = _load_json(text, str(path))
    _check_structure(data, str(path))
    if data["nbformat"] != 4:
        return code_cells(reads_notebook(text, str(path)))
    cells = [{**cell, "source": _joined(cell.get("source", ""))} for cell in data["cells"]]
    return code_cells(SimpleNamespace(cells=cells))


def _joined(source: Any) -> str:
    """A cell's source as nbformat keeps it in memory: JSON may split it into a list of lines."""
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _read_text(path: Path) -> str:
    try:
        return read_bounded(path).decode("utf-8")
    except FileNotFoundError:
        raise NotebookFormatError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NotebookFormatError(str(path), f"cannot be read: {error}") from None


def read_bounded(path: Path, limit: int = MAX_BYTES) -> bytes:
    """A regular file's bytes, at most `limit` of them; a FIFO, a device (`/dev/zero`) or a
    folder is refused before it is read, since reading it would hang or never end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(f"not a regular file ({_kind(mode)})")
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"larger than {limit // 2**20} MiB; a notebook that large is refused")
    return data


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def reads_notebook(text: str, path: str) -> nbformat.NotebookNode:
    """Parse notebook text; `path` names the file in errors and selects the format by suffix."""
    import nbformat

    if path.endswith(PERCENT_SUFFIXES):
        return _read_percent_script(text, path)
    data = _load_json(text, path)
    _check_structure(data, path)
    try:
        notebook = nbformat.versions[data["nbformat"]].to_notebook_json(data)  # joins line lists
        if data["nbformat"] != 4:
            notebook = nbformat.convert(notebook, 4)
        _validate(notebook)
    except nbformat.ValidationError as error:
        raise NotebookFormatError(path, f"invalid notebook: {_describe(error)}") from None
    except (RecursionError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise NotebookFormatError(path, f"invalid notebook: {error}") from None
    return notebook


def _validate(notebook: nbformat.NotebookNode) -> None:
    """nbformat's schema forbids commas in tags, yet `needs:a,b` is our grammar: allow them."""
    import nbformat

    if any("," in tag for cell in notebook.cells for tag in cell.get("metadata", {}).get("tags", ())
           if isinstance(tag, str)):
        notebook = copy.deepcopy(notebook)
        for cell in notebook.cells:
            tags = cell.get("metadata", {}).get("tags")
            if isinstance(tags, list):
                cell.metadata.tags = [t.replace(",", ";") if isinstance(t, str) else t
                                      for t in tags]
    nbformat.validate(notebook)


def _load_json(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookFormatError(
            path, f"not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from None
    except RecursionError:
        raise NotebookFormatError(path, "not a notebook: JSON nested too deeply") from None
    except ValueError as error:  # an integer of more digits than Python reads (4,300)
        reason = str(error).split(";")[0]  # not the advice to raise the interpreter's limit
        raise NotebookFormatError(path, f"not a notebook: {reason}") from None


def _check_structure(data: Any, path: str) -> None:
    """The faults that would otherwise surface from nbformat as TypeError or AttributeError."""
    if not isinstance(data, dict):
        raise NotebookFormatError(path, "not a notebook: the top level is not a JSON object")
    version = data.get("nbformat")
    if not isinstance(version, int) or isinstance(version, bool):
        raise NotebookFormatError(path, "not a notebook: no integer 'nbformat' version field")
    if version not in SUPPORTED_MAJOR_VERSIONS:
        raise NotebookFormatError(
            path, f"unsupported nbformat version {version} (supported: 3 and 4)"
        )
    cells = data.get("cells") if version == 4 else data.get("worksheets")
    if not isinstance(cells, list):
        field = "cells" if version == 4 else "worksheets"
        raise NotebookFormatError(path, f"invalid notebook: '{field}' is not a list")
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise NotebookFormatError(path,
                                      f"invalid notebook: {cell_ref(index)} is not a JSON object")
    _check_depth(data, path)


def _check_depth(data: Any, path: str, limit: int = 64) -> None:
    """Reject absurd nesting before a recursive validator meets it."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise NotebookFormatError(path, f"invalid notebook: nested more than {limit} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _describe(error: nbformat.ValidationError) -> str:
    path = list(error.absolute_path)
    cell = ""
    if len(path) > 1 and path[0] == "cells" and isinstance(path[1], int):
        cell, path = cell_ref(path[1]), path[2:]  # a cell as the person counts it, not JSON's [0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    message = error.message if hasattr(error, "message") else str(error).splitlines()[0]
    return f"{', '.join(filter(None, (cell, where))) or 'notebook'}: {message}"


def _read_percent_script(text: str, path: str) -> nbformat.NotebookNode:
    import jupytext  # only py:percent input needs it
    import nbformat

    try:
        notebook = jupytext.reads(text, fmt="py:percent")
        _validate(notebook)
    except nbformat.ValidationError as error:
        raise NotebookFormatError(path, f"invalid notebook: {_describe(error)}") from None
    except Exception as error:  # jupytext raises assorted errors on malformed scripts
        raise NotebookFormatError(path, f"not a py:percent script: {error}") from None
    return notebook
