"""The Models view's routes on a real registry (SQLite, two real scikit-learn versions): pages
of models, a model's versions with aliases, metrics, lineage and gate verdicts, the comparison
a promotion's confirmation shows, a refused promotion that moves nothing, and a promotion whose
alias move and previous holder are then read back from MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.steps.mlflow_vocabulary import STEP_METRICS, previous_holder_tag

from .conftest import TOKEN, fetch_json
from .registry_store import COMMIT, MODEL, NOTEBOOK, RELEASE_GATES, log_drift, make_registry


@pytest.fixture(scope="module")
def registry_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture
def jp_server_config(registry_store: dict[str, object]) -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}},
        "IdentityProvider": {"token": TOKEN},
        "MlopsExtension": {"tracking_uri": registry_store["uri"]},
    }


def _client(registry_store: dict[str, object]):  # noqa: ANN202
    from mlflow import MlflowClient

    uri = str(registry_store["uri"])
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


async def test_models_and_versions_with_aliases_metrics_lineage_and_gates(
        jp_fetch, registry_store) -> None:  # noqa: ANN001
    code, page = await fetch_json(jp_fetch, "mlops", "api", "models")
    assert code == 200, page
    assert [m["name"] for m in page["models"]] == [MODEL]
    assert page["models"][0]["aliases"] == {"champion": 1, "challenger": 2}
    assert page["models"][0]["latest_version"] == 2

    code, found = await fetch_json(jp_fetch, "mlops", "api", "models", MODEL,
                                   params={"condition": "accuracy>=champion and f1>=0.99"})
    assert code == 200, found
    v2, v1 = found["versions"]
    assert (v2["version"], v2["aliases"], v1["version"], v1["aliases"]) == \
        (2, ["challenger"], 1, ["champion"])
    assert v1["metrics"] == pytest.approx(registry_store["metrics"][1])
    assert v2["notebook"].endswith(NOTEBOOK) and v2["git_commit"] == COMMIT
    assert found["champion"]["version"] == 1
    assert [g["gate"] for g in v2["gates"]] == ["accuracy>=champion", "f1>=0.99"]
    assert v2["gates"][1]["passed"] is False and v2["gates"][1]["value"] == \
        pytest.approx(registry_store["metrics"][2]["f1"])
    recorded = v2["recorded_gates"]  # as the release that registered v2 judged it
    assert [(r["gate"], r["passed"]) for r in recorded] == [(RELEASE_GATES[0], True),
                                                            (RELEASE_GATES[1], False)]
    assert recorded[1]["message"].startswith(f"gate {RELEASE_GATES[1]}: failed, f1 = ")
    assert v1["recorded_gates"] == []
    # The table's columns: every gated metric, none of the runner's bookkeeping v2's run holds.
    assert found["key_metrics"] == ["accuracy", "f1"]
    assert set(STEP_METRICS) <= set(v2["metrics"])

    code, one = await fetch_json(jp_fetch, "mlops", "api", "models", MODEL,
                                 params={"max_results": "1", "page_token": "1"})
    assert [v["version"] for v in one["versions"]] == [1] and one["next_page_token"] is None

    code, origin = await fetch_json(jp_fetch, "mlops", "api", "models", MODEL, "versions", "1")
    assert code == 200, origin
    assert origin["lineage"]["params"] == {"n_estimators": "5", "max_depth": "1"}
    assert origin["lineage"]["run_name"] == "Random_Forest"
    assert origin["lineage"]["git_commit"] == COMMIT
    code, run = await fetch_json(jp_fetch, "mlops", "api", "runs", origin["lineage"]["run_id"])
    assert [m["state"] for m in run["models"]] == [f"registered {MODEL} v1"]  # the card's words

    code, error = await fetch_json(jp_fetch, "mlops", "api", "models", MODEL,
                                   params={"condition": "accuracy >> 0.8"})
    assert code == 400 and error["code"] == "condition-error" and "accuracy >> 0.8" in \
        error["message"]
    code, error = await fetch_json(jp_fetch, "mlops", "api", "models", "Churn_Clasifier")
    assert code == 404 and error["code"] == "model-not-found"


async def test_promotion_preview_refusal_then_promotion(jp_fetch, registry_store) -> None:  # noqa: ANN001
    route = ("mlops", "api", "models", MODEL, "promotion")
    code, preview = await fetch_json(jp_fetch, *route, params={"version": "2"})
    assert code == 200, preview
    assert (preview["candidate"]["version"], preview["champion"]["version"]) == (2, 1)
    compared = {row["metric"]: (row["candidate"], row["champion"]) for row in preview["metrics"]}
    metrics = registry_store["metrics"]
    assert compared["accuracy"] == pytest.approx((metrics[2]["accuracy"], metrics[1]["accuracy"]))
    assert set(compared) == {"accuracy", "f1"}  # not v2's runner bookkeeping

    code, refused = await fetch_json(jp_fetch, *route, method="POST", body=json.dumps(
        {"version": 2, "condition": "accuracy>=2"}))
    assert code == 409 and refused["code"] == "promotion-refused"
    assert "accuracy" in refused["message"] and "stays on v1" in refused["message"]
    client = _client(registry_store)
    assert int(client.get_registered_model(MODEL).aliases["champion"]) == 1

    code, error = await fetch_json(jp_fetch, *route, method="POST", body=json.dumps(
        {"version": 7}))
    assert code == 404 and "no version 7" in error["message"]

    code, done = await fetch_json(jp_fetch, *route, method="POST", body=json.dumps(
        {"version": 2}))
    assert code == 200, done
    assert (done["version"], done["previous"], done["moved"]) == (2, 1, True)
    assert int(client.get_registered_model(MODEL).aliases["champion"]) == 2
    assert client.get_model_version(MODEL, "2").tags[previous_holder_tag("champion")] == "1"
    code, found = await fetch_json(jp_fetch, "mlops", "api", "models", MODEL)
    assert found["versions"][0]["aliases"] == ["challenger", "champion"]
    assert found["versions"][0]["previous"]["champion"] == "1"


async def test_a_versions_monitor_runs(jp_fetch, registry_store) -> None:  # noqa: ANN001
    stable = log_drift(registry_store, 1, 0.0)
    drifted = log_drift(registry_store, 1, 1.5)
    code, found = await fetch_json(jp_fetch, "mlops", "api", "models", MODEL)
    assert code == 200, found
    versions = {v["version"]: v for v in found["versions"]}
    assert versions[2]["monitors"] == []
    newest, older = versions[1]["monitors"]
    assert (newest["run_id"], older["run_id"]) == (drifted, stable)
    assert (newest["band"], newest["drifted"], older["band"], older["drifted"]) == \
        ("significant", True, "stable", False)
    assert newest["max_psi"] > 0.25 > 0.1 > older["max_psi"] >= 0
    assert newest["reference"] == f"{MODEL}/1" and newest["start_ms"] >= older["start_ms"]
    page = await jp_fetch("mlops", "api", "runs", drifted, "artifact",
                          params={"path": newest["report"]})
    assert "DRIFTED" in page.body.decode()


def test_no_registry_logic_in_the_server() -> None:
    """The routes only call models/: no MLflow registry write in server/."""
    server = Path(__file__).parents[2] / "jupyter_mlops" / "server"
    text = "".join(p.read_text() for p in server.glob("*.py"))
    assert "set_registered_model_alias" not in text and "set_model_version_tag" not in text
