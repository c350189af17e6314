"""Every route the extension registers answers exactly the methods it offers; any other is a 405.

Driven from the route table: a new route fails here until its methods are listed in ALLOWED.
"""

from __future__ import annotations

import re

from jupyter_server.base.handlers import APIHandler

from jupyter_mlops.server import routes

from .conftest import fetch_json

# What each route offers, by its pattern under mlops/api/ (path arguments as <name>).
ALLOWED = {
    "config": {"GET"},
    "experiments": {"GET"},
    "runs": {"GET"},
    "runs/<run_id>": {"GET"},
    "runs/<run_id>/artifact": {"GET"},
    "graph": {"GET", "POST"},
    "compile": {"POST"},
    "local-runs": {"GET", "POST"},
    "local-runs/<job_id>": {"GET", "DELETE"},
    "local-runs/<job_id>/notebook": {"GET"},
    "submit": {"POST"},
    "kfp-runs": {"GET"},
    "models": {"GET"},
    "models/<model>": {"GET"},
    "models/<model>/versions/<version>": {"GET"},
    "models/<model>/promotion": {"GET", "POST"},
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Well-formed ids and names that exist nowhere.
SAMPLES = {"run_id": "0123abcd", "job_id": "abc123", "model": "No_Such_Model",
           "version": "1"}
_ARGUMENT = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _table() -> dict[str, type]:
    """The registered routes by pattern under mlops/api/, path arguments shown as <name>."""
    table = {}
    for pattern, handler in routes("/"):
        route = pattern.removeprefix("/mlops/api/").removesuffix("/?$")
        table[_ARGUMENT.sub(r"<\1>", route)] = handler
    return table


def _offered(handler: type) -> set[str]:
    """The methods a handler class defines beyond what Jupyter Server's APIHandler has."""
    return {name for name in METHODS
            if getattr(handler, name.lower()) is not getattr(APIHandler, name.lower())}


def test_every_route_is_listed_and_its_handler_defines_exactly_its_methods() -> None:
    table = _table()
    assert set(table) == set(ALLOWED)
    assert len(set(table.values())) == len(table)  # one handler class per route
    assert {route: _offered(handler) for route, handler in table.items()} == ALLOWED


async def test_every_other_method_of_every_route_is_a_405(jp_fetch, notebooks) -> None:  # noqa: ANN001
    answers = {}
    for route in _table():
        parts = [SAMPLES.get(part[1:-1], part) for part in route.split("/")]
        for method in METHODS:
            body = "{}" if method in ("POST", "PUT", "PATCH") else None
            code, reply = await fetch_json(jp_fetch, "mlops", "api", *parts, method=method,
                                           body=body, allow_nonstandard_methods=True)
            answers[route, method] = code
            if code == 405 and method != "HEAD":  # a HEAD answer has no body
                assert reply["code"] == "method-not-allowed", (route, method, reply)
    refused = {route: {m for m in METHODS if answers[route, m] == 405} for route in ALLOWED}
    assert refused == {route: set(METHODS) - offered for route, offered in ALLOWED.items()}
