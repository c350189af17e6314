"""Failures: a raising cell (retried once), a kernel that dies (os._exit), a value no serializer
can write and a step over its timeout, each reported with its step and cell while the
independent branch finishes; then a re-run after the fix starts at the failed step."""

from __future__ import annotations

import pytest

from jupyter_mlops.errors import StepFailed

from .conftest import copy_notebook, run, set_cell_source, sqlite_uri, statuses


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    notebook = copy_notebook("faults", folder)
    result = run(notebook, folder / "out", tracking_uri=sqlite_uri(folder))
    return folder, notebook, result


def test_failed_steps_skip_what_follows_while_other_branches_finish(faults):
    _, _, result = faults
    assert statuses(result) == {
        "prep": "ok", "boom": "failed", "after-boom": "skipped", "crash": "failed",
        "after-crash": "skipped", "gen": "failed", "use-gen": "skipped", "sleepy": "failed",
        "fine": "ok"}
    assert result.steps["after-boom"].reason == "upstream step 'boom' failed"
    assert not result.ok and result.exit_code == 1
    assert result.metrics == {"fine": 12.0}


def test_a_raising_cell_names_step_cell_line_and_traceback(faults):
    _, _, result = faults
    error = result.steps["boom"].error
    assert isinstance(error, StepFailed)
    assert (error.step, error.cell_index) == ("boom", 3)
    assert error.source_line == 'raise ValueError(f"bad value {x}")'
    assert "ValueError: bad value 11" in str(error)
    assert "----> 2 raise ValueError" in error.traceback
    assert error.details == f"{error}\n{error.traceback.strip()}"
    assert "\x1b[" not in error.traceback  # readable, not terminal colours
    assert result.steps["boom"].attempts == 2  # retries:1


def test_a_step_over_its_timeout_fails_at_its_cell(faults):
    _, _, result = faults
    error = result.steps["sleepy"].error
    assert error is not None and "timed out after 2 s" in str(error)
    assert (error.cell_index, error.source_line) == (9, "import time")
    assert error.details == str(error)  # the reason was said twice, as its "traceback" too


def test_a_kernel_crash_is_a_failure_of_its_step(faults):
    _, _, result = faults
    error = result.steps["crash"].error
    assert error is not None and error.step == "crash"
    assert error.cell_index == 5  # the cell that was running when the kernel died
    assert "the kernel exited with code 3" in str(error)
    assert not list((result.run_dir / "data" / "crash").glob("crashed.*"))


def test_an_unserializable_value_names_step_variable_and_type(faults):
    _, _, result = faults
    error = result.steps["gen"].error
    assert error is not None
    message = str(error)
    assert "step 'gen'" in message and "'numbers'" in message and "generator" in message


def test_failures_are_tracked(faults, mlflow_client_for):
    folder, _, result = faults
    client = mlflow_client_for(sqlite_uri(folder))
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FAILED"
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_step = {run.data.tags["mlops.step"]: run for run in children}
    assert by_step["boom"].info.status == "FAILED"
    assert "bad value 11" in by_step["boom"].data.tags["mlops.error"]
    assert by_step["after-boom"].data.tags["mlops.status"] == "skipped"
    assert by_step["fine"].info.status == "FINISHED"


def test_a_plain_rerun_after_the_fix_restarts_at_the_failed_step(faults):
    folder, notebook, first = faults
    set_cell_source(notebook, "step:boom", "x = prepared + 1\nboomed = x")
    again = run(notebook, folder / "out")
    assert statuses(again)["prep"] == "cached" and statuses(again)["fine"] == "cached"
    assert statuses(again)["boom"] == "ok" and statuses(again)["after-boom"] == "ok"
    assert again.steps["prep"].cache_key == first.steps["prep"].cache_key
