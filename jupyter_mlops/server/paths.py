"""Notebook paths from requests, resolved through the contents manager and confined to root_dir.

Every refusal is the same 404 "no such notebook", so a probe learns nothing about what exists
outside the root (or inside it, when hidden).
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from jupyter_core.utils import ensure_async
from tornado.web import HTTPError

from jupyter_mlops.server.errors import bad_request, not_found

NOTEBOOK_SUFFIXES = (".ipynb", ".py")
_DRIVE = re.compile(r"^[A-Za-z]:")


async def resolve_notebook(contents_manager: Any, api_path: str | None) -> str:
    """The real, absolute file path of the notebook at `api_path` (relative to root_dir)."""
    if not api_path:
        raise bad_request("a notebook path is required", "missing-path")
    path = _normalised(api_path)
    if not path.endswith(NOTEBOOK_SUFFIXES):
        raise not_found()
    try:
        exists = await ensure_async(contents_manager.file_exists(path))
        hidden = await ensure_async(contents_manager.is_hidden(path))
        os_path = contents_manager._get_os_path(path)  # raises 404 outside the root
    except (HTTPError, OSError, ValueError, AttributeError):  # no file-backed CM
        raise not_found() from None
    if not exists or (hidden and not contents_manager.allow_hidden):
        raise not_found()
    real = os.path.realpath(os_path)
    root = os.path.realpath(contents_manager.root_dir)
    # commonpath, not startswith: "/srv/root2" must not pass for root "/srv/root".
    if os.path.commonpath([real, root]) != root or not os.path.isfile(real):
        raise not_found()
    return real


def _normalised(api_path: str) -> str:
    """Reject what an API path never holds: NUL, absolute paths, backslashes, drive letters."""
    if "\x00" in api_path or "\\" in api_path or _DRIVE.match(api_path):
        raise not_found()
    if api_path.startswith("/") or os.path.isabs(api_path):
        raise not_found()
    path = posixpath.normpath(api_path)
    if path == ".." or path.startswith("../") or path.startswith("/"):
        raise not_found()
    return path
