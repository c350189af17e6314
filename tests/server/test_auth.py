"""No token, a wrong token, a foreign Origin or Host, a deny-all authorizer: refused."""

from __future__ import annotations

import json

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from .conftest import TOKEN, fetch_json

ENDPOINTS = [
    ("GET", ("config",), None),
    ("GET", ("experiments",), None),
    ("GET", ("runs",), None),
    ("GET", ("runs", "0123abcd"), None),
    ("GET", ("graph",), None),
    ("POST", ("compile",), {"path": "example.ipynb"}),
    ("GET", ("local-runs",), None),
    ("POST", ("local-runs",), {"path": "example.ipynb"}),
    ("GET", ("local-runs", "abc123"), None),
    ("DELETE", ("local-runs", "abc123"), None),
    ("GET", ("local-runs", "abc123", "notebook"), None),
    ("POST", ("submit",), {"path": "example.ipynb"}),
]


class DenyAll(Authorizer):
    def is_authorized(self, handler, user, action, resource) -> bool:  # noqa: ANN001
        return False


async def _status(jp_fetch, method: str, parts: tuple[str, ...], body: object,
                  headers: dict[str, str]) -> tuple[int, bytes]:
    kwargs = {"method": method, "headers": headers, "follow_redirects": False}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    try:
        response = await jp_fetch("mlops", "api", *parts, **kwargs)
    except HTTPClientError as error:
        return error.code, error.response.body if error.response else b""
    return response.code, response.body


@pytest.mark.parametrize("method,parts,body", ENDPOINTS)
@pytest.mark.parametrize("headers", [
    {"Authorization": ""},
    {"Authorization": "token wrong-token"},
], ids=["no-token", "wrong-token"])
async def test_without_a_valid_token_every_endpoint_refuses(jp_fetch, notebooks, method, parts,
                                                            body, headers) -> None:
    code, content = await _status(jp_fetch, method, parts, body, headers)
    assert code in (302, 403)
    assert b"example" not in content and b"accuracy" not in content


async def _login_cookie(jp_fetch) -> str:
    """A browser-like session: the token in the URL once, then only the login cookie."""
    response = await jp_fetch("api", "status", params={"token": TOKEN},
                              headers={"Authorization": ""})
    cookies = response.headers.get_list("Set-Cookie")
    assert cookies, "the server set no login cookie"
    return "; ".join(c.split(";", 1)[0] for c in cookies)


@pytest.mark.parametrize("method,parts,body", ENDPOINTS)
async def test_a_cookie_session_from_a_foreign_origin_is_refused(jp_fetch, notebooks, method,
                                                                 parts, body) -> None:
    # Token-authenticated requests skip the Origin check by design (a foreign page cannot
    # know the token); the attack is a foreign page riding the browser's cookie.
    cookie = await _login_cookie(jp_fetch)
    headers = {"Authorization": "", "Cookie": cookie, "Origin": "http://evil.example"}
    code, _ = await _status(jp_fetch, method, parts, body, headers)
    assert code == 403
    if parts in (("config",), ("experiments",)):  # the cookie from the own origin passes
        ok, _ = await _status(jp_fetch, method, parts, body, {"Authorization": "",
                                                               "Cookie": cookie})
        assert ok == 200


@pytest.mark.parametrize("method,parts,body", ENDPOINTS)
async def test_a_foreign_host_header_is_refused(jp_fetch, notebooks, method, parts, body):
    code, _ = await _status(jp_fetch, method, parts, body, {"Host": "evil.example"})
    assert code == 403


async def test_with_the_token_the_same_request_passes(jp_fetch, notebooks) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "config")
    assert code == 200 and body["kfp_enabled"] is False


class TestDenyAllAuthorizer:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):  # noqa: ANN001
        return {**jp_server_config, "ServerApp": {**jp_server_config["ServerApp"],
                                                  "authorizer_class": DenyAll}}

    @pytest.mark.parametrize("method,parts,body", ENDPOINTS)
    async def test_every_endpoint_answers_403(self, jp_fetch, notebooks, method, parts,
                                              body) -> None:
        code, content = await _status(jp_fetch, method, parts, body, {})
        assert code == 403
        assert json.loads(content) == {"code": "forbidden", "message": "Forbidden"}
