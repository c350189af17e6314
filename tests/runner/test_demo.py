"""`python -m jupyter_mlops.demo`: three tracked runs (defaults, changed, unchanged) and a table."""

from __future__ import annotations

from jupyter_mlops import demo
from jupyter_mlops.notebook import read_graph

from .conftest import copy_notebook


def test_the_example_changes_only_its_model_parameters():
    graph = read_graph(str(demo.EXAMPLE))
    other = demo.variant(demo.EXAMPLE, graph)
    assert other and set(other) <= set(graph.parameters)
    assert not set(other) & set(graph.step("load").parameters)  # the data is reused


def test_the_demo_runs_three_times_and_prints_the_table(tmp_path, monkeypatch, capsys,
                                                        mlflow_client_for):
    notebook = copy_notebook("diamond", tmp_path)
    monkeypatch.chdir(tmp_path)  # the embedded store and .mlops land here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert demo.main([str(notebook)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("run  parameters"):].splitlines()
    assert table[2].split()[:5] == ["1", "defaults", "ok", "4", "/"]
    assert "changed: n=4" in table[3] and " 4 / 0 " in table[3]
    assert table[4].split()[:6] == ["3", "unchanged", "ok", "0", "/", "4"]
    assert f"sqlite:///{tmp_path / 'mlflow.db'}" in out and "make lab" in out
    client = mlflow_client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("diamond")
    parents = client.search_runs([experiment.experiment_id], "tags.`mlops.kind` = 'pipeline'")
    assert len(parents) == 3 and {run.info.status for run in parents} == {"FINISHED"}
    assert len(list((tmp_path / ".mlops" / "runs").iterdir())) == 3
