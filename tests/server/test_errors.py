"""Errors are {code, message}: malformed notebooks are 400s, never 500s, and nothing an error
says holds a path, the notebook's contents or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join

from jupyter_mlops.server.base import MlopsHandler

from .conftest import _notebook, fetch_json

SECRET = "SECRET-IN-NOTEBOOK"
CELL = {"cell_type": "code", "id": "c0", "metadata": {}, "source": "x = 1", "outputs": [],
        "execution_count": None}
MALFORMED = {
    "not-json.ipynb": "{ no json " + SECRET,
    "json-list.ipynb": json.dumps([SECRET]),
    "no-cells.ipynb": json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}),
    "cells-not-list.ipynb": json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                        "cells": SECRET}),
    "nbformat-99.ipynb": json.dumps({"nbformat": 99, "nbformat_minor": 0, "metadata": {},
                                     "cells": []}),
    "bad-cell.ipynb": json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                  "cells": [{**CELL, "cell_type": SECRET}]}),
    "syntax.ipynb": json.dumps(_notebook([(["step:a"], f"x = = '{SECRET}'")])),
    "unknown-needs.ipynb": json.dumps(_notebook([(["step:a", "needs:zz"], "x = 1")])),
    "bad-step-name.ipynb": json.dumps(_notebook([(["step:Not_DNS"], "x = 1")])),
    "binary.ipynb": b"\xff\xfe\x00garbage",
    "syntax.py": f"# %% tags=[\"step:a\"]\nx = = '{SECRET}'\n",
}


@pytest.fixture
def malformed(notebooks: Path) -> Path:
    folder = notebooks / "malformed"
    folder.mkdir()
    for name, text in MALFORMED.items():
        data = text if isinstance(text, bytes) else text.encode()
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_a_malformed_notebook_is_a_400_that_leaks_nothing(jp_fetch, malformed, name):  # noqa: ANN001
    path = f"malformed/{name}"
    answers = [await fetch_json(jp_fetch, "mlops", "api", "graph", params={"path": path})]
    for endpoint in ("compile", "local-runs"):
        answers.append(await fetch_json(jp_fetch, "mlops", "api", endpoint, method="POST",
                                        body=json.dumps({"path": path})))
    for code, body in answers:
        assert code == 400, (name, body)
        assert set(body) == {"code", "message"} and body["code"] == "invalid-notebook"
        assert str(malformed) not in body["message"] and "Traceback" not in body["message"]
        assert body["message"].startswith(path), body["message"]


class Boom(MlopsHandler):
    """A handler that fails the way a bug would, with a path and a secret in the error."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        raise RuntimeError(f"/srv/private/{SECRET}.ipynb exploded")


async def test_an_unexpected_error_is_a_500_without_details(jp_fetch, jp_serverapp, notebooks):  # noqa: ANN001
    base = jp_serverapp.web_app.settings["base_url"]
    jp_serverapp.web_app.add_handlers(".*$", [(url_path_join(base, "mlops", "api", "boom"),
                                               Boom)])
    code, body = await fetch_json(jp_fetch, "mlops", "api", "boom")
    assert code == 500
    assert body == {"code": "internal-error", "message": "internal error; see the server log"}


async def test_an_unknown_method_is_a_405_with_a_code(jp_fetch, notebooks) -> None:  # noqa: ANN001
    code, body = await fetch_json(jp_fetch, "mlops", "api", "experiments", method="POST", body="{}")
    assert (code, body["code"]) == (405, "method-not-allowed")
