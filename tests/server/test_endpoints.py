"""Every endpoint against a real server and a real SQLite MLflow store."""

from __future__ import annotations

import json

from .conftest import EXPERIMENT, fetch_json


async def _get(jp_fetch, *parts: str, **params: object) -> tuple[int, dict]:
    return await fetch_json(jp_fetch, "mlops", "api", *parts, params=params)


async def test_experiments_lists_the_store(jp_fetch, notebooks) -> None:
    code, body = await _get(jp_fetch, "experiments", notebook="example.ipynb")
    assert code == 200
    assert {e["name"] for e in body["experiments"]} >= {EXPERIMENT, "other"}
    assert body["notebook_experiment"] == "example"


async def test_runs_of_an_experiment_ordered_by_a_metric(jp_fetch, notebooks, mlflow_store):
    code, body = await _get(jp_fetch, "runs", experiment_id=mlflow_store["experiment_id"],
                            order_by="metrics.accuracy DESC", max_results=2)
    assert code == 200 and body["total"] == 5
    assert [r["run_name"] for r in body["runs"]] == ["cell-4", "cell-3"]
    assert body["runs"][0]["status"] == "FAILED"
    assert body["runs"][1]["metrics"] == {"accuracy": 0.8, "loss": 0.2}
    _, second = await _get(jp_fetch, "runs", experiment_id=mlflow_store["experiment_id"],
                           order_by="metrics.accuracy DESC", max_results=2,
                           page_token=body["next_page_token"])
    assert [r["run_name"] for r in second["runs"]] == ["cell-2", "cell-1"]


async def test_runs_by_experiment_name_ordered_by_param_and_attribute(jp_fetch, notebooks):
    _, by_param = await _get(jp_fetch, "runs", experiment=EXPERIMENT, order_by="params.C ASC")
    assert [r["params"]["C"] for r in by_param["runs"]] == ["0", "1", "2", "3", "4"]
    _, by_name = await _get(jp_fetch, "runs", experiment=EXPERIMENT,
                            order_by="attributes.run_name DESC")
    assert by_name["runs"][0]["run_name"] == "cell-4"
    assert by_name["next_page_token"] is None


async def test_a_notebook_lists_only_the_runs_tagged_with_its_path(jp_fetch, notebooks):
    # The fixture's runs name another path: the notebook's list holds none of them, even
    # narrowed to their experiment; the experiment's own list holds them all.
    _, body = await _get(jp_fetch, "runs", notebook="example.ipynb")
    body.pop("loading")  # true until the background load has read the store (none here)
    assert body == {"experiment": None, "experiments": [], "runs": [], "total": 0,
                    "next_page_token": None, "error": None}
    _, narrowed = await _get(jp_fetch, "runs", notebook="example.ipynb", experiment=EXPERIMENT)
    assert narrowed["runs"] == [] and narrowed["experiment"]["name"] == EXPERIMENT
    _, everything = await _get(jp_fetch, "runs", experiment=EXPERIMENT)
    assert everything["total"] == 5
    [listed] = everything["experiments"]
    assert listed == {"experiment_id": everything["experiment"]["experiment_id"],
                      "name": EXPERIMENT, "runs": 5}


async def test_runs_rejects_bad_queries(jp_fetch, notebooks, mlflow_store) -> None:
    eid = mlflow_store["experiment_id"]
    cases = [({"order_by": "nonsense.x"}, "bad-order-by"),
             ({"order_by": "metrics.a DESC", "page_token": "garbage"}, "bad-page-token"),
             ({"max_results": "0"}, "bad-max-results"),
             ({"max_results": "many"}, "bad-max-results")]
    for params, expected in cases:
        code, body = await _get(jp_fetch, "runs", experiment_id=eid, **params)
        assert (code, body["code"]) == (400, expected), params
    _, first = await _get(jp_fetch, "runs", experiment_id=eid, max_results=1)
    code, body = await _get(jp_fetch, "runs", experiment_id=eid, max_results=1,
                            order_by="metrics.accuracy", page_token=first["next_page_token"])
    assert (code, body["code"]) == (400, "bad-page-token")
    code, body = await _get(jp_fetch, "runs", experiment_id="987654")
    assert (code, body["code"]) == (404, "experiment-not-found")


