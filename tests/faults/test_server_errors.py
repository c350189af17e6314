"""Hostile requests to the REST API: each one a 4xx with {code, message}, never a 500."""

from __future__ import annotations

import base64
import functools
import inspect
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

# The server fixtures of tests/server (a real Jupyter Server with the extension, a real
# SQLite MLflow store); importing them here makes them this module's fixtures too.
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403
from server.conftest import (  # noqa: F401
    EXPERIMENT,
    _notebook,
    fetch_json,
    jp_server_config,
    kfp_host,
    mlflow_store,
    notebooks,
)


def on_server_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on the server's event loop. pytest-jupyter's hook that does this
    for tests/server lives in that folder's conftest, which does not reach this one."""
    signature = inspect.signature(test)

    @functools.wraps(test)
    def run(jp_asyncio_loop: Any, **fixtures: Any) -> None:
        jp_asyncio_loop.run_until_complete(test(**fixtures))

    loop = inspect.Parameter("jp_asyncio_loop", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[loop, *signature.parameters.values()])
    return run


@pytest.fixture
def hostile(notebooks: Path) -> Path:  # noqa: F811
    """Notebooks that once crashed the graph builder, and a small one to run."""
    chain = "cleaned = raw_frame" + ".copy()" * 300
    cells = {
        "Deep_Chain.ipynb": _notebook([(["parameters"], "raw_frame = 'x'"),
                                       (["step:clean"], chain)]),
        "Minus_Chain.ipynb": _notebook([(["step:clean"], "delta = " + "-" * 100_000 + "1")]),
        "Quick_Step.ipynb": _notebook([
            (["parameters"], "n_rows = 3\nrow_sizes = [1, 2]\nlearning_rate = 0.1"),
            (["step:make"], "rows = list(range(n_rows))")]),
    }
    for name, notebook in cells.items():
        (notebooks / name).write_text(json.dumps(notebook), encoding="utf-8")
    big = json.dumps(_notebook([(["step:clean"], "x = 1")]))
    (notebooks / "Big_Version.ipynb").write_text(
        big.replace('"nbformat": 4', '"nbformat": ' + "4" * 5000), encoding="utf-8")
    kale = _notebook([(["step:clean"], "x = 1")])
    kale["metadata"]["kubeflow_notebook"] = ["pipeline_name"]
    (notebooks / "Kale_List.ipynb").write_text(json.dumps(kale), encoding="utf-8")
    return notebooks


def _assert_refused(code: int, body: dict, expected: str) -> None:
    assert 400 <= code < 500, (code, body)
    assert set(body) == {"code", "message"} and body["code"] == expected, body
    assert body["message"] and "Traceback" not in body["message"], body


async def _post(jp_fetch, endpoint: str, body: str) -> tuple[int, dict]:  # noqa: ANN001
    return await fetch_json(jp_fetch, "mlops", "api", endpoint, method="POST", body=body)


@pytest.mark.fault("traceback")
@on_server_loop
@pytest.mark.parametrize(("body", "expected"), [
    ('{"path": 5}', "bad-path"),
    ('{"path": ["example.ipynb"]}', "bad-path"),
    ('["example.ipynb"]', "bad-json"),
    ("[" * 3000 + "]" * 3000, "bad-json"),
    ('{"path": "example.ipynb", "n": ' + "[" * 3000 + "]" * 3000 + "}", "bad-json"),
    ('{"path": "example.ipynb", "n": ' + "7" * 5000 + "}", "bad-json"),
], ids=["path-number", "path-list", "list-body", "nested-3000", "nested-field-3000",
        "int-5000-digits"])
@pytest.mark.parametrize("endpoint", ["compile", "local-runs"])
async def test_a_malformed_body_is_a_400(jp_fetch, notebooks, endpoint, body, expected):  # noqa: ANN001, F811
    _assert_refused(*await _post(jp_fetch, endpoint, body), expected)


