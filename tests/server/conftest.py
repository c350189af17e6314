"""Fixtures: a real Jupyter Server with the extension, a real SQLite MLflow store, notebooks."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# pytest-jupyter registers no entry point, and pytest_plugins is only allowed in the top-level
# conftest, which this package does not own: importing the plugin here registers its fixtures
# and hooks for the tests in this folder.
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403

from jupyter_mlops.steps.mlflow_vocabulary import (
    CELL_SOURCE_ARTIFACT,
    NOTE_TAG,
    NOTEBOOK_TAG,
    note_text,
)

EXAMPLE = Path(__file__).parents[2] / "notebooks" / "02_tagged_pipeline.ipynb"
EXPERIMENT = "02_tagged_pipeline"
TOKEN = "mlops-test-token"
_STANDIN = Path(__file__).parents[1] / "kfp" / "kfp_api_standin.py"


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An SQLite store with the example notebook's experiment: 5 runs, one with history."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(EXPERIMENT, artifact_location=str(folder / "art"))
    client.create_experiment("other", artifact_location=str(folder / "other"))
    now = int(time.time() * 1000)
    run_ids = []
    for i in range(5):
        run = client.create_run(experiment_id, start_time=now + i, run_name=f"cell-{i}",
                                tags={NOTEBOOK_TAG: "/somewhere/02_tagged_pipeline.ipynb"})
        rid = run.info.run_id
        metrics = [Metric("accuracy", 0.5 + i / 10, now + i, 0)]
        if i == 3:
            metrics += [Metric("loss", v, now + s, s) for s, v in enumerate((0.9, 0.5, 0.2))]
        client.log_batch(rid, metrics=metrics, params=[Param("C", str(i))])
        if i == 3:  # a tracked cell's code, as tracking/cell.py logs it
            client.log_text(rid, f"accuracy = {i}\n", CELL_SOURCE_ARTIFACT)
            client.set_tag(rid, NOTE_TAG, note_text(f"accuracy = {i}\n"))
        client.set_terminated(rid, "FINISHED" if i != 4 else "FAILED", end_time=now + 100 + i)
        run_ids.append(rid)
    return {"uri": uri, "experiment_id": experiment_id, "run_ids": run_ids}


def _standin_module() -> Any:
    name = "kfp_api_standin_for_server"
    if name not in sys.modules:  # registered first: its dataclasses look their module up
        spec = importlib.util.spec_from_file_location(name, _STANDIN)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.fixture
def kfp_api(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The KFP tests' stand-in of the KFP API server; an indirect parameter gives the fields of
    its Behaviour (`{"runs": [...]}`: the runs it lists)."""
    module = _standin_module()
    with module.KfpApiStandIn(module.Behaviour(**getattr(request, "param", {}))) as api:
        yield api


@pytest.fixture
def kfp_host(request: pytest.FixtureRequest) -> str:
    """The server's MlopsExtension.kfp_host: the stand-in's URL for a test that uses `kfp_api`,
    else none configured."""
    if "kfp_api" in request.fixturenames:
        return str(request.getfixturevalue("kfp_api").url)
    return ""


@pytest.fixture
def jp_server_config(mlflow_store: dict[str, object], kfp_host: str) -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
        "IdentityProvider": {"token": TOKEN},
        "MlopsExtension": {"tracking_uri": mlflow_store["uri"], "kfp_host": kfp_host,
                           "min_refresh_seconds": 0.0},
    }


@pytest.fixture
def notebooks(jp_root_dir: Path) -> Path:
    """The example notebook, a malformed one and one with a cycle, in the server's root."""
    shutil.copy(EXAMPLE, jp_root_dir / "example.ipynb")
    (jp_root_dir / "broken.ipynb").write_text("{ this is not json", encoding="utf-8")
    (jp_root_dir / "cycle.ipynb").write_text(json.dumps(_notebook([
        (["step:a", "needs:b"], "x = 1"), (["step:b", "needs:a"], "y = 2"),
    ])), encoding="utf-8")
    (jp_root_dir / "sub").mkdir()
    shutil.copy(EXAMPLE, jp_root_dir / "sub" / "nested.ipynb")
    return jp_root_dir


def _notebook(cells: list[tuple[list[str], str]]) -> dict[str, object]:
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags},
                   "source": source, "outputs": [], "execution_count": None}
                  for i, (tags, source) in enumerate(cells)],
    }


async def fetch_json(jp_fetch, *parts: str, **kwargs: object) -> tuple[int, dict[str, object]]:
    """Status and JSON body, also for error statuses."""
    from tornado.httpclient import HTTPClientError

    try:
        response = await jp_fetch(*parts, **kwargs)
    except HTTPClientError as error:
        assert error.response is not None
        return error.code, json.loads(error.response.body or b"{}")
    return response.code, json.loads(response.body)
