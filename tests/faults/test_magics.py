"""Fault cases of the `%mlops` magics, in a real IPython shell."""

from __future__ import annotations

import re

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def shell(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_mlops")
    yield ip
    ip.run_cell("%mlops end")


@pytest.mark.fault("traceback")
@pytest.mark.parametrize("value", ["-" * 5000 + "1", "~" * 10_000 + "1"])
def test_a_value_too_deep_to_parse_is_logged_as_text(shell, capsys, value):  # noqa: ANN001
    result = shell.run_cell(f"%mlops log depth={value}")
    captured = capsys.readouterr()
    assert result.error_in_exec is None, captured.err
    assert "RecursionError" not in captured.out + captured.err
    assert "MemoryError" not in captured.out + captured.err


@pytest.mark.fault("wrong")
def test_a_tracking_uri_mlflow_has_no_store_for_is_named_in_the_cell(
        shell, capsys, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "htp://127.0.0.1:5000")
    shell.run_cell("%mlops start --experiment Churn_Team")
    # it was taken for a store that is down: `%mlops end` said it "answers" and would send
    # the records "once it answers"
    assert ("UsageError: MLFLOW_TRACKING_URI='htp://127.0.0.1:5000': MLflow has no store "
            "for the scheme 'htp'; did you mean 'http'?") in capsys.readouterr().err


@pytest.mark.fault("wrong")
def test_a_tracked_cell_without_a_name_is_named_by_the_number_it_shows(shell):  # noqa: ANN001
    from jupyter_mlops.tracking import session

    result = shell.run_cell("%%mlops track\nscore = 0.5", store_history=True)
    # it was named cell-(N+1): IPython 9 moves execution_count on before the cell runs
    assert session.current().cell_runs[-1].name == f"cell-{result.execution_count}"


@pytest.mark.fault("wrong")
def test_a_failing_tracked_cell_s_traceback_names_the_cell_it_shows(shell, capsys):  # noqa: ANN001
    result = shell.run_cell("%%mlops track train\nscore = 0.5\nraise ValueError('no rows')",
                            store_history=True)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "".join(capsys.readouterr()))  # no colours
    assert isinstance(result.error_in_exec, ValueError)
    # its lines were said to be those of the next cell, In [N+1]
    assert f"In[{result.execution_count}], line 2" in shown, shown  # line 2 of its body
    assert f"In[{result.execution_count + 1}]" not in shown


@pytest.mark.fault("wrong")
def test_a_session_whose_notebook_is_unknown_says_how_to_name_it(shell, capsys, monkeypatch):  # noqa: ANN001
    monkeypatch.delenv("JUPYTER_MLOPS_NOTEBOOK", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    shell.run_cell("%mlops start --experiment Churn_Team")
    # `jupyter nbconvert --execute` runs it so; the runs then carry no notebook tag
    assert ("in experiment 'Churn_Team' - (notebook path not detected: set "
            "JUPYTER_MLOPS_NOTEBOOK to its path, or the MLOps panel does not list these runs)"
            ) in capsys.readouterr().out


@pytest.mark.fault("lost")
@pytest.mark.parametrize("flag", ["--register Churn_Forest", "--reference X_train"])
def test_a_model_option_without_model_is_refused_before_the_cell_runs(shell, capsys, flag):  # noqa: ANN001
    shell.user_ns.pop("acc_score", None)
    shell.run_cell(f"%%mlops track train {flag}\nacc_score = 0.5")
    # the cell ran and nothing was registered, without a word
    assert (f"UsageError: {flag} needs --model VARIABLE, the variable holding the cell's "
            "model\nThe cell did not run.") in capsys.readouterr().err
    assert "acc_score" not in shell.user_ns


@pytest.mark.fault("wrong")
def test_an_experiment_deleted_in_mlflow_is_named_at_end(shell, capsys, tmp_path):  # noqa: ANN001
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    deleted = client.create_experiment("Churn_Team")
    client.delete_experiment(deleted)
    for cell in ("%mlops start --experiment Churn_Team",
                 "%%mlops track forest --metrics accuracy\naccuracy = 0.8", "%mlops end"):
        shell.run_cell(cell)
    said = capsys.readouterr().err
    # each record was refused as "The experiment N must be in the 'active' state"
    assert (f"experiment 'Churn_Team' (id {deleted}) is deleted: restore it (MLflow's UI, or "
            f"`mlflow experiments restore --experiment-id {deleted}`) or log to another "
            "experiment") in said
    # The records of a run refused: one line after the run's own, not one each.
    assert said.count("was never created") == 0, said
    assert ("run 'forest': 3 more records not stored, as the run was not created (artifact "
            "'cell.py', metric 'accuracy', ") in said, said


@pytest.mark.fault("lost")
def test_a_param_given_twice_in_one_line_is_refused_and_nothing_logged(
        shell, capsys, tmp_path):  # noqa: ANN001
    from mlflow import MlflowClient

    shell.run_cell("%mlops start --experiment Churn_Team")
    result = shell.run_cell("%mlops params n_estimators=100 max_depth=4 n_estimators=200")
    # it stored n_estimators=200 without a word, and max_depth with it
    assert type(result.error_in_exec).__name__ == "UsageError"
    assert ("UsageError: 'n_estimators' is given twice in one line; give each name once "
            "(nothing was logged)\n") in capsys.readouterr().err
    shell.run_cell("%mlops params min_samples_leaf=2")
    shell.run_cell("%mlops end")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("Churn_Team").experiment_id])
    assert run.data.params == {"min_samples_leaf": "2"}
