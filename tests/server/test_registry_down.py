"""The Models tab's requests when the tracking server is down: a 502 saying the registry could
not be read and why (MLflow's reason, naming the server), not a 500 "internal error"."""

from __future__ import annotations

import socket

import pytest

from .conftest import TOKEN, fetch_json


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DOWN = f"http://127.0.0.1:{_closed_port()}"  # nothing listens there


@pytest.fixture
def jp_server_config(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # refused at once, no backoff
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
        "IdentityProvider": {"token": TOKEN},
        "MlopsExtension": {"tracking_uri": DOWN},
    }


async def test_a_registry_that_does_not_answer_is_a_502_saying_so(jp_fetch) -> None:  # noqa: ANN001
    for path in (("models",), ("models", "Churn_Classifier")):
        code, body = await fetch_json(jp_fetch, "mlops", "api", *path)
        assert (code, body["code"]) == (502, "store-unreadable"), body
        assert body["message"].startswith("the model registry could not be read: "), body
        assert DOWN in body["message"], body
