"""`when:EXPR`, a conditional step: score -> monitor -> retrain only on drift. The local runner
skips the step and what follows it, saying why, and the run still passes; a condition on a name
nothing binds, or against the champion, is refused naming the cell."""

from __future__ import annotations

import io
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_mlops.errors import CellError
from jupyter_mlops.notebook import read_graph
from jupyter_mlops.notebook.tags import TagValueError
from jupyter_mlops.runner import RunOptions, run_pipeline


def _notebook(folder: Path, when: str = "when:drift_max_psi>0.25") -> Path:
    cells = [
        new_code_cell("shift = 0.0", metadata={"tags": ["parameters"]}),
        new_code_cell("batch = [0.1 + shift] * 5", metadata={"tags": ["step:score"]}),
        new_code_cell("drift_max_psi = max(batch) - 0.05", metadata={"tags": ["step:monitor"]}),
        new_code_cell("retrained_on = len(batch)", metadata={"tags": ["step:retrain", when]}),
        new_code_cell("print('promoting a model trained on', retrained_on)",
                      metadata={"tags": ["step:promote"]}),
    ]
    path = folder / "Monitor_Then_Retrain.ipynb"
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def test_the_step_runs_only_when_its_condition_holds(tmp_path):
    notebook = _notebook(tmp_path)
    graph = read_graph(notebook)
    assert graph.step("retrain").inputs == {"batch": "score", "drift_max_psi": "monitor"}

    progress = io.StringIO()
    stable = run_pipeline(notebook, RunOptions(out=tmp_path / "out", track=False, jobs=2,
                                               stream=progress))
    assert stable.exit_code == 0
    retrain, promote = stable.steps["retrain"], stable.steps["promote"]
    assert (retrain.status, promote.status) == ("skipped", "skipped")
    assert retrain.reason == "when:drift_max_psi>0.25 does not hold (drift_max_psi = 0.05)"
    assert promote.reason.startswith("upstream step 'retrain' skipped: when:drift_max_psi>0.25")
    assert "when:drift_max_psi>0.25 does not hold (drift_max_psi = 0.05)" in progress.getvalue()

    drifted = run_pipeline(notebook, RunOptions(out=tmp_path / "out", track=False, jobs=2,
                                                quiet=True, parameters={"shift": 0.5}))
    assert drifted.exit_code == 0
    assert {n: s.status for n, s in drifted.steps.items()} == {
        "score": "ok", "monitor": "ok", "retrain": "ok", "promote": "ok"}


@pytest.mark.parametrize(("tag", "said"), [
    ("when:psi_total>0.25", "when:psi_total>0.25: no parameter and no earlier step binds "
                            "'psi_total'"),
    ("when:drift_max_psi>champion", "not with the champion"),
    ("when:drift_max_psi", "'drift_max_psi' is not a condition: write NAME OP NUMBER"),
])
def test_a_condition_that_cannot_be_judged_is_refused(tmp_path, tag, said):
    with pytest.raises((CellError, TagValueError)) as caught:
        read_graph(_notebook(tmp_path, tag))
    assert said in str(caught.value)


def test_compiled_the_step_sits_in_a_dsl_if_that_kfp_local_follows(tmp_path, monkeypatch):
    import yaml
    from kfp import local

    from jupyter_mlops.kfp import compile_notebook

    compiled = compile_notebook(_notebook(tmp_path), install_packages=False)
    spec = yaml.safe_load(compiled.yaml)["root"]["dag"]["tasks"]["condition-1"]
    assert spec["taskInfo"]["name"] == "when retrain"
    assert spec["triggerPolicy"]["condition"] == \
        "inputs.parameter_values['pipelinechannel--monitor-Output'] > 0.25"

    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(tmp_path / "out"), workspace_root=str(tmp_path / "workspace"))
    compiled.pipeline(shift=0.5, MLFLOW_TRACKING_URI="")
    [run] = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert sorted(p.name for p in run.iterdir()) == ["monitor", "promote", "retrain", "score"]
