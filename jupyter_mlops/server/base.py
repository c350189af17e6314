"""The base of every handler: authentication, authorization and {code, message} errors."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from http.client import responses
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado.web import HTTPError

from jupyter_mlops.errors import NotebookError
from jupyter_mlops.server.errors import ApiError, bad_request
from jupyter_mlops.server.paths import resolve_notebook

AUTH_RESOURCE = "mlops"
MAX_INT = 2**63 - 1  # what a file offset or a database integer holds

# Stable codes for errors raised by Jupyter Server itself (auth, unknown method).
_HTTP_CODES = {400: "bad-request", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
               409: "conflict"}


@dataclass(frozen=True)
class NotebookRef:
    """A notebook named by a request: its API path, its path under root_dir and its real path."""

    api_path: str
    os_path: str
    real_path: str


class MlopsHandler(APIHandler):
    """Subclasses decorate every method with `@tornado.web.authenticated` and `@authorized`."""

    auth_resource = AUTH_RESOURCE

    @property
    def mlops(self) -> Any:
        """The extension app (jupyter_mlops.server.app.MlopsExtension): settings, stores, jobs."""
        return self.settings["jupyter_mlops"]

    async def prepare(self) -> None:  # type: ignore[override]
        # APIHandler answers a cross-origin request with 404; refuse it as what it is.
        try:
            await super().prepare()
        except HTTPError as error:
            if error.status_code == 404 and not self.check_origin():
                raise HTTPError(403) from None
            raise

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(error, ApiError):
            code, message = error.code, error.message
        elif isinstance(error, HTTPError) or status_code < 500:
            code = _HTTP_CODES.get(status_code, "error")
            message = responses.get(status_code, "error")
        else:  # the traceback goes to the server log only
            code, message = "internal-error", "internal error; see the server log"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"code": code, "message": message}))

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError:
            raise bad_request("the body is not JSON", "bad-json") from None
        except RecursionError:
            raise bad_request("the body is JSON nested too deeply", "bad-json") from None
        except ValueError as error:  # an integer of more digits than Python reads (4,300)
            reason = str(error).split(";")[0]
            raise bad_request(f"the body cannot be read: {reason}", "bad-json") from None
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object", "bad-json")
        return body

    def int_argument(self, name: str, default: int, low: int = 0, high: int = MAX_INT) -> int:
        """A whole-number query argument within [low, high], else a 400 naming it."""
        text = self.get_query_argument(name, str(default))
        try:
            value = int(text)
        except ValueError:
            raise bad_request(f"{name} must be an integer", f"bad-{name}") from None
        if not low <= value <= high:
            raise bad_request(f"{name} must be {low}..{high}", f"bad-{name}")
        return value

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    async def notebook(self, api_path: Any) -> NotebookRef:
        """The notebook a request names; `api_path` is as the client sent it (any JSON)."""
        if api_path is not None and not isinstance(api_path, str):
            raise bad_request("path must be a string: a notebook's path under the server root",
                              "bad-path")
        real = await resolve_notebook(self.contents_manager, api_path)
        path = (api_path or "").strip()
        os_path = os.path.join(os.path.abspath(self.contents_manager.root_dir), path)
        return NotebookRef(os.path.normpath(path), os.path.normpath(os_path), real)

    def safe_message(self, error: Exception, ref: NotebookRef | None = None) -> str:
        """An error's message with absolute paths replaced by the notebook's API path."""
        message = str(error)
        if ref is not None:
            message = message.replace(ref.real_path, ref.api_path)
            message = message.replace(ref.os_path, ref.api_path)
        for root in {os.path.realpath(self.contents_manager.root_dir),
                     os.path.abspath(self.contents_manager.root_dir)}:
            message = message.replace(root + os.sep, "").replace(root, ".")
        return "\n".join(message.splitlines()[:10])[:2000] or type(error).__name__

    def notebook_error(self, error: NotebookError, ref: NotebookRef) -> ApiError:
        return ApiError(400, "invalid-notebook", self.safe_message(error, ref))
