"""A local HTTP stand-in for the KFP v2 API server: answers what kfp.Client asks, records it.

The only fake of the KFP tests. Bound to 127.0.0.1 on a free port, stopped by the test.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: Any


@dataclass
class Behaviour:
    status: int = 200  # answer every request with this status when not 200
    reject_runs: bool = False  # answer run creation with 400, as for an invalid spec
    requests: list[Recorded] = field(default_factory=list)
    recurring_runs: list[dict[str, Any]] = field(default_factory=list)  # created, as answered
    runs: list[dict[str, Any]] = field(default_factory=list)  # listed by GET runs, as given


def _handler(behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Recorded:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            entry = Recorded(self.command, self.path,
                             {k.lower(): v for k, v in self.headers.items()}, body)
            behaviour.requests.append(entry)
            return entry

        def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
            entry = self._record()
            if behaviour.status != 200:
                self._answer(behaviour.status, {"error": "denied", "message": "access denied",
                                                "code": 7})
            elif entry.path.startswith("/apis/v2beta1/healthz"):
                self._answer(200, {"multi_user": False})
            elif entry.path.startswith("/apis/v2beta1/experiments"):
                self._answer(200, {})
            elif entry.path.startswith("/apis/v2beta1/recurringruns"):
                self._answer(200, {"recurringRuns": behaviour.recurring_runs,
                                   "total_size": len(behaviour.recurring_runs)})
            elif entry.path.startswith("/apis/v2beta1/runs"):
                self._answer(200, {"runs": behaviour.runs, "total_size": len(behaviour.runs)})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            entry = self._record()
            if behaviour.status != 200:
                self._answer(behaviour.status, {"error": "denied", "message": "access denied"})
            elif entry.path.startswith("/apis/v2beta1/experiments"):
                self._answer(200, {"experiment_id": "exp-1",
                                   "display_name": entry.body["display_name"]})
            elif entry.path.startswith("/apis/v2beta1/runs"):
                if behaviour.reject_runs:
                    self._answer(400, {"error": "invalid spec", "code": 3,
                                       "message": "Failed to create a run: invalid pipeline spec"})
                else:
                    self._answer(200, {"run_id": "run-1", "experiment_id": "exp-1"})
            elif entry.path.startswith("/apis/v2beta1/recurringruns"):
                self._answer(200, _recurring_run(entry.body, behaviour.recurring_runs))
            else:
                self._answer(404, {"error": "not found"})

    return Handler


def _recurring_run(body: dict[str, Any], created: list[dict[str, Any]]) -> dict[str, Any]:
    """The recurring run as KFP answers its creation (ids rec-1, rec-2, ...), kept for GET."""
    run = {**body, "recurring_run_id": f"rec-{len(created) + 1}", "status": "ENABLED",
           "mode": body.get("mode") or "ENABLE"}
    created.append(run)
    return run


class KfpApiStandIn:
    """Context manager: `with KfpApiStandIn() as api: api.url, api.behaviour.requests`."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.behaviour))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KfpApiStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posted(self, prefix: str) -> list[Recorded]:
        return [r for r in self.behaviour.requests
                if r.method == "POST" and r.path.startswith(prefix)]
