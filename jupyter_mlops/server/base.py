"""The base of every handler: authentication, authorization, {code, message} errors, and the
helpers handlers share (the request's notebook, its tracking store, calls into the layers below)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from http.client import responses
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado.web import HTTPError

from jupyter_mlops.errors import KfpSubmitError, MlopsError, NotebookError
from jupyter_mlops.models.gates import ConditionError, GateFailed
from jupyter_mlops.server import mlflow_reads
from jupyter_mlops.server.errors import ApiError, bad_request
from jupyter_mlops.server.paths import resolve_notebook

AUTH_RESOURCE = "mlops"
MAX_INT = 2**63 - 1  # what a file offset or a database integer holds
KFP_NOT_CONFIGURED = ("no Kubeflow Pipelines host is configured: start Jupyter with "
                      "--MlopsExtension.kfp_host=https://KFP-API-HOST (or set it in "
                      "jupyter_server_config.py)")

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
    """One subclass per route, defining exactly the HTTP methods the route offers (any other
    answers 405), each decorated with `@tornado.web.authenticated` and `@authorized`."""

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

    def kfp_connection(self) -> dict[str, str | None]:
        """The configured KFP host and namespace (for kfp/); 409 when no host is configured."""
        settings = self.mlops
        if not settings.kfp_host:
            raise ApiError(409, "kfp-not-configured", KFP_NOT_CONFIGURED)
        return {"host": settings.kfp_host, "namespace": settings.kfp_namespace or None}

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

    async def store_for(self, notebook: str | None) -> tuple[mlflow_reads.Store | None,
                                                             NotebookRef | None]:
        """The tracking store of the notebook's folder (else the root's), None if there is none."""
        ref = await self.notebook(notebook) if notebook else None
        folder = os.path.dirname(ref.real_path) if ref else self.contents_manager.root_dir
        uri = self.mlops.stores.uri_for(folder, self.contents_manager.root_dir)
        # Opening a store may migrate its schema: off the event loop.
        return (await asyncio.to_thread(self.mlops.stores.get, uri) if uri else None), ref

    async def registry_store(self, notebook: Any) -> mlflow_reads.Store:
        """The store whose registry a request reads: as `store_for`; none there is a 404."""
        found, _ = await self.store_for(notebook or None)
        if found is None:
            raise ApiError(404, "model-not-found", "no tracking store here, so no models")
        return found

    async def run_notebook_call(self, func: Callable[..., Any], ref: NotebookRef,
                                *args: Any) -> Any:
        """Call `func(ref, ...)` off the event loop; the faults of the layers below become
        answers naming the notebook by its API path."""
        try:
            return await asyncio.to_thread(func, ref, *args)
        except ApiError:
            raise
        except MlopsError as error:
            raise self.api_error(error, ref) from None

    async def registry_call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `func` of the registry's layer off the event loop: a malformed condition is a
        400, a condition that did not hold a 409 (nothing moved), an unknown model, version or
        alias a 404, each with models/'s message; a store that did not answer or refused the
        read a 502 with MLflow's reason (the Models tab shows it, not "internal error")."""
        from mlflow.exceptions import MlflowException

        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except ApiError:
            raise
        except MlopsError as error:
            status = 400 if isinstance(error, ConditionError) else \
                409 if isinstance(error, GateFailed) else 404
            raise ApiError(status, _code_of(error), self.safe_message(error)) from None
        except MlflowException as error:
            why = self.safe_message(error).splitlines()[0][:500]
            raise ApiError(502, "store-unreadable",
                           f"the model registry could not be read: {why}") from None

    def api_error(self, error: MlopsError, ref: NotebookRef) -> ApiError:
        """A malformed notebook or a refused request is a 400; a KFP server that refused or did
        not answer a submission, a 502."""
        if isinstance(error, NotebookError):
            return ApiError(400, "invalid-notebook", self.safe_message(error, ref))
        if isinstance(error, KfpSubmitError):
            return ApiError(502, "kfp-submit-failed", self.safe_message(error, ref))
        return ApiError(400, _code_of(error), self.safe_message(error, ref))


def _code_of(error: Exception) -> str:
    """A stable code from the error's class: CompileError -> 'compile-error'."""
    name = type(error).__name__
    out = "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")
    return out or "error"
