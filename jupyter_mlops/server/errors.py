"""Errors the REST API answers with: an HTTP status and a stable code a client can branch on."""

from __future__ import annotations

from tornado.web import HTTPError

from jupyter_mlops.errors import MlopsError


class ApiError(HTTPError, MlopsError):
    """A request the API refuses; `message` is safe to show (no paths, contents or tracebacks)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.status_code} {self.code}: {self.message}"


def not_found(what: str = "no such notebook") -> ApiError:
    return ApiError(404, "not-found", what)


def bad_request(message: str, code: str = "bad-request") -> ApiError:
    return ApiError(400, code, message)
