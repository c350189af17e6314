"""Notebook paths stay inside root_dir: every escape is a 404 that leaks nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .conftest import EXAMPLE, fetch_json

SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture
def outside(notebooks: Path) -> dict[str, str]:
    """Notebooks outside the root: in its parent, in a sibling named like the root plus a
    suffix, and one reached by a symlink inside the root."""
    parent = notebooks.parent
    text = EXAMPLE.read_text(encoding="utf-8").replace("Churn", SECRET)
    (parent / "secret.ipynb").write_text(text, encoding="utf-8")
    sibling = parent / (notebooks.name + "-sibling")
    sibling.mkdir()
    (sibling / "secret.ipynb").write_text(text, encoding="utf-8")
    os.symlink(parent / "secret.ipynb", notebooks / "link.ipynb")
    os.symlink(sibling, notebooks / "linkdir")
    return {"parent": str(parent), "sibling": sibling.name}


def _attacks(root: Path, outside: dict[str, str]) -> list[str]:
    return [
        "../secret.ipynb",
        "sub/../../secret.ipynb",
        "%2e%2e/secret.ipynb",  # decoded once by the server: a literal, missing name
        "%252e%252e%252fsecret.ipynb",
        f"../{outside['sibling']}/secret.ipynb",
        f"{outside['parent']}/secret.ipynb",
        f"/{root.name}/../secret.ipynb",
        "example.ipynb\x00.txt",
        "link.ipynb",
        "linkdir/secret.ipynb",
        "..\\secret.ipynb",
        "missing.ipynb",
        "sub",
        "broken.ipynb/../../secret.ipynb",
    ]


async def test_graph_refuses_every_escape_with_a_bare_404(jp_fetch, notebooks, outside) -> None:
    for attack in _attacks(notebooks, outside):
        code, body = await fetch_json(jp_fetch, "mlops", "api", "graph", params={"path": attack})
        assert code == 404, attack
        assert body == {"code": "not-found", "message": "no such notebook"}, attack


@pytest.mark.parametrize("endpoint", ["compile", "local-runs"])
async def test_post_endpoints_refuse_escapes(jp_fetch, notebooks, outside, endpoint) -> None:
    for attack in _attacks(notebooks, outside)[:10]:
        code, body = await fetch_json(jp_fetch, "mlops", "api", endpoint, method="POST",
                                      body=json.dumps({"path": attack}))
        assert code == 404, attack
        assert SECRET not in json.dumps(body) and outside["parent"] not in json.dumps(body)


async def test_runs_refuses_a_notebook_outside(jp_fetch, notebooks, outside) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "runs",
                                  params={"notebook": "../secret.ipynb"})
    assert (code, body["code"]) == (404, "not-found")


async def test_a_symlink_that_stays_inside_the_root_is_followed(jp_fetch, notebooks) -> None:
    os.symlink(notebooks / "sub" / "nested.ipynb", notebooks / "inner-link.ipynb")
    code, body = await fetch_json(jp_fetch, "mlops", "api", "graph",
                                  params={"path": "inner-link.ipynb"})
    assert code == 200 and body["steps"]


async def test_a_hidden_notebook_is_not_found(jp_fetch, notebooks) -> None:
    (notebooks / ".hidden").mkdir()
    shutil.copy(EXAMPLE, notebooks / ".hidden" / "x.ipynb")
    code, _ = await fetch_json(jp_fetch, "mlops", "api", "graph",
                               params={"path": ".hidden/x.ipynb"})
    assert code == 404


async def test_a_missing_path_is_a_400(jp_fetch, notebooks) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "graph")
    assert (code, body["code"]) == (400, "missing-path")


# Query strings as an attacker types them, not re-encoded by a client: once and twice
# percent-encoded dots and slashes, an encoded NUL, an absolute path.
RAW_QUERIES = [
    "path=..%2fsecret.ipynb",
    "path=%2e%2e%2fsecret.ipynb",
    "path=%252e%252e%252fsecret.ipynb",
    "path=sub%2f%2e%2e%2f%2e%2e%2fsecret.ipynb",
    "path=example.ipynb%00.txt",
    "path=%2fetc%2fpasswd",
    "path=..%5csecret.ipynb",
]


async def test_raw_encoded_escapes_are_bare_404s(jp_serverapp, http_server_client,  # noqa: ANN001
                                                 jp_base_url, notebooks, outside) -> None:
    from tornado.httpclient import HTTPClientError

    from .conftest import TOKEN

    for query in RAW_QUERIES:
        url = f"{jp_base_url}mlops/api/graph?{query}"
        try:
            await http_server_client.fetch(url, headers={"Authorization": f"token {TOKEN}"})
            raise AssertionError(f"{query} was answered")
        except HTTPClientError as error:
            assert error.code == 404, query
            body = json.loads(error.response.body)
            assert body == {"code": "not-found", "message": "no such notebook"}, query