@pytest.mark.fault("traceback")
@on_server_loop
async def test_parameters_given_as_a_list_are_refused(jp_fetch, hostile):  # noqa: ANN001
    body = json.dumps({"path": "Quick_Step.ipynb", "parameters": []})
    _assert_refused(*await _post(jp_fetch, "local-runs", body), "bad-parameters")


@pytest.mark.fault("traceback")
@on_server_loop
async def test_a_float_of_4000_digits_is_refused_by_name(jp_fetch, hostile):  # noqa: ANN001
    body = '{"path": "Quick_Step.ipynb", "parameters": {"learning_rate": 1' + "0" * 4000 + "}}"
    code, answer = await _post(jp_fetch, "local-runs", body)
    _assert_refused(code, answer, "parameter-error")
    assert "'learning_rate'" in answer["message"], answer


@pytest.mark.fault("traceback")
@on_server_loop
async def test_a_parameter_nested_900_deep_is_refused_by_name(jp_fetch, hostile):  # noqa: ANN001
    deep = "[" * 900 + "]" * 900
    body = '{"path": "Quick_Step.ipynb", "parameters": {"row_sizes": ' + deep + "}}"
    code, answer = await _post(jp_fetch, "local-runs", body)
    _assert_refused(code, answer, "parameter-error")
    assert "'row_sizes'" in answer["message"] and "nested" in answer["message"], answer


@pytest.mark.fault("traceback")
@on_server_loop
@pytest.mark.parametrize("offset", ["1e400", "1" + "0" * 30])
async def test_a_page_token_holding_a_huge_number_is_a_400(jp_fetch, notebooks, offset):  # noqa: ANN001, F811
    token = base64.urlsafe_b64encode(f'{{"o": {offset}, "q": "x"}}'.encode()).decode()
    code, body = await fetch_json(jp_fetch, "mlops", "api", "runs",
                                  params={"experiment": EXPERIMENT, "page_token": token})
    _assert_refused(code, body, "bad-page-token")


@pytest.mark.fault("traceback")
@on_server_loop
async def test_a_log_offset_beyond_2_63_is_a_400(jp_fetch, hostile):  # noqa: ANN001
    code, job = await _post(jp_fetch, "local-runs", json.dumps({"path": "Quick_Step.ipynb"}))
    assert code == 201, job
    try:
        for offset in (str(2**63), str(2**70), "-1"):
            code, body = await fetch_json(jp_fetch, "mlops", "api", "local-runs", job["id"],
                                          params={"offset": offset})
            _assert_refused(code, body, "bad-offset")
    finally:
        await fetch_json(jp_fetch, "mlops", "api", "local-runs", job["id"], method="DELETE")


@pytest.mark.fault("traceback")
@on_server_loop
@pytest.mark.parametrize(("name", "named"), [
    ("Kale_List.ipynb", "kubeflow_notebook"), ("Minus_Chain.ipynb", "MemoryError"),
    ("Big_Version.ipynb", "5000 digits"),
])
async def test_a_notebook_that_crashed_analysis_is_an_invalid_notebook(jp_fetch, hostile, name,
                                                                       named):  # noqa: ANN001
    code, body = await fetch_json(jp_fetch, "mlops", "api", "graph", params={"path": name})
    _assert_refused(code, body, "invalid-notebook")
    assert body["message"].startswith(name) and named in body["message"], body
    _assert_refused(*await _post(jp_fetch, "compile", json.dumps({"path": name})),
                    "invalid-notebook")


@pytest.mark.fault("traceback")
@on_server_loop
async def test_deeply_nested_valid_code_gets_its_graph(jp_fetch, hostile):  # noqa: ANN001
    code, body = await fetch_json(jp_fetch, "mlops", "api", "graph",
                                  params={"path": "Deep_Chain.ipynb"})
    assert code == 200, body
    assert [step["name"] for step in body["steps"]] == ["clean"]