async def test_one_run_in_full(jp_fetch, notebooks, mlflow_store) -> None:
    run_id = mlflow_store["run_ids"][3]
    code, run = await _get(jp_fetch, "runs", run_id)
    assert code == 200
    assert run["params"] == {"C": "3"} and run["status"] == "FINISHED"
    assert [p["value"] for p in run["metric_history"]["loss"]] == [0.9, 0.5, 0.2]
    assert run["tags"]["mlops.notebook"].endswith("02_tagged_pipeline.ipynb")
    assert run["artifacts"] == [{"path": "cell.py", "size": 13}]
    assert run["source"] == "accuracy = 3\n"


async def test_an_unknown_run_is_a_404(jp_fetch, notebooks) -> None:
    code, body = await _get(jp_fetch, "runs", "0" * 32)
    assert (code, body["code"]) == (404, "run-not-found")


async def test_graph_of_the_example(jp_fetch, notebooks) -> None:
    code, graph = await _get(jp_fetch, "graph", path="sub/nested.ipynb")
    assert code == 200
    assert [s["name"] for s in graph["steps"]] == [
        "load", "features", "train-forest", "train-logreg", "evaluate"]
    assert {"source": "load", "target": "features"} .items() <= graph["edges"][0].items()
    assert graph["path"] == "sub/nested.ipynb"


async def test_a_malformed_notebook_is_a_400_without_paths(jp_fetch, notebooks) -> None:
    for name in ("broken.ipynb", "cycle.ipynb"):
        code, body = await _get(jp_fetch, "graph", path=name)
        assert (code, body["code"]) == (400, "invalid-notebook"), name
        assert body["message"].startswith(name)
        assert str(notebooks) not in body["message"]
    code, body = await fetch_json(jp_fetch, "mlops", "api", "compile", method="POST",
                                  body=json.dumps({"path": "cycle.ipynb"}))
    assert (code, body["code"]) == (400, "invalid-notebook")
    assert "cell" in body["message"] or "cycle" in body["message"]


async def test_a_body_that_is_not_json_is_a_400(jp_fetch, notebooks) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "compile", method="POST",
                                  body="{not json")
    assert (code, body["code"]) == (400, "bad-json")


async def test_config_exposes_no_host(jp_fetch, notebooks, monkeypatch) -> None:
    code, body = await _get(jp_fetch, "config")
    assert code == 200
    hint = body.pop("kfp_hint")  # the line the export dialog shows beside a disabled Submit
    assert body.pop("opens_hidden_files") is False  # Jupyter's default: .mlops/ is not opened
    assert body == {"mlflow_ui_url": "http://127.0.0.1:5000", "kfp_enabled": False,
                    "default_image": None}  # where `mlflow ui` serves a local store
    assert "--MlopsExtension.kfp_host=" in hint
    monkeypatch.setenv("JUPYTER_MLOPS_UI_URL", "https://mlflow.example.org/")
    code, body = await _get(jp_fetch, "config")
    assert body["mlflow_ui_url"] == "https://mlflow.example.org/"  # the panel links there


async def test_submit_without_a_configured_host_is_refused(jp_fetch, notebooks) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "submit", method="POST",
                                  body=json.dumps({"path": "example.ipynb",
                                                   "host": "http://127.0.0.1:1"}))
    assert (code, body["code"]) == (409, "kfp-not-configured")
    assert "MlopsExtension.kfp_host" in body["message"]


async def test_compile_returns_yaml_and_graph(jp_fetch, notebooks) -> None:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "compile", method="POST",
                                  body=json.dumps({"path": "example.ipynb",
                                                   "image": "python:3.11-slim"}))
    assert code == 200
    assert body["name"] == "example"
    assert "pipelineInfo" in body["yaml"] and "python:3.11-slim" in body["yaml"]
    assert [s["name"] for s in body["graph"]["steps"]][0] == "load"
    assert str(notebooks) not in body["yaml"]
