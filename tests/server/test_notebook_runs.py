"""GET /mlops/api/runs?notebook=: a notebook's runs found by its path tag in every experiment,
the experiments they are in, and the experiment picker's filter."""

from __future__ import annotations

import os
import shutil
import time

from mlflow import MlflowClient

from jupyter_mlops.steps.mlflow_vocabulary import LAUNCHED_FROM_TAG, NOTEBOOK_TAG
from jupyter_mlops.tracking.notebook_info import notebook_tags

from .conftest import EXAMPLE, fetch_json

NAME = "Bob's_Churn_Model.ipynb"  # a quote in the name: the tag filter must still match


async def _runs(jp_fetch, **params: object) -> dict:
    code, body = await fetch_json(jp_fetch, "mlops", "api", "runs",
                                  params={"notebook": NAME, **params})  # NAME unless given
    assert code == 200, body
    return body


def _names(body: dict) -> set[str]:
    return {run["run_name"] for run in body["runs"]}


def _experiment(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # No artifacts are logged; the location only keeps MLflow's default (./mlruns) unused.
    return client.create_experiment(name, artifact_location=f"/nonexistent/{name}")


def _run(client: MlflowClient, experiment: str, name: str, **tags: str) -> str:
    run = client.create_run(_experiment(client, experiment), run_name=name,
                            start_time=int(time.time() * 1000), tags=tags)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


async def test_a_notebooks_runs_across_experiments_and_the_picker(jp_fetch, jp_root_dir,
                                                                  mlflow_store) -> None:
    shutil.copy(EXAMPLE, jp_root_dir / NAME)
    mine = os.path.realpath(jp_root_dir / NAME)
    client = MlflowClient(tracking_uri=mlflow_store["uri"])
    _run(client, "Churn Baseline", "session", **{NOTEBOOK_TAG: mine})
    _run(client, "Churn Baseline", "logreg", **{NOTEBOOK_TAG: mine})
    _run(client, "churn-tuning", "0:max_depth=3",  # a sweep this notebook launched
         **{NOTEBOOK_TAG: "/elsewhere/02_tagged_pipeline.ipynb", LAUNCHED_FROM_TAG: mine})
    _run(client, "churn-tuning", "not-mine", **{NOTEBOOK_TAG: mine + ".bak"})
    client.delete_run(_run(client, "Churn Baseline", "deleted", **{NOTEBOOK_TAG: mine}))

    every = await _runs(jp_fetch)
    assert _names(every) == {"session", "logreg", "0:max_depth=3"}
    assert every["experiment"] is None and every["total"] == 3
    assert [(e["name"], e["runs"]) for e in every["experiments"]] == [
        ("Churn Baseline", 2), ("churn-tuning", 1)]
    assert all(mine in (run["tags"].get(LAUNCHED_FROM_TAG), run["tags"][NOTEBOOK_TAG])
               for run in every["runs"])

    # The picker: one experiment, by name or by id; the list of experiments stays whole.
    tuning = await _runs(jp_fetch, experiment="churn-tuning")
    assert _names(tuning) == {"0:max_depth=3"} and tuning["experiment"]["name"] == "churn-tuning"
    assert tuning["experiments"] == every["experiments"]
    by_id = await _runs(jp_fetch, experiment_id=tuning["experiment"]["experiment_id"])
    assert _names(by_id) == {"0:max_depth=3"}
    unknown = await _runs(jp_fetch, experiment="never-created")
    assert unknown["runs"] == [] and unknown["experiment"] is None

    # Pages, ordered MLflow's way; a page token belongs to its experiment filter.
    first = await _runs(jp_fetch, max_results=2, order_by="attributes.run_name ASC")
    assert [r["run_name"] for r in first["runs"]] == ["0:max_depth=3", "logreg"]
    second = await _runs(jp_fetch, max_results=2, order_by="attributes.run_name ASC",
                         page_token=first["next_page_token"])
    assert [r["run_name"] for r in second["runs"]] == ["session"]
    code, body = await fetch_json(jp_fetch, "mlops", "api", "runs", params={
        "notebook": NAME, "max_results": 2, "order_by": "attributes.run_name ASC",
        "experiment": "churn-tuning", "page_token": first["next_page_token"]})
    assert (code, body["code"]) == (400, "bad-page-token")

    # A run logged later, to an experiment created later, shows without a full reload.
    _run(client, "Churn Late Night", "late", **{NOTEBOOK_TAG: mine})
    later = await _runs(jp_fetch)
    assert "late" in _names(later) and later["total"] == 4
    assert "Churn Late Night" in [e["name"] for e in later["experiments"]]


async def test_a_notebook_without_runs_lists_none(jp_fetch, jp_root_dir) -> None:
    shutil.copy(EXAMPLE, jp_root_dir / NAME)
    body = await _runs(jp_fetch)
    assert body["runs"] == [] and body["experiments"] == [] and body["total"] == 0


async def test_every_path_form_of_the_notebook_matches(jp_fetch, jp_root_dir, mlflow_store,
                                                      monkeypatch) -> None:
    # As the CLI is typed (relative), as a kernel sees it (its folder reached by a symlink),
    # and absolute: the runs record one form, so the panel finds all three.
    (jp_root_dir / "Sub Folder").mkdir()
    shutil.copy(EXAMPLE, jp_root_dir / "Sub Folder" / "Churn_Report.ipynb")
    linked = jp_root_dir.parent / "linked_root"
    linked.symlink_to(jp_root_dir, target_is_directory=True)
    monkeypatch.chdir(jp_root_dir)
    forms = {"typed": "Sub Folder/Churn_Report.ipynb",
             "kernel": str(linked / "Sub Folder" / "Churn_Report.ipynb"),
             "absolute": str(jp_root_dir / "Sub Folder" / "Churn_Report.ipynb")}
    client = MlflowClient(tracking_uri=mlflow_store["uri"])
    for name, path in forms.items():
        _run(client, "Churn Reports", name, **notebook_tags(path))
    body = await _runs(jp_fetch, notebook="Sub Folder/Churn_Report.ipynb")
    assert _names(body) == set(forms)
