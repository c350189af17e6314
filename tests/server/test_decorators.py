"""Every handler method the extension registers is authenticated and authorized."""

from __future__ import annotations

import inspect

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler

from jupyter_mlops.server import routes

HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


# functools.wraps copies names, so decorator layers are told apart by their code objects.
AUTHENTICATED = tornado.web.authenticated(lambda self: None).__code__
AUTHORIZED = authorized(lambda self: None).__code__


def _layers(func: object) -> set[object]:
    """The code object of every decorator layer around a method (a functools.wraps chain)."""
    codes = set()
    while func is not None:
        codes.add(getattr(func, "__code__", None))
        func = getattr(func, "__wrapped__", None)
    return codes


def _own_methods(handler: type) -> list[tuple[str, object]]:
    """HTTP methods the class defines beyond what Jupyter Server's APIHandler provides."""
    return [(name, getattr(handler, name)) for name in HTTP_METHODS
            if getattr(handler, name) is not getattr(APIHandler, name)]


def test_every_method_of_every_route_is_authenticated_and_authorized() -> None:
    handlers = {handler for _, handler in routes("/")}
    assert len(handlers) >= 8
    missing = []
    for handler in handlers:
        assert handler.auth_resource == "mlops"
        methods = _own_methods(handler)
        assert methods, handler
        for name, method in methods:
            layers = _layers(method)
            if AUTHENTICATED not in layers:
                missing.append(f"{handler.__name__}.{name}: @tornado.web.authenticated")
            if AUTHORIZED not in layers:
                missing.append(f"{handler.__name__}.{name}: @authorized")
    assert not missing, missing


def test_the_check_catches_an_undecorated_method() -> None:
    from jupyter_mlops.server.base import MlopsHandler

    class Naked(MlopsHandler):
        async def get(self) -> None:
            pass

    (name, method), = _own_methods(Naked)
    assert name == "get" and inspect.iscoroutinefunction(method)
    assert AUTHENTICATED not in _layers(method) and AUTHORIZED not in _layers(method)
    decorated = tornado.web.authenticated(authorized(Naked.get))
    assert {AUTHENTICATED, AUTHORIZED} <= _layers(decorated)
