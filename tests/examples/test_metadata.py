"""The shipped notebooks open unchanged: JupyterLab writes the kernel's kernelspec and
language_info into a notebook when its kernel starts, and one that did not hold them already
opens with the unsaved-changes dot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from ipykernel.ipkernel import IPythonKernel
from jupyter_client.kernelspec import KernelSpecManager

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_shipped_notebook_holds_what_the_kernel_writes_on_open(path):
    metadata = nbformat.read(path, as_version=4).metadata
    spec = KernelSpecManager().get_kernel_spec("python3")
    # what JupyterLab sets (NotebookPanel: name, display_name, language from the spec)
    assert metadata.kernelspec == {"name": "python3", "display_name": spec.display_name,
                                   "language": spec.language}
    # the kernel's kernel_info reply; its Python version is the one field a user's may differ in
    expected = {k: v for k, v in IPythonKernel.language_info.items() if k != "version"}
    language = dict(metadata.language_info)
    assert language.pop("version", "").startswith("3.")
    assert language == expected


def test_every_shipped_notebook_is_checked():
    assert len(NOTEBOOKS) >= 5
